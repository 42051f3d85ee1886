"""Power units: the simulator keeps every load in watts and converts at the edges."""

from __future__ import annotations

from dpsapi.v1 import nvgrid_pb2

#: A LoadValue unit (an int at run time; the enum type to mypy).
Unit = nvgrid_pb2.LoadValue.Unit

WATTS_PER_UNIT: dict[Unit, float] = {
    nvgrid_pb2.LoadValue.UNIT_WATT: 1.0,
    nvgrid_pb2.LoadValue.UNIT_KILOWATT: 1e3,
    nvgrid_pb2.LoadValue.UNIT_MEGAWATT: 1e6,
}

# Spellings accepted in the feeds config file (and by the CLI).
_UNIT_BY_NAME: dict[str, Unit] = {
    "w": nvgrid_pb2.LoadValue.UNIT_WATT,
    "watt": nvgrid_pb2.LoadValue.UNIT_WATT,
    "kw": nvgrid_pb2.LoadValue.UNIT_KILOWATT,
    "kilowatt": nvgrid_pb2.LoadValue.UNIT_KILOWATT,
    "mw": nvgrid_pb2.LoadValue.UNIT_MEGAWATT,
    "megawatt": nvgrid_pb2.LoadValue.UNIT_MEGAWATT,
}


def parse_unit(name: str) -> Unit:
    """'mw' / 'MW' / 'megawatt' -> LoadValue.UNIT_MEGAWATT; ValueError for anything else."""
    try:
        return _UNIT_BY_NAME[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown unit {name!r}; expected w, kw or mw") from None


def to_watts(value: float, unit: Unit) -> float:
    """Convert value in `unit` (a LoadValue.Unit number) to watts; ValueError if unspecified."""
    try:
        return value * WATTS_PER_UNIT[unit]
    except KeyError:
        raise ValueError("load value has no unit (UNIT_UNSPECIFIED)") from None


def load_value(
    watts: float, unit: Unit = nvgrid_pb2.LoadValue.UNIT_MEGAWATT
) -> nvgrid_pb2.LoadValue:
    return nvgrid_pb2.LoadValue(value=round(watts / WATTS_PER_UNIT[unit], 9), unit=unit)


def payload_load(watts: float) -> dict[str, float | str]:
    """A load as the webhook payload carries it: always megawatts, unit "mw" (as in the seed)."""
    return {"value": round(watts / 1e6, 6), "unit": "mw"}
