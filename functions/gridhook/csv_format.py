"""CSV as gridhook writes it: one convention for every table it exports (the report, episodes,
samples and events; the CLI and power_report's ``/report?format=csv`` alike).

- RFC 4180: comma-separated, a field quoted only when it must be, every line ending CRLF;
- one header row; a figure's unit is in its column's name (``target_mw``,
  ``requested_energy_mwh``, ``ramp_down_seconds``) and its cell is a plain number: MW and MWh
  to 6 decimals (1 W, 1 Wh), seconds to 3, ratios (``performance_factor``: 1 is 100 %) to 6;
  no unit, no thousands separator, no exponent;
- times RFC 3339 in UTC; booleans ``true`` / ``false``; a list ``a | b``; an unknown value is
  an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, Any

from gridhook.events import rfc3339

__all__ = [
    "LINE_END",
    "boolean",
    "items",
    "mw",
    "mwh",
    "ratio",
    "seconds",
    "text",
    "when",
    "write",
    "writer",
]

LINE_END = "\r\n"


def _plain(value: float | None, decimals: int) -> str:
    if value is None:
        return ""
    digits = f"{value:.{decimals}f}"
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return "0" if digits == "-0" else digits


def mw(watts: float | None) -> str:
    """Watts as MW: ``6500000.0`` -> ``6.5``."""
    return _plain(None if watts is None else watts / 1e6, 6)


def mwh(watt_hours: float | None) -> str:
    """Watt-hours as MWh."""
    return _plain(None if watt_hours is None else watt_hours / 1e6, 6)


def ratio(value: float | None) -> str:
    """A ratio (a performance factor: 1 is 100 %) to 6 decimals."""
    return _plain(value, 6)


def seconds(value: float | None) -> str:
    return _plain(value, 3)


def when(moment: datetime | None) -> str:
    return rfc3339(moment) or ""


def boolean(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def items(values: Iterable[str]) -> str:
    return " | ".join(values)


def writer(out: IO[str], columns: Sequence[str]) -> csv.DictWriter[str]:
    """A writer of rows of these columns (the header is the caller's to write)."""
    return csv.DictWriter(out, fieldnames=list(columns), lineterminator=LINE_END)


def write(out: IO[str], columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """The header, then the rows."""
    table = writer(out, columns)
    table.writeheader()
    table.writerows(rows)


def text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO(newline="")
    write(out, columns, rows)
    return out.getvalue()
