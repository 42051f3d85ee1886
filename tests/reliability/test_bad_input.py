"""A corpus of malformed requests against the real functions-framework server.

Every case is data: what is sent and the documented answer (README, "The webhook
contract"). Each must get exactly that 4xx with a JSON error body; nothing may answer
5xx or crash the server; afterwards the server is alive, still accepts a valid event, and
the store holds that event only — nothing invalid was stored as an event.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gridhook.store import EventQuery, open_store
from tests.bench.load import Client, Reply, Request
from tests.harness import SEED_PAYLOAD, TEST_TOKEN, FunctionServer, function_server

JSON = "application/json"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": JSON}
VALID = json.dumps(SEED_PAYLOAD).encode()


def body_with(**changes: Any) -> bytes:
    payload = copy.deepcopy(SEED_PAYLOAD)
    for key, value in changes.items():
        if value is _DROP:
            payload.pop(key, None)
        else:
            payload[key] = value
    return json.dumps(payload).encode()


_DROP = object()


def basic(credentials: bytes) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        "Content-Type": JSON,
    }


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str | None
    body: bytes = VALID
    method: str = "POST"
    query: str = ""
    headers: dict[str, str] = field(default_factory=lambda: dict(AUTH))
    chunked: bool = False


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"event": "start_ramp_down", "padding": "'
    for _ in range(total // 4096):
        yield b"x" * 4096
    yield b'"}'


# fmt: off
CORPUS: list[Case] = [
    # -- methods: 405 with Allow: POST, checked before anything else --------------------
    *(Case(f"method-{m}", 405, "method_not_allowed", method=m)
      for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")),
    Case("method-get-without-token", 405, "method_not_allowed", method="GET", headers={}),
    # -- content types: 415 -------------------------------------------------------------
    Case("content-type-missing", 415, "unsupported_media_type",
         headers={"Authorization": AUTH["Authorization"]}),
    *(Case(f"content-type-{ct}", 415, "unsupported_media_type",
           headers={**AUTH, "Content-Type": ct})
      for ct in ("text/plain", "text/json", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/jsonx",
                 "application/json-patch+json", "application/json; charset=latin-1",
                 "application/json; charset=utf-16")),
    # -- tokens, in every carrier: 401, body not read -------------------------------------
    Case("token-missing", 401, "unauthorized", headers={"Content-Type": JSON}),
    Case("bearer-wrong", 401, "unauthorized",
         headers={"Authorization": "Bearer wrong-token-0123456789", "Content-Type": JSON}),
    Case("bearer-empty", 401, "unauthorized",
         headers={"Authorization": "Bearer ", "Content-Type": JSON}),
    Case("bearer-prefix-of-token", 401, "unauthorized",
         headers={"Authorization": f"Bearer {TEST_TOKEN[:-1]}", "Content-Type": JSON}),
    Case("bearer-token-with-suffix", 401, "unauthorized",
         headers={"Authorization": f"Bearer {TEST_TOKEN}x", "Content-Type": JSON}),
    Case("basic-wrong-password", 401, "unauthorized", headers=basic(b"dps:wrong-password")),
    Case("basic-token-as-user", 401, "unauthorized", headers=basic(TEST_TOKEN.encode() + b":")),
    Case("basic-no-colon", 401, "unauthorized", headers=basic(TEST_TOKEN.encode())),
    Case("basic-not-base64", 401, "unauthorized",
         headers={"Authorization": "Basic !!!not-base64!!!", "Content-Type": JSON}),
    Case("basic-not-utf8", 401, "unauthorized", headers=basic(b"dps:\xff\xfe\xfd")),
    Case("unknown-scheme", 401, "unauthorized",
         headers={"Authorization": f"Token {TEST_TOKEN}", "Content-Type": JSON}),
    Case("query-token-wrong", 401, "unauthorized", query="?token=wrong-token-0123456789",
         headers={"Content-Type": JSON}),
    Case("query-token-empty", 401, "unauthorized", query="?token=", headers={"Content-Type": JSON}),
    Case("query-other-parameter", 401, "unauthorized", query=f"?access_token={TEST_TOKEN}",
         headers={"Content-Type": JSON}),
    Case("token-in-other-header", 401, "unauthorized",
         headers={"X-Webhook-Token": TEST_TOKEN, "Content-Type": JSON}),
    # -- size: 413, not read past the limit ------------------------------------------------
    Case("body-just-over-limit", 413, "payload_too_large",
         body=body_with(padding="x" * (64 * 1024))),
    Case("body-1-mib", 413, "payload_too_large", body=b"[" + b"0," * (512 * 1024) + b"0]"),
    Case("chunked-over-limit", 413, "payload_too_large", chunked=True),
    # -- unreadable JSON: 400 ------------------------------------------------------------
    Case("empty", 400, "invalid_json", body=b""),
    Case("whitespace-only", 400, "invalid_json", body=b" \n\t "),
    Case("garbage", 400, "invalid_json", body=b"{not json"),
    Case("truncated", 400, "invalid_json", body=VALID[: len(VALID) // 2]),
    Case("trailing-data", 400, "invalid_json", body=VALID + b" {}"),
    Case("single-quotes", 400, "invalid_json", body=b"{'event': 'start_ramp_down'}"),
    Case("comment", 400, "invalid_json", body=b'{"event": "start_ramp_down" /* hi */}'),
    Case("trailing-comma", 400, "invalid_json", body=b'{"event": "start_ramp_down",}'),
    Case("bom", 400, "invalid_json", body=b"\xef\xbb\xbf" + VALID),
    Case("nan", 400, "invalid_number",
         body=b'{"event": "start_ramp_down", "target_load": {"value": NaN, "unit": "mw"}}'),
    Case("infinity", 400, "invalid_number", body=b'{"event": "start_ramp_down", "x": Infinity}'),
    Case("minus-infinity", 400, "invalid_number",
         body=b'{"event": "start_ramp_down", "x": -Infinity}'),
    Case("float-overflow", 400, "invalid_number", body=b'{"event": "start_ramp_down", "x": 1e999}'),
    Case("huge-integer", 400, "invalid_number",
         body=b'{"event": "start_ramp_down", "x": ' + b"9" * 5000 + b"}"),
    Case("duplicate-key", 400, "duplicate_key",
         body=b'{"event": "start_ramp_down", "event": "end_ramp_up"}'),
    Case("nested-duplicate-key", 400, "duplicate_key",
         body=b'{"event": "start_ramp_down", "target_load": {"unit": "mw", "unit": "kw", '
              b'"value": 1}}'),
    *(Case(f"not-an-object-{name}", 400, "not_an_object", body=raw)
      for name, raw in (("array", b"[]"), ("string", b'"start_ramp_down"'), ("number", b"42"),
                        ("null", b"null"), ("true", b"true"))),
    Case("deep-object", 400, "too_deep",
         body=b'{"event": "start_ramp_down", "x": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}"),
    Case("deep-array", 400, "too_deep", body=b"[" * 3000 + b"]" * 3000),
    Case("invalid-utf8", 400, "invalid_encoding",
         body=b'{"event": "start_ramp_down", "x": "\xff\xfe"}'),
    Case("overlong-utf8", 400, "invalid_encoding",
         body=b'{"event": "start_ramp_down", "x": "\xc0\xaf"}'),
    Case("utf16-body", 400, "invalid_encoding", body=VALID.decode().encode("utf-16")),
    Case("lone-surrogate", 400, "invalid_json",
         body=b'{"event": "start_ramp_down", "x": "\\ud800"}'),
    # -- schema violations: 422 ----------------------------------------------------------
    Case("event-missing", 422, "schema_violation", body=body_with(event=_DROP)),
    Case("event-unknown", 422, "schema_violation", body=body_with(event="start_ramp_sideways")),
    Case("event-number", 422, "schema_violation", body=body_with(event=1)),
    Case("event-null", 422, "schema_violation", body=body_with(event=None)),
    Case("event-padded", 422, "schema_violation", body=body_with(event=" start_ramp_down")),
    Case("unit-unknown", 422, "schema_violation",
         body=body_with(target_load={"value": 6.5, "unit": "terawatt"})),
    Case("unit-trailing-space", 422, "schema_violation",
         body=body_with(target_load={"value": 6.5, "unit": "mw "})),
    Case("unit-missing", 422, "schema_violation", body=body_with(target_load={"value": 6.5})),
    Case("value-missing", 422, "schema_violation", body=body_with(target_load={"unit": "mw"})),
    Case("value-negative", 422, "schema_violation",
         body=body_with(calculated_load={"value": -1, "unit": "mw"})),
    Case("value-string", 422, "schema_violation",
         body=body_with(target_load={"value": "6.5", "unit": "mw"})),
    Case("value-boolean", 422, "schema_violation",
         body=body_with(target_load={"value": True, "unit": "mw"})),
    Case("value-too-large", 422, "schema_violation",
         body=body_with(target_load={"value": 1e13, "unit": "mw"})),
    Case("load-as-array", 422, "schema_violation", body=body_with(target_load=[6.5, "mw"])),
    Case("load-as-string", 422, "schema_violation", body=body_with(target_load="6.5 mw")),
    Case("compliant-string", 422, "schema_violation", body=body_with(compliant="yes")),
    Case("compliant-number", 422, "schema_violation", body=body_with(compliant=1)),
    Case("feed-tag-empty", 422, "schema_violation", body=body_with(feed_tag="")),
    Case("feed-tag-number", 422, "schema_violation", body=body_with(feed_tag=123)),
    Case("feed-tag-too-long", 422, "schema_violation", body=body_with(feed_tag="f" * 257)),
    Case("correlation-id-null", 422, "schema_violation", body=body_with(correlation_id=None)),
    Case("start-time-impossible", 422, "schema_violation",
         body=body_with(start_time="2025-13-45T99:00:00Z")),
    Case("start-time-words", 422, "schema_violation", body=body_with(start_time="yesterday")),
    Case("start-time-epoch", 422, "schema_violation", body=body_with(start_time=1761325200)),
    Case("start-time-no-offset", 422, "schema_violation",
         body=body_with(start_time="2025-10-24T17:00:00")),
    Case("end-time-date-only", 422, "schema_violation", body=body_with(end_time="2025-10-24")),
]
# fmt: on


def test_corpus_is_big_and_its_ids_unique() -> None:
    assert len(CORPUS) >= 40
    assert len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input") / "events.db"


@pytest.fixture(scope="module")
def server(db_path: Path) -> Iterator[FunctionServer]:
    env = {"GRIDHOOK_STORE": f"sqlite:///{db_path}", "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN}
    with function_server("receive_power_event", env, cwd=db_path.parent) as srv:
        yield srv


def send(server: FunctionServer, case: Case) -> Reply:
    """One case on a fresh connection (an error answer may close it)."""
    if case.chunked:
        # http.client streams an iterable body with Transfer-Encoding: chunked.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("POST", "/nvgrid/webhook", _chunks(200_000), case.headers)
            response = conn.getresponse()
            return Reply(response.status, response.read(), dict(response.getheaders()), 0.0)
        finally:
            conn.close()
    client = Client("127.0.0.1", server.port, timeout=30)
    try:
        path = "/nvgrid/webhook" + case.query
        return client.send(Request(case.body, case.method, path, case.headers))
    finally:
        client.close()


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_malformed_request_gets_its_documented_4xx(server: FunctionServer, case: Case) -> None:
    reply = send(server, case)
    assert reply.status == case.status, (reply.error, reply.body[:500])
    if case.status == 405:
        assert reply.headers["Allow"] == "POST"
    if case.method == "HEAD":
        return  # a HEAD answer has no body by definition
    assert reply.headers["Content-Type"].startswith(JSON)
    error = reply.json()["error"]
    assert error["code"] == case.code and error["message"]
    if case.status == 422:
        assert error["details"] and all(d["path"] and d["message"] for d in error["details"])


def test_after_the_corpus_the_server_is_alive_and_stored_nothing_invalid(
    server: FunctionServer, db_path: Path
) -> None:
    # Runs after the corpus (file order); sends it again so it also stands alone.
    statuses = {send(server, case).status for case in CORPUS}
    assert statuses <= {400, 401, 405, 413, 415, 422}
    assert server.returncode is None
    reply = send(server, Case("valid", 200, None, body=body_with(correlation_id="after-corpus")))
    assert reply.status == 200 and reply.json()["status"] == "accepted"
    store = open_store(f"sqlite:///{db_path}")
    try:
        events = store.events(EventQuery(limit=1000)).events
    finally:
        store.close()
    assert [e.correlation_id for e in events] == ["after-corpus"]
    assert "Traceback" not in server.logs()
