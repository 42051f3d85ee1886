"""gridhook.intake.read_event: a body and a receipt time in, an event or a typed rejection
out — the one path the receiver and quarantine replay share — and a normalisation that is
total: whatever the schema admits, nothing after it raises."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridhook.events import CannotNormalise, StoredEvent, event_id, normalise
from gridhook.intake import Accepted, Rejected, RejectReason, Unreadable, read_event
from tests.harness import SEED_PAYLOAD

RECEIVED = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_an_event_is_accepted_with_its_id_and_receipt_time() -> None:
    payload = {**copy.deepcopy(SEED_PAYLOAD), "target_load": {"value": 1.2, "unit": "GW"}}
    outcome = read_event(body(payload), RECEIVED)
    assert isinstance(outcome, Accepted)
    assert outcome.event.event_id == event_id(payload)
    assert outcome.event.received_at == RECEIVED
    assert outcome.event.target_w == 1.2e9 and outcome.event.prev_target_w == 10e6


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", "invalid_json"),
        (b'{"event": "end_ramp_up", "event": "end_ramp_up"}', "duplicate_key"),
        (b"[1]", "not_an_object"),
        (b"\xff", "invalid_encoding"),
    ],
)
def test_what_is_not_a_json_object_is_unreadable(raw: bytes, code: str) -> None:
    outcome = read_event(raw, RECEIVED)
    assert isinstance(outcome, Unreadable) and outcome.code == code and outcome.message


def test_a_lone_surrogate_is_unreadable() -> None:
    outcome = read_event(b'{"event": "end_ramp_up", "x": "\\ud800"}', RECEIVED)
    assert outcome == Unreadable(
        "invalid_json", "body has a string with an unpaired UTF-16 surrogate"
    )


def test_schema_violations_are_rejected_with_every_one() -> None:
    payload = {**SEED_PAYLOAD, "compliant": "yes", "target_load": {"value": -1, "unit": "tw"}}
    outcome = read_event(body(payload), RECEIVED)
    assert isinstance(outcome, Rejected)
    assert outcome.reason is RejectReason.SCHEMA_VIOLATION
    assert [p.path for p in outcome.problems] == [
        "/compliant",
        "/target_load/unit",
        "/target_load/value",
    ]
    assert outcome.event_type == "start_ramp_down"
    assert "3 violation(s)" in outcome.message


# -- normalisation is total ----------------------------------------------------------------
# The schema rules out everything below; a user's edit of the schema may not. Whatever a
# payload holds, normalise gives a StoredEvent or CannotNormalise naming the field.


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"target_load": {"value": 1, "unit": "tw"}}, "/target_load/unit"),
        ({"calculated_load": {"value": "6", "unit": "mw"}}, "/calculated_load/value"),
        ({"calculated_load": {"value": True, "unit": "mw"}}, "/calculated_load/value"),
        ({"prev_target_load": {"value": 6}}, "/prev_target_load/unit"),
        ({"target_load": "6 mw"}, "/target_load"),
        ({"event": "start_ramp_sideways"}, "/event"),
        ({"event": None}, "/event"),
        ({"start_time": "yesterday"}, "/start_time"),
        ({"end_time": 1761325200}, "/end_time"),
        ({"feed_tag": 7}, "/feed_tag"),
        ({"compliant": "yes"}, "/compliant"),
    ],
)
def test_what_normalise_cannot_read_is_named(changes: dict[str, Any], path: str) -> None:
    payload = {**copy.deepcopy(SEED_PAYLOAD), **changes}
    with pytest.raises(CannotNormalise) as caught:
        normalise(payload, RECEIVED)
    assert [p.path for p in caught.value.problems] == [path]
    assert caught.value.problems[0].message


def test_every_unreadable_field_is_named_at_once() -> None:
    payload = {**SEED_PAYLOAD, "feed_tag": 7, "target_load": {"value": 1, "unit": "tw"}}
    with pytest.raises(CannotNormalise) as caught:
        normalise(payload, RECEIVED)
    assert [p.path for p in caught.value.problems] == ["/feed_tag", "/target_load/unit"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
near_loads = st.fixed_dictionaries(
    {},
    optional={
        "value": st.one_of(st.floats(0, 1e12), st.integers(0, 10**400), json_values),
        "unit": st.one_of(st.sampled_from(["w", "MW", "gigawatt", "tw", ""]), json_values),
    },
)
FIELDS = [
    "event",
    "feed_tag",
    "correlation_id",
    "start_time",
    "end_time",
    "target_load",
    "prev_target_load",
    "calculated_load",
    "compliant",
]
near_payloads = st.fixed_dictionaries(
    {},
    optional={
        **{name: json_values for name in FIELDS},
        "event": st.sampled_from(["start_ramp_down", "END_RAMP_UP", "ramp"]) | json_values,
        "start_time": st.sampled_from(["2025-10-24T17:00:00Z", "2025-13-45T99:00:00Z"])
        | json_values,
        "target_load": near_loads | json_values,
        "calculated_load": near_loads,
    },
)


@given(near_payloads)
def test_normalise_never_raises_anything_else(payload: dict[str, Any]) -> None:
    try:
        event = normalise(payload, RECEIVED)
    except CannotNormalise as exc:
        assert exc.problems and all(p.path.startswith("/") and p.message for p in exc.problems)
    else:
        assert isinstance(event, StoredEvent) and event.phase  # the phase is known, too
