"""The webhook HTTP contract (ARCHITECTURE.md), row by row, through the real
functions-framework app with the receive_power_event target: in-process (``app``, Flask's
test client) for what the app answers; through the real server (``server``) for what the
process does — bodies it must not read, chunked and short bodies, its logs, start-up."""

from __future__ import annotations

import base64
import copy
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gridhook.store import EventQuery, open_store
from tests.harness import (
    OLD_TOKEN,
    SEED_PAYLOAD,
    TEST_TOKEN,
    FunctionApp,
    FunctionServer,
    Reply,
    function_app,
    function_server,
)

JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", **JSON}


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("receiver") / "events.db"


def receiver_env(db_path: Path) -> dict[str, str]:
    return {
        "GRIDHOOK_STORE": f"sqlite:///{db_path}",
        "GRIDHOOK_WEBHOOK_TOKENS": f"{TEST_TOKEN},{OLD_TOKEN}",
        "GRIDHOOK_MAX_BODY_BYTES": "16384",
    }


@pytest.fixture(scope="module")
def server(db_path: Path) -> Iterator[FunctionServer]:
    with function_server("receive_power_event", receiver_env(db_path)) as srv:
        yield srv


@pytest.fixture(scope="module")
def app(db_path: Path) -> Iterator[FunctionApp]:
    with function_app("receive_power_event", receiver_env(db_path)) as function:
        yield function


def stored(db_path: Path) -> list:
    store = open_store(f"sqlite:///{db_path}")
    try:
        return store.events(EventQuery(limit=1000)).events
    finally:
        store.close()


def unique_payload(**changes) -> dict:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["correlation_id"] = f"test-{time.monotonic_ns()}"
    payload.update(changes)
    return payload


def assert_json_error(
    response: requests.Response | Reply, status: int, code: str | None = None
) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


# -- 200 accepted / duplicate ---------------------------------------------------------


def test_valid_new_event_is_stored_then_acknowledged(app, db_path) -> None:
    payload = unique_payload()
    response = app.post(json=payload, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted"
    match = [e for e in stored(db_path) if e.event_id == body["event_id"]]
    assert len(match) == 1 and match[0].payload == payload


def test_redelivery_is_a_duplicate_and_stored_once(app, db_path) -> None:
    payload = unique_payload()
    first = app.post(json=payload, headers=AUTH).json()
    # Same event, other key order and whitespace: still the same event.
    reordered = json.dumps(dict(reversed(list(payload.items()))), indent=3)
    second = app.post(data=reordered, headers=AUTH)
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "event_id": first["event_id"]}
    assert [e.event_id for e in stored(db_path)].count(first["event_id"]) == 1


def test_seed_curl_payload_without_feed_tag_is_accepted(app) -> None:
    payload = unique_payload()
    del payload["feed_tag"]
    assert app.post(json=payload, headers=AUTH).json()["status"] == "accepted"


# -- 401 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, query",
    [
        (JSON, ""),
        ({"Authorization": "Bearer wrong-token-0123456789", **JSON}, ""),
        ({"Authorization": "Basic " + base64.b64encode(b"dps:nope").decode(), **JSON}, ""),
        ({"Authorization": "Basic !!!notbase64", **JSON}, ""),
        ({"Authorization": f"Token {TEST_TOKEN}", **JSON}, ""),  # unknown scheme
        (JSON, "?token=wrong-token-0123456789"),
    ],
    ids=["none", "wrong-bearer", "wrong-basic", "garbled-basic", "unknown-scheme", "wrong-query"],
)
def test_missing_or_wrong_token_is_401_and_nothing_stored(server, db_path, headers, query) -> None:
    payload = unique_payload()
    before = len(stored(db_path))
    response = server.post("/nvgrid/webhook" + query, json=payload, headers=headers)
    assert_json_error(response, 401, "unauthorized")
    assert len(stored(db_path)) == before
    assert "wrong-token" not in server.logs()


@pytest.mark.parametrize(
    "headers, query",
    [
        (AUTH, ""),
        (
            {
                "Authorization": "Basic " + base64.b64encode(f"dps:{TEST_TOKEN}".encode()).decode(),
                **JSON,
            },
            "",
        ),
        (JSON, f"?token={TEST_TOKEN}"),
        ({"Authorization": f"Bearer {OLD_TOKEN}", **JSON}, ""),  # rotation: the old one still works
    ],
    ids=["bearer", "basic-password", "query", "previous-token"],
)
def test_token_accepted_from_every_carrier(server, headers, query) -> None:
    response = server.post("/nvgrid/webhook" + query, json=unique_payload(), headers=headers)
    assert response.status_code == 200, response.text
    # The token never reaches the logs, even from the query string.
    assert TEST_TOKEN not in server.logs() and OLD_TOKEN not in server.logs()


# -- 405 / 415 ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_not_post_is_405_with_allow(app, method) -> None:
    response = app.request(method, "/nvgrid/webhook", headers=AUTH)
    assert_json_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_not_json_content_type_is_415(app, db_path, content_type) -> None:
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    before = len(stored(db_path))
    response = app.post(data=json.dumps(unique_payload()), headers=headers)
    assert_json_error(response, 415, "unsupported_media_type")
    assert len(stored(db_path)) == before


def test_json_with_utf8_charset_is_fine(app) -> None:
    headers = {**AUTH, "Content-Type": "application/json; charset=UTF-8"}
    assert app.post(data=json.dumps(unique_payload()), headers=headers).status_code == 200


# -- 413 ------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(app) -> None:
    payload = unique_payload(padding="x" * 17000)
    assert_json_error(app.post(json=payload, headers=AUTH), 413, "payload_too_large")


def test_chunked_body_over_the_limit_is_413(server) -> None:
    def chunks():
        yield b'{"event": "start_ramp_down", "padding": "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"}'

    response = server.post(data=chunks(), headers=AUTH)
    assert_json_error(response, 413, "payload_too_large")


def read_reply(sock: socket.socket) -> str:
    """One whole HTTP response (headers and Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_oversized_body_is_refused_without_being_read(server) -> None:
    # Announce 50 MB, send 1 KB, then wait: the answer must come without the rest.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /nvgrid/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TEST_TOKEN}\r\n".encode()
            + b"Content-Length: 50000000\r\n\r\n"
            + b"{"
            + b" " * 1023
        )
        reply = read_reply(sock)
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"payload_too_large"' in reply


def test_unauthenticated_body_is_not_read(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /nvgrid/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{"
        )
        reply = read_reply(sock)
    assert reply.startswith("HTTP/1.1 401"), reply


# -- 400 ------------------------------------------------------------------------------


def test_body_shorter_than_its_content_length_is_400(server, db_path) -> None:
    before = len(stored(db_path))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /nvgrid/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TEST_TOKEN}\r\n".encode()
            + b'Content-Length: 500\r\n\r\n{"event": "start_ramp_down"'
        )
        sock.shutdown(socket.SHUT_WR)  # the sender gives up half-way
        reply = read_reply(sock)
    assert reply.startswith("HTTP/1.1 400"), reply
    assert '"incomplete_body"' in reply
    assert len(stored(db_path)) == before


@pytest.mark.parametrize(
    "body, code",
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b'{"event": "start_ramp_down"', "invalid_json"),  # truncated
        (
            b'{"event": "start_ramp_down", "calculated_load": {"value": NaN, "unit": "mw"}}',
            "invalid_number",
        ),
        (b'{"event": "start_ramp_down", "x": Infinity}', "invalid_number"),
        (b'{"event": "start_ramp_down", "x": -Infinity}', "invalid_number"),
        (b'{"event": "start_ramp_down", "x": 1e999}', "invalid_number"),
        (b'{"event": "start_ramp_down", "x": ' + b"9" * 5000 + b"}", "invalid_number"),
        (b'{"event": "start_ramp_down", "event": "end_ramp_up"}', "duplicate_key"),
        (
            b'{"event": "start_ramp_down", "target_load": {"value": 1, "value": 2, "unit": "mw"}}',
            "duplicate_key",
        ),
        (b"[]", "not_an_object"),
        (b'"start_ramp_down"', "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"event": "start_ramp_down", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "too_deep"),
        (b"[" * 3000 + b"]" * 3000, "too_deep"),
        (b'{"event": "start_ramp_down", "x": "\xff\xfe"}', "invalid_encoding"),
        (b'{"event": "start_ramp_down", "x": "\\ud800"}', "invalid_json"),
    ],
    ids=[
        "empty",
        "garbage",
        "truncated",
        "nan",
        "infinity",
        "minus-infinity",
        "float-overflow",
        "huge-int",
        "duplicate-key",
        "nested-duplicate-key",
        "array",
        "string",
        "null",
        "deep-object",
        "deep-array",
        "invalid-utf8",
        "lone-surrogate",
    ],
)
def test_unreadable_json_is_400(app, db_path, body, code) -> None:
    before = len(stored(db_path))
    response = app.post(data=body, headers=AUTH)
    assert_json_error(response, 400, code)
    assert len(stored(db_path)) == before


# -- 422 ------------------------------------------------------------------------------


def test_schema_violations_are_422_listing_every_one_and_quarantined(app, db_path) -> None:
    payload = unique_payload(
        event="start_ramp_sideways",
        target_load={"value": -1, "unit": "terawatt"},
        prev_target_load={"unit": "mw"},
        compliant="yes",
        start_time="2025-13-45T99:00:00Z",
    )
    response = app.post(json=payload, headers=AUTH)
    error = assert_json_error(response, 422, "schema_violation")
    paths = sorted(d["path"] for d in error["details"])
    assert paths == [
        "/compliant",
        "/event",
        "/prev_target_load/value",
        "/start_time",
        "/target_load/unit",
        "/target_load/value",
    ]
    assert all(d["message"] for d in error["details"])
    assert payload["correlation_id"] not in [e.correlation_id for e in stored(db_path)]
    store = open_store(f"sqlite:///{db_path}")
    try:
        quarantined = store.quarantined().items
    finally:
        store.close()
    assert any(payload["correlation_id"] in q.body for q in quarantined)


def test_missing_event_type_points_at_it(app) -> None:
    payload = unique_payload()
    del payload["event"]
    error = assert_json_error(app.post(json=payload, headers=AUTH), 422)
    assert error["details"] == [{"path": "/event", "message": "'event' is required"}]


def test_unknown_fields_are_kept_and_units_any_case(app, db_path) -> None:
    payload = unique_payload(
        future_field={"a": [1, 2]},
        target_load={"value": 6500, "unit": "KW"},
        calculated_load={"value": 9.2e6, "unit": "watt"},
        end_time=None,
    )
    body = app.post(json=payload, headers=AUTH).json()
    event = next(e for e in stored(db_path) if e.event_id == body["event_id"])
    assert event.payload["future_field"] == {"a": [1, 2]}
    assert event.target_w == 6.5e6 and event.calculated_w == 9.2e6


# -- framework paths: still JSON ------------------------------------------------------


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico"])
def test_framework_paths_answer_json(app, path) -> None:
    response = app.get(path)
    assert_json_error(response, 404)


# -- logs -----------------------------------------------------------------------------


def test_one_structured_log_line_per_request(server) -> None:
    payload = unique_payload()
    server.post(f"/nvgrid/webhook?token={TEST_TOKEN}", json=payload, headers=JSON)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for line in server.logs().splitlines()
            if line.startswith("{") and payload["correlation_id"] in line
        ]
        if lines:
            break
        time.sleep(0.05)
    assert len(lines) == 1
    entry = lines[0]
    assert entry["severity"] == "INFO"
    assert entry["outcome"] == "accepted"
    assert entry["feed_tag"] == "main_power_feed"
    assert len(entry["event_id"]) == 32
    assert entry["latency_ms"] >= 0
    assert "REDACTED" in entry["httpRequest"]["requestUrl"]


# -- 503 ------------------------------------------------------------------------------


def test_store_unavailable_is_503_with_retry_after(tmp_path) -> None:
    # A real Firestore client pointed at a port where nothing listens.
    env = {
        "GRIDHOOK_STORE": "firestore://unreachable/gridhook",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
        "GRIDHOOK_STORE_TIMEOUT_SECONDS": "1",
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
    }
    with function_server("receive_power_event", env, cwd=tmp_path) as srv:
        response = srv.post(json=unique_payload(), headers=AUTH)
        assert_json_error(response, 503, "store_unavailable")
        assert int(response.headers["Retry-After"]) > 0
        lines = [json.loads(line) for line in srv.logs().splitlines() if line.startswith("{")]
    # One line for the request, at ERROR, saying why (and nothing about the token).
    (entry,) = [line for line in lines if line.get("outcome") == "store_unavailable"]
    assert entry["severity"] == "ERROR" and "Firestore" in entry["error"]
    assert TEST_TOKEN not in json.dumps(lines)


def test_unopenable_sqlite_store_is_503(tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{blocker}/events.db",
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
    }
    with function_app("receive_power_event", env) as function:
        response = function.post(json=unique_payload(), headers=AUTH)
        assert_json_error(response, 503, "store_unavailable")
        assert "Retry-After" in response.headers


# -- start-up -------------------------------------------------------------------------


def test_refuses_to_start_without_a_token(tmp_path) -> None:
    server = FunctionServer(
        "receive_power_event", {"GRIDHOOK_STORE": f"sqlite:///{tmp_path}/e.db"}, cwd=tmp_path
    )
    server.env.pop("GRIDHOOK_WEBHOOK_TOKENS", None)
    server.env.pop("GRIDHOOK_WEBHOOK_TOKENS_FILE", None)
    with pytest.raises(RuntimeError) as failed:
        server.start(timeout=15)
    assert "GRIDHOOK_WEBHOOK_TOKENS" in str(failed.value)


def test_explicitly_unauthenticated_starts_with_a_warning(tmp_path) -> None:
    env = {"GRIDHOOK_STORE": f"sqlite:///{tmp_path}/e.db", "GRIDHOOK_ALLOW_UNAUTHENTICATED": "1"}
    with function_server("receive_power_event", env, cwd=tmp_path) as srv:
        assert srv.post(json=unique_payload(), headers=JSON).status_code == 200
        warnings = [json.loads(line) for line in srv.logs().splitlines() if '"WARNING"' in line]
    assert any("GRIDHOOK_ALLOW_UNAUTHENTICATED" in w["message"] for w in warnings)


def test_tokens_from_a_mounted_secret_file(tmp_path) -> None:
    secret = tmp_path / "tokens"
    secret.write_text(f"{TEST_TOKEN}\n{OLD_TOKEN}\n")
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/e.db",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(secret),
    }
    with function_app("receive_power_event", env) as function:
        assert function.post(json=unique_payload(), headers=AUTH).status_code == 200
        old = {"Authorization": f"Bearer {OLD_TOKEN}", **JSON}
        assert function.post(json=unique_payload(), headers=old).status_code == 200
