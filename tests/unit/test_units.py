"""One units table: the schema's ``x-watts-per-unit``. The schema's pattern admits exactly
its names (in any case), and every conversion in gridhook — webhook loads, DPS's GetStatus
readings, the NvGrid client's targets — goes by it, gigawatts included."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from dpsapi.v1 import nvgrid_pb2
from gridhook import units
from gridhook.events import StoredEvent, normalise, to_watts
from gridhook.nvgrid import convert
from gridhook.nvgrid.errors import NvGridConfigError
from gridhook.nvgrid.models import FeedStatus, Load, LoadTarget
from gridhook.observe import check_drift, load_samples
from gridhook.schema import violations
from gridhook.state import feed_state
from tests.harness import SEED_PAYLOAD

NOW = datetime(2026, 12, 2, 8, tzinfo=UTC)


def expected_pattern(names: list[str]) -> str:
    """The pattern that admits exactly ``names`` in any case (ECMA-262 and Python alike)."""
    any_case = ("".join(f"[{c.lower()}{c.upper()}]" for c in name) for name in names)
    return "^(?!.*\\n)(" + "|".join(any_case) + ")$"


def test_the_schema_pattern_admits_exactly_the_table() -> None:
    names = list(units.unit_schema()[units.TABLE_KEYWORD])
    expected = expected_pattern(names)
    assert units.unit_schema()["pattern"] == expected, (
        f"the unit pattern and {units.TABLE_KEYWORD} disagree; for this table the pattern is "
        f"{expected!r}"
    )


def test_the_schema_message_names_every_unit() -> None:
    message = units.unit_schema()["x-message"]
    for name in units.watts_per_unit():
        assert re.search(rf"\b{name}\b", message), name


@pytest.mark.parametrize(
    ("unit", "watts"),
    [
        ("w", 1.0),
        ("watt", 1.0),
        ("kw", 1e3),
        ("Kilowatt", 1e3),
        ("MW", 1e6),
        ("megawatt", 1e6),
        ("gw", 1e9),
        ("GW", 1e9),
        ("gigawatt", 1e9),
        ("GigaWatt", 1e9),
    ],
)
def test_every_name_in_any_case_passes_the_schema_and_converts(unit: str, watts: float) -> None:
    load = {"value": 1.5, "unit": unit}
    assert violations({**SEED_PAYLOAD, "target_load": load}) == []
    assert to_watts(load) == 1.5 * watts


@pytest.mark.parametrize("unit", ["tw", "terawatt", "gwh", "kWh", "gigawatts", "g w", ""])
def test_anything_else_fails_both(unit: str) -> None:
    payload = {**SEED_PAYLOAD, "target_load": {"value": 1, "unit": unit}}
    assert [v.path for v in violations(payload)] == ["/target_load/unit"]
    with pytest.raises(units.UnknownUnit, match=units.TABLE_KEYWORD):
        units.to_watts(1, unit)


def test_a_value_beyond_a_float_is_infinite_watts_as_the_stores_keep_it() -> None:
    assert units.to_watts(10**400, "gw") == math.inf  # float() alone would raise
    assert units.to_watts(1e300, "gw") == math.inf


# -- DPS's readings (GetStatus), observed by reconcile ----------------------------------------


def status(load: Load | None, target: Load | None = None) -> FeedStatus:
    """DPS's status of a feed: its calculated load, and a target (c-1) if it has one."""
    current = LoadTarget(NOW - timedelta(hours=1), target_load=target, correlation_id="c-1")
    return FeedStatus(current_target=current if target else None, calculated_load=load)


def test_samples_convert_dps_loads_by_the_table() -> None:
    dps = {"a": status(Load(1.2, "gigawatt")), "b": status(Load(250, "kw"))}
    samples = load_samples(dps, NOW, timedelta(days=1))
    assert [s.calculated_w for s in samples] == [1.2e9, 250e3]


def test_a_dps_unit_the_table_lacks_is_unknown_never_watts() -> None:
    # What convert gives for an enum value this build's proto does not know: its number.
    dps = {"f1": status(Load(5, "7"), target=Load(6.5, "7"))}
    [sample] = load_samples(dps, NOW, timedelta(days=1))
    assert sample.calculated_w is None and sample.target_w is None
    # Our events say 6.5 MW on the same target: a number in an unknown unit is not compared
    # (read as watts, it was "6.5 W", and reported as drift).
    constrained = feed_state(
        [event("start_ramp_down", 0), event("end_ramp_down", 5)],
        now=NOW,
        ramp_deadline=timedelta(minutes=30),
    )
    assert constrained is not None and constrained.target_w == 6.5e6
    assert check_drift(dps, {"f1": constrained}, now=NOW) == []
    # A target we never heard of is still drift, whatever its unit.
    [unseen] = check_drift(dps, {}, now=NOW)
    assert "'c-1'" in unseen["message"] and "cannot convert" in unseen["message"]


def event(kind: str, seconds: float) -> StoredEvent:
    payload = {**SEED_PAYLOAD, "event": kind, "feed_tag": "f1", "correlation_id": "c-1"}
    return normalise(payload, NOW - timedelta(hours=1) + timedelta(seconds=seconds))


# -- the NvGrid client's targets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "short"),
    [("GW", "gw"), ("gigawatt", "gw"), ("gigawatts", "gw"), ("UNIT_MEGAWATT", "mw")],
)
def test_client_unit_spellings_come_from_the_table(raw: str, short: str) -> None:
    assert convert.parse_unit(raw) == short


def test_client_unknown_unit_names_the_table() -> None:
    with pytest.raises(NvGridConfigError, match="w, kw, mw, gw"):
        convert.parse_unit("tw")


def test_a_gigawatt_target_is_sent_in_the_largest_unit_dps_has() -> None:
    target = LoadTarget(NOW, target_load=Load(1.2, "gw"), correlation_id="big")
    [message] = convert.load_target_request([target]).load_targets
    assert message.target_load.unit == nvgrid_pb2.LoadValue.UNIT_MEGAWATT
    assert message.target_load.value == pytest.approx(1200.0)
