"""Power units: the one table of unit names and their size in watts.

The table is ``x-watts-per-unit`` on a load's ``unit`` in the power-event schema, beside the
pattern that validates units, so the payload's rules stay in one file: the schema admits a
unit by its pattern, and gridhook converts it by this table (tests/unit/test_units.py fails
if the pattern admits anything but the table's names, in any case). A schema edited to admit
a unit the table lacks is caught where the unit is converted (:class:`UnknownUnit`), and the
receiver quarantines such a payload (422) instead of failing on it.

Every conversion in gridhook goes through here: webhook loads, the NvGrid client's loads and
DPS's GetStatus readings. (The simulator keeps its own table: it imports nothing of gridhook
but the clock.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from gridhook import schema

__all__ = ["TABLE_KEYWORD", "UnknownUnit", "to_watts", "unit_schema", "watts_per_unit"]

#: The schema keyword that holds the table.
TABLE_KEYWORD = "x-watts-per-unit"


class UnknownUnit(ValueError):
    """A unit name that is not in the table."""

    def __init__(self, unit: object) -> None:
        super().__init__(
            f"{unit!r} has no size in the power-event schema's {TABLE_KEYWORD} table "
            f"(it has {', '.join(watts_per_unit())}); a unit the schema admits must be added there"
        )
        self.unit = unit


def unit_schema() -> Mapping[str, Any]:
    """The schema's definition of a load's ``unit`` (pattern, message and table)."""
    definition: Mapping[str, Any] = schema.load_schema()["$defs"]["nullableLoad"]["properties"][
        "unit"
    ]
    return definition


@cache
def watts_per_unit() -> Mapping[str, float]:
    """Lower-case unit name -> watts per unit, read from the schema once."""
    table = unit_schema().get(TABLE_KEYWORD)
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{schema.SCHEMA_PATH}: a load's unit has no {TABLE_KEYWORD} table")
    return MappingProxyType({str(name).lower(): float(watts) for name, watts in table.items()})


def to_watts(value: float, unit: str) -> float:
    """``value`` in ``unit`` (any case), in watts; UnknownUnit for a unit the table lacks.

    A value beyond a float's range is infinite watts, as every store keeps it (only a
    schema without the value's ``maximum`` admits one).
    """
    factor = watts_per_unit().get(unit.lower()) if isinstance(unit, str) else None
    if factor is None:
        raise UnknownUnit(unit)
    try:
        return float(value) * factor
    except OverflowError:  # an integer too large for a float
        return math.inf
