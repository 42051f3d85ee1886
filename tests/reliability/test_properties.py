"""Property tests (hypothesis) that tests/unit does not already make:

- the event id, through the real parser, ignores nested key order, whitespace and string
  escaping; writes integral floats and integers alike at any depth; and changes when any
  value changes, at any depth (tests/unit/test_events.py covers the top level only);
- the parser never raises anything but BadPayload on mutated near-valid bodies (random
  bytes, as in tests/unit/test_parsing.py, rarely get past the first character);
- the real receiver, in-process through functions_framework.create_app with main.py,
  answers any request with a documented status and a JSON body, and every 200 is stored.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from gridhook.events import canonical_json, event_id
from gridhook.parsing import BadPayload, parse_payload
from gridhook.store import open_store
from tests.harness import SEED_PAYLOAD, TEST_TOKEN, function_app

# -- strategies -------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=6)

EVENTS = ["start_ramp_down", "end_ramp_down", "START_RAMP_UP", "end_ramp_up"]
UNITS = ["w", "kw", "mw", "MW", "Kw", "watt", "kilowatt", "megawatt", "gw", "GigaWatt"]
TIMES = ["2025-10-24T17:00:00Z", "2025-10-24t17:00:00.5+02:00", "2025-10-24 17:00:00-05:30"]


def _sometimes_wrong(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Mostly valid values, sometimes anything: both sides of every schema rule get hit.
    return st.one_of(good, good, good, scalars)


loads = st.none() | st.fixed_dictionaries(
    {
        "value": _sometimes_wrong(st.floats(min_value=0, max_value=1e12) | st.integers(0, 10**12)),
        "unit": _sometimes_wrong(st.sampled_from(UNITS)),
    }
)
valid_loads = st.none() | st.fixed_dictionaries(
    {"value": st.floats(0, 1e12) | st.integers(0, 10**12), "unit": st.sampled_from(UNITS)}
)
valid_events = st.fixed_dictionaries(
    {"event": st.sampled_from(EVENTS)},
    optional={
        "feed_tag": st.text(min_size=1, max_size=20),
        "correlation_id": st.text(min_size=1, max_size=20),
        "start_time": st.sampled_from(TIMES),
        "target_load": valid_loads,
        "calculated_load": valid_loads,
        "compliant": st.booleans(),
        "future_field": json_values,
    },
)
power_events = st.fixed_dictionaries(
    {"event": _sometimes_wrong(st.sampled_from(EVENTS))},
    optional={
        "feed_tag": _sometimes_wrong(st.text(min_size=1, max_size=20)),
        "correlation_id": _sometimes_wrong(st.text(min_size=1, max_size=20)),
        "start_time": _sometimes_wrong(st.sampled_from(TIMES)),
        "end_time": _sometimes_wrong(st.sampled_from([*TIMES, None])),
        "strategy": _sometimes_wrong(st.just("best_effort")),
        "target_load": loads,
        "prev_target_load": loads,
        "calculated_load": loads,
        "compliant": _sometimes_wrong(st.booleans()),
        "future_field": json_values,
    },
)


def _shuffle_keys(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {k: _shuffle_keys(value[k], data) for k in keys}
    if isinstance(value, list):
        return [_shuffle_keys(v, data) for v in value]
    return value


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaf_paths(v, (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaf_paths(v, (*path, i))
    else:
        yield path


def _flip_number_types(value: Any) -> Any:
    """Integral floats become integers and integers (within float precision) floats."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and abs(value) <= 2**53:
        return float(value)
    if isinstance(value, dict):
        return {k: _flip_number_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_flip_number_types(v) for v in value]
    return value


# -- canonicalisation -------------------------------------------------------------------


@given(objects, st.data())
def test_id_ignores_nested_key_order_whitespace_and_escaping(payload, data) -> None:
    shuffled = _shuffle_keys(payload, data)
    indent = data.draw(st.sampled_from([None, 0, 1, 4, "\t"]))
    separators = data.draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :  ")]))
    ascii_only = data.draw(st.booleans())
    text = json.dumps(shuffled, indent=indent, separators=separators, ensure_ascii=ascii_only)
    redelivered = parse_payload(f" \n{text}\r\n".encode())  # the receiver's own parser
    assert event_id(redelivered) == event_id(payload)


@given(objects)
def test_id_writes_integral_floats_and_integers_alike_at_any_depth(payload) -> None:
    assert event_id(_flip_number_types(payload)) == event_id(payload)


@given(objects, st.data())
def test_id_changes_when_any_value_changes_at_any_depth(payload, data) -> None:
    path = data.draw(st.sampled_from(list(_leaf_paths(payload))))
    replacement = data.draw(json_values)
    changed = copy.deepcopy(payload)
    target = changed
    for step in path[:-1]:
        target = target[step]
    old = target[path[-1]]
    assume(canonical_json({"v": old}) != canonical_json({"v": replacement}))
    target[path[-1]] = replacement
    assert event_id(changed) != event_id(payload)


@pytest.mark.parametrize(
    "a, b",
    [(True, 1), (False, 0), (None, 0), ("1", 1), ([], {}), ("null", None), (0.5, "0.5")],
)
def test_values_python_conflates_are_different_events(a, b) -> None:
    # True == 1 and False == 0 in Python; they are different JSON, so different events.
    assert event_id({"event": "start_ramp_down", "v": a}) != event_id(
        {"event": "start_ramp_down", "v": b}
    )


# -- the parser -------------------------------------------------------------------------

mutations = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "replace", "truncate"]), st.integers(0, 10**6)),
    min_size=1,
    max_size=4,
)
SPECIAL = b'{}[]",:\\ 0e-+.nNItfu\x00\xff\xc3'


@given(power_events, mutations, st.data())
def test_parser_only_raises_bad_payload_on_mutated_bodies(payload, edits, data) -> None:
    raw = bytearray(json.dumps(payload, ensure_ascii=data.draw(st.booleans())).encode())
    for kind, where in edits:
        at = where % (len(raw) + 1)
        byte = data.draw(st.sampled_from(list(SPECIAL)))
        if kind == "insert":
            raw.insert(at, byte)
        elif kind == "delete" and at < len(raw):
            del raw[at]
        elif kind == "replace" and at < len(raw):
            raw[at] = byte
        elif kind == "truncate":
            del raw[at:]
    try:
        assert isinstance(parse_payload(bytes(raw)), dict)
    except BadPayload as exc:
        assert exc.code and exc.message


# -- the receiver, in-process -----------------------------------------------------------

DOCUMENTED = {200, 400, 401, 405, 413, 415, 422}
JSON = "application/json"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[flask.Flask, str]]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/events.db"
    env = {
        "GRIDHOOK_STORE": store_url,
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
        "GRIDHOOK_MAX_BODY_BYTES": "2048",  # small, so 413 is reachable
    }
    with function_app("receive_power_event", env) as function:
        yield function.app, store_url


def _mutated(payload: dict[str, Any], cut: int) -> bytes:
    raw = json.dumps(payload).encode()
    return raw[: cut % (len(raw) + 1)]


bodies = st.one_of(
    valid_events.map(lambda p: json.dumps(p).encode()),
    valid_events.map(lambda p: json.dumps(p).encode()),
    power_events.map(lambda p: json.dumps(p).encode()),
    power_events.map(lambda p: json.dumps(p).encode()),
    st.builds(_mutated, power_events, st.integers(0, 10**4)),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(json.dumps({**SEED_PAYLOAD, "pad": "x" * 3000}).encode()),
)
requests_ = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["POST"] * 12 + ["GET", "PUT", "DELETE", "PATCH"]),
        "content_type": st.sampled_from(
            [JSON] * 10 + [None, "text/plain", "application/json; charset=latin-1"]
        ),
        "auth": st.sampled_from(["bearer"] * 8 + ["query", "basic", "none", "wrong"]),
        "body": bodies,
    }
)


@settings(
    max_examples=250,
    deadline=None,  # a stored event waits for an fsync; speed lives in the benchmark
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(requests_)
def test_receiver_answers_every_request_as_documented(app, req) -> None:
    flask_app, store_url = app
    headers: dict[str, str] = {}
    query = ""
    if req["content_type"]:
        headers["Content-Type"] = req["content_type"]
    if req["auth"] == "bearer":
        headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    elif req["auth"] == "wrong":
        headers["Authorization"] = "Bearer wrong-token-0123456789"
    elif req["auth"] == "basic":
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"dps:{TEST_TOKEN}".encode()).decode()
        )
    elif req["auth"] == "query":
        query = f"?token={TEST_TOKEN}"
    response = flask_app.test_client().open(
        "/nvgrid/webhook" + query, method=req["method"], data=req["body"], headers=headers
    )
    event(f"status {response.status_code}")  # --hypothesis-show-statistics shows the mix
    assert response.status_code in DOCUMENTED, response.get_data()[:300]
    assert response.mimetype == JSON
    body = json.loads(response.get_data())
    if response.status_code == 200:
        assert body["status"] in ("accepted", "duplicate")
        assert re.fullmatch(r"[0-9a-f]{32}", body["event_id"])
        store = open_store(store_url)
        try:
            assert store.get_event(body["event_id"]) is not None  # 200 only once stored
        finally:
            store.close()
    else:
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
