"""Canonical form, event ids and normalised loads."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridhook.events import canonical_json, event_id, normalise, parse_time, to_watts
from tests.harness import SEED_PAYLOAD


def test_key_order_and_whitespace_do_not_change_the_id() -> None:
    reordered = json.loads(json.dumps(dict(reversed(list(SEED_PAYLOAD.items()))), indent=4))
    assert event_id(reordered) == event_id(SEED_PAYLOAD)


def test_integral_floats_hash_like_integers() -> None:
    a = copy.deepcopy(SEED_PAYLOAD)
    b = copy.deepcopy(SEED_PAYLOAD)
    a["prev_target_load"]["value"] = 10.0
    b["prev_target_load"]["value"] = 10
    assert event_id(a) == event_id(b)


@pytest.mark.parametrize(
    "path, value",
    [
        (("event",), "end_ramp_down"),
        (("target_load", "value"), 6.6),
        (("compliant",), True),
        (("correlation_id",), "other"),
        (("calculated_load", "unit"), "kw"),
    ],
)
def test_any_changed_value_changes_the_id(path, value) -> None:
    changed = copy.deepcopy(SEED_PAYLOAD)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert event_id(changed) != event_id(SEED_PAYLOAD)


def test_canonical_json_is_compact_and_sorted() -> None:
    assert canonical_json({"b": 1.0, "a": [2.5, {"d": None, "c": "é"}]}) == (
        '{"a":[2.5,{"c":"é","d":null}],"b":1}'
    )


@pytest.mark.parametrize(
    "load, watts",
    [
        ({"value": 6.5, "unit": "mw"}, 6.5e6),
        ({"value": 6.5, "unit": "MW"}, 6.5e6),
        ({"value": 250, "unit": "kW"}, 250e3),
        ({"value": 3, "unit": "watt"}, 3.0),
        ({"value": 2, "unit": "Kilowatt"}, 2e3),
        ({"value": 1, "unit": "megawatt"}, 1e6),
        (None, None),
    ],
)
def test_loads_normalise_to_watts(load, watts) -> None:
    assert to_watts(load) == watts


def test_parse_time_gives_aware_utc() -> None:
    assert parse_time("2025-10-24T19:00:00+02:00") == datetime(2025, 10, 24, 17, tzinfo=UTC)
    assert parse_time("2025-10-24t17:00:00.123456789z") == datetime(
        2025, 10, 24, 17, 0, 0, 123456, tzinfo=UTC
    )
    assert parse_time(None) is None


def test_normalise_derives_fields_and_lowercases_the_event() -> None:
    payload = {**SEED_PAYLOAD, "event": "END_RAMP_DOWN", "target_load": None}
    event = normalise(payload, datetime(2026, 1, 1, tzinfo=UTC))
    assert event.event == "end_ramp_down"
    assert event.phase == "constrained"
    assert event.target_w is None  # back to the default
    assert event.calculated_w == 9.2e6
    assert event.feed_tag == "main_power_feed"
    assert event.to_dict()["received_at"] == "2026-01-01T00:00:00Z"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=6))
def test_property_id_ignores_key_order_and_whitespace(payload) -> None:
    shuffled = dict(reversed(list(payload.items())))
    reparsed = json.loads(json.dumps(shuffled, indent=2))
    assert event_id(reparsed) == event_id(payload)


@given(
    st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=6),
    st.text(min_size=1, max_size=6),
    json_values,
)
def test_property_id_changes_when_a_value_changes(payload, key, value) -> None:
    if key in payload and canonical_json({"v": payload[key]}) == canonical_json({"v": value}):
        return  # the "change" is no change at all
    changed = {**payload, key: value}
    assert event_id(changed) != event_id(payload)


# -- the site is part of the id, except the default site's ---------------------------------

#: SEED_PAYLOAD's id as gridhook computed it before sites (c82de6c): a store written then
#: must find its events under the same ids, or every redelivery would be stored again.
ID_BEFORE_SITES = "6497fc57b562a53a3a4024613fb463a5"


def test_the_default_sites_ids_are_those_from_before_sites() -> None:
    assert event_id(SEED_PAYLOAD) == ID_BEFORE_SITES
    assert event_id(SEED_PAYLOAD, "default") == ID_BEFORE_SITES
    event = normalise(copy.deepcopy(SEED_PAYLOAD), datetime(2026, 1, 1, tzinfo=UTC))
    assert (event.event_id, event.site) == (ID_BEFORE_SITES, "default")


def test_another_sites_id_hashes_the_site_with_the_payload() -> None:
    ids = {site: event_id(SEED_PAYLOAD, site) for site in ("phx1", "ams2", "phx10")}
    assert len(set(ids.values()) | {ID_BEFORE_SITES}) == 4
    event = normalise(copy.deepcopy(SEED_PAYLOAD), datetime(2026, 1, 1, tzinfo=UTC), site="phx1")
    assert (event.event_id, event.site) == (ids["phx1"], "phx1")
    # Still the canonical payload's: key order and spacing do not matter on a site either.
    reordered = json.loads(json.dumps(dict(reversed(list(SEED_PAYLOAD.items())))))
    assert event_id(reordered, "phx1") == ids["phx1"]
