"""The power-event schema: what passes, what fails, and how failures read."""

from __future__ import annotations

import copy

import pytest

from gridhook.cli.run import SEED_TEST_PAYLOAD
from gridhook.schema import SCHEMA_PATH, load_schema, validator, violations
from tests.harness import REPO, SEED_PAYLOAD


def test_schema_is_the_top_level_file_and_valid_2020_12() -> None:
    assert SCHEMA_PATH.resolve() == (REPO / "schemas" / "power-event.schema.json").resolve()
    assert load_schema()["$schema"].endswith("2020-12/schema")
    assert validator() is validator()  # compiled once


def test_seed_payloads_are_valid() -> None:
    import json

    assert violations(SEED_PAYLOAD) == []
    assert violations(json.loads(SEED_TEST_PAYLOAD)) == []  # the curl test: no feed_tag


def test_only_the_event_type_is_required() -> None:
    assert violations({"event": "end_ramp_up"}) == []
    assert [v.path for v in violations({})] == ["/event"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("target_load", None),
        ("end_time", None),
        ("calculated_load", {"value": 0, "unit": "W"}),
        ("event", "START_RAMP_UP"),
        ("start_time", "2025-10-24T17:00:00.5+05:30"),
        ("unknown_future_field", {"anything": [1, None]}),
        ("target_load", {"value": 1, "unit": "mw", "extra": True}),
    ],
)
def test_accepted_variants(field, value) -> None:
    payload = {**copy.deepcopy(SEED_PAYLOAD), field: value}
    assert violations(payload) == []


@pytest.mark.parametrize(
    "field, value, path",
    [
        ("event", "ramp", "/event"),
        ("event", 3, "/event"),
        ("feed_tag", "", "/feed_tag"),
        ("feed_tag", "x" * 257, "/feed_tag"),
        ("start_time", "yesterday", "/start_time"),
        ("start_time", "2025-02-30T00:00:00Z", "/start_time"),
        ("start_time", "2025-10-24T17:00:00", "/start_time"),  # no offset
        ("start_time", None, "/start_time"),
        ("end_time", 1700000000, "/end_time"),
        ("strategy", 1, "/strategy"),
        ("target_load", {"value": "6.5", "unit": "mw"}, "/target_load/value"),
        ("target_load", {"value": 6.5}, "/target_load/unit"),
        ("target_load", {"value": 6.5, "unit": "tw"}, "/target_load/unit"),
        ("target_load", {"value": -0.1, "unit": "mw"}, "/target_load/value"),
        ("target_load", 6.5, "/target_load"),
        ("compliant", "false", "/compliant"),
        ("compliant", None, "/compliant"),
        ("correlation_id", 42, "/correlation_id"),
    ],
)
def test_rejected_fields_point_at_the_problem(field, value, path) -> None:
    payload = {**copy.deepcopy(SEED_PAYLOAD), field: value}
    found = violations(payload)
    assert [v.path for v in found] == [path], found
    assert found[0].message


def test_messages_name_the_allowed_values_and_stay_short() -> None:
    payload = {**SEED_PAYLOAD, "target_load": {"value": 1, "unit": "gw" * 500}}
    (found,) = violations(payload)
    assert "kilowatt" in found.message and len(found.message) < 200


def test_every_violation_is_listed() -> None:
    payload = {"event": "x", "compliant": 1, "target_load": {}, "feed_tag": ""}
    assert [v.path for v in violations(payload)] == [
        "/compliant",
        "/event",
        "/feed_tag",
        "/target_load/unit",
        "/target_load/value",
    ]


def test_json_pointer_escapes() -> None:
    from gridhook.schema import _pointer

    assert _pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    assert _pointer([]) == ""


def test_a_trailing_newline_is_not_a_valid_enum_like_value() -> None:
    # Python's '$' matches before a final newline; the schema's patterns must not.
    assert [v.path for v in violations({"event": "start_ramp_up\n"})] == ["/event"]
    bad_unit = {"event": "end_ramp_up", "target_load": {"value": 1, "unit": "mw\n"}}
    assert [v.path for v in violations(bad_unit)] == ["/target_load/unit"]
    assert [v.path for v in violations({**SEED_PAYLOAD, "end_time": "2025-10-24T18:00:00Z\n"})] == [
        "/end_time"
    ]
