"""Revenue-meter interval data: CSV text in, readings out — all or nothing.

Two formats, told apart by their header:

- **gridhook CSV**: a header ``interval_start,interval_end,<kwh|mwh|kw|mw>``, then one
  reading a row: RFC 3339 times with an offset, and the energy in the interval (kWh, MWh)
  or the mean demand over it (kW, MW).
- **Green Button "Download My Data" CSV**, as US utilities export it: any preamble (name,
  address, account — quoted fields may hold commas), then ``TYPE,DATE,START TIME,END
  TIME,USAGE,UNITS,COST,NOTES`` (or ``USAGE (kWh)`` with no UNITS column, or ``IMPORT
  (kWh)``/``EXPORT (kWh)``: net = import - export). Dates ``YYYY-MM-DD`` or ``M/D/YYYY``,
  times ``H:MM`` in the site's local time. END TIME is usually the interval's last minute
  (``00:00,00:14``); an end one minute short of a 5-minute boundary is read so. On the
  fall-back day the repeated hour appears twice: the first row in file order is the
  daylight one (fold 0), the second the standard one — reversed when the file runs
  newest first. A start inside the spring-forward gap does not exist and is refused. A
  row with an empty usage is a missing reading: no interval, listed in ``missing_lines``.

Any bad row is a :class:`MeterParseError` naming its line; nothing is returned then.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gridhook.settlement.errors import MeterParseError
from gridhook.settlement.intervals import MeterInterval

__all__ = ["FORMATS", "MeterData", "parse_meter_csv"]

FORMATS = ("csv", "green-button")

_CSV_UNITS = {
    "kwh": ("energy", 1e3),
    "mwh": ("energy", 1e6),
    "kw": ("demand", 1e3),
    "mw": ("demand", 1e6),
}
_GB_UNITS = {
    **_CSV_UNITS,
    "wh": ("energy", 1.0),
    "w": ("demand", 1.0),
}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$")
_UNIT_IN_HEADER = re.compile(r"^(USAGE|IMPORT|EXPORT)\s*\(\s*([A-Za-z]+)\s*\)$")


@dataclass(frozen=True)
class MeterData:
    """A parsed meter file: readings sorted by start, none overlapping."""

    format: str  # "csv" | "green-button"
    intervals: tuple[MeterInterval, ...]
    missing_lines: tuple[int, ...] = ()  # Green Button rows with no usage value


def _number(text: str, line: int, what: str) -> float:
    raw = text.strip()
    if _GROUPED.match(raw):
        raw = raw.replace(",", "")
    if not _NUMBER.match(raw):
        raise MeterParseError(line, f"{what} {text.strip()!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise MeterParseError(line, f"{what} {text.strip()!r} is out of range")
    return value


def _watts(value: float, unit: str, seconds: float) -> float:
    kind, scale = _GB_UNITS[unit]
    if kind == "demand":
        return value * scale
    return value * scale * 3600.0 / seconds


def _rows(text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise MeterParseError(reader.line_num, f"not valid CSV: {exc}") from None
    return rows


def _blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


def _no_overlaps(readings: list[MeterInterval]) -> tuple[MeterInterval, ...]:
    ordered = sorted(readings, key=lambda r: (r.interval_start, r.line))
    for before, after in itertools.pairwise(ordered):
        if after.interval_start < before.interval_end:
            first, second = sorted((before, after), key=lambda r: r.line)
            raise MeterParseError(
                second.line,
                f"[{_iso(second.interval_start)}, {_iso(second.interval_end)}) overlaps line "
                f"{first.line}'s [{_iso(first.interval_start)}, {_iso(first.interval_end)})",
            )
    return tuple(ordered)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_meter_csv(text: str, tz: ZoneInfo) -> MeterData:
    """The readings in a meter file (either format; ``tz``: the site's zone, which Green
    Button's local times are in). Raises :class:`MeterParseError` naming the first bad line."""
    rows = _rows(text)
    content = [(n, row) for n, row in rows if not _blank(row)]
    if not content:
        raise MeterParseError(1, "the file is empty")
    first_line, header = content[0]
    names = [cell.strip().lower() for cell in header]
    if names[:2] == ["interval_start", "interval_end"]:
        return _parse_csv(first_line, names, content[1:])
    for index, (line, row) in enumerate(content):
        if row and row[0].strip().upper() == "TYPE":
            return _parse_green_button(line, row, content[index + 1 :], tz)
    raise MeterParseError(
        first_line,
        "not a meter file: expected a header interval_start,interval_end,<kwh|mwh|kw|mw> "
        "or a Green Button header TYPE,DATE,START TIME,END TIME,USAGE,…",
    )


def _parse_csv(header_line: int, names: list[str], body: list[tuple[int, list[str]]]) -> MeterData:
    if len(names) != 3 or names[2] not in _CSV_UNITS:
        raise MeterParseError(
            header_line,
            "the header must be interval_start,interval_end,<kwh|mwh|kw|mw>, "
            f"not {','.join(names)}",
        )
    unit = names[2]
    if not body:
        raise MeterParseError(header_line, "no readings after the header")
    readings = []
    for line, row in body:
        if len(row) != 3:
            raise MeterParseError(line, f"expected 3 fields, got {len(row)}")
        start = _rfc3339(row[0], line, "interval_start")
        end = _rfc3339(row[1], line, "interval_end")
        if end <= start:
            raise MeterParseError(line, "interval_end must be after interval_start")
        value = _number(row[2], line, unit)
        seconds = (end - start).total_seconds()
        readings.append(MeterInterval(start, end, _watts(value, unit, seconds), line))
    return MeterData("csv", _no_overlaps(readings))


def _rfc3339(text: str, line: int, what: str) -> datetime:
    raw = text.strip()
    if not _RFC3339.match(raw):
        raise MeterParseError(
            line, f"{what} {raw!r} is not an RFC 3339 time with an offset (2026-01-05T14:00:00Z)"
        )
    try:
        return datetime.fromisoformat(raw.upper().replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise MeterParseError(line, f"{what} {raw!r}: {exc}") from None


# -- Green Button --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    date: int
    start: int
    end: int
    usage: int | None
    export: int | None
    units: int | None
    unit: str | None  # from the header, e.g. "USAGE (kWh)"


def _columns(line: int, header: list[str]) -> _Columns:
    names = [cell.strip().upper() for cell in header]
    where = {name: i for i, name in enumerate(names)}
    missing = [c for c in ("DATE", "START TIME", "END TIME") if c not in where]
    if missing:
        raise MeterParseError(line, f"the Green Button header lacks {', '.join(missing)}")
    usage = export = None
    unit = None
    for i, name in enumerate(names):
        match = _UNIT_IN_HEADER.match(header[i].strip().upper())
        column = match.group(1) if match else name
        if column in ("USAGE", "IMPORT"):
            usage = i
            unit = match.group(2).lower() if match else unit
        elif column == "EXPORT":
            export = i
    if usage is None:
        raise MeterParseError(line, "the Green Button header has no USAGE (or IMPORT) column")
    units = where.get("UNITS")
    if unit is None and units is None:
        raise MeterParseError(line, "the Green Button header gives no unit (UNITS, or USAGE (kWh))")
    if unit is not None and unit not in _GB_UNITS:
        raise MeterParseError(line, f"unit {unit!r} is not one of {', '.join(_GB_UNITS)}")
    return _Columns(
        where["DATE"], where["START TIME"], where["END TIME"], usage, export, units, unit
    )


def _date(text: str, line: int) -> date:
    raw = text.strip()
    try:
        if "/" in raw:
            month, day, year = (int(p) for p in raw.split("/"))
            return date(year, month, day)
        return date.fromisoformat(raw)
    except ValueError:
        raise MeterParseError(line, f"DATE {raw!r} is not YYYY-MM-DD or M/D/YYYY") from None


def _time(text: str, line: int, what: str) -> tuple[time, bool, int]:
    """A wall time, whether it had seconds, and 1 when it was 24:00 (the next midnight)."""
    match = _TIME.match(text.strip())
    if not match:
        raise MeterParseError(line, f"{what} {text.strip()!r} is not a time (H:MM)")
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    meridiem = (match.group(4) or "").upper()
    if meridiem:
        if not 1 <= hour <= 12:
            raise MeterParseError(line, f"{what} {text.strip()!r} is not a 12-hour time")
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    if hour == 24 and minute == 0 and second == 0:
        return time(0), match.group(3) is not None, 1
    if hour > 23 or minute > 59 or second > 59:
        raise MeterParseError(line, f"{what} {text.strip()!r} is not a time of day")
    return time(hour, minute, second), match.group(3) is not None, 0


def _exists(day: date, wall: time, tz: ZoneInfo) -> bool:
    local = datetime.combine(day, wall, tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


def _ambiguous(day: date, wall: time, tz: ZoneInfo) -> bool:
    local = datetime.combine(day, wall, tzinfo=tz)
    return local.utcoffset() != local.replace(fold=1).utcoffset()


@dataclass
class _Row:
    line: int
    day: date
    start: time
    end: time
    end_next_day: int
    end_has_seconds: bool
    usage: str
    export: str | None
    unit: str


def _parse_green_button(
    header_line: int, header: list[str], body: list[tuple[int, list[str]]], tz: ZoneInfo
) -> MeterData:
    cols = _columns(header_line, header)
    rows: list[_Row] = []
    for line, row in body:
        width = max(cols.date, cols.start, cols.end, cols.usage or 0, cols.export or 0) + 1
        if len(row) < width:
            raise MeterParseError(line, f"expected at least {width} fields, got {len(row)}")
        kind = row[0].strip()
        if "electric" not in kind.lower():
            raise MeterParseError(line, f"TYPE {kind!r} is not electric usage")
        unit = cols.unit
        if unit is None:
            assert cols.units is not None
            unit = row[cols.units].strip().lower() if cols.units < len(row) else ""
            if unit not in _GB_UNITS:
                raise MeterParseError(line, f"UNITS {unit!r} is not one of {', '.join(_GB_UNITS)}")
        day = _date(row[cols.date], line)
        start, _, start_next = _time(row[cols.start], line, "START TIME")
        if start_next:
            raise MeterParseError(line, "START TIME 24:00 is not a start")
        end, has_seconds, end_next = _time(row[cols.end], line, "END TIME")
        assert cols.usage is not None
        export = None if cols.export is None else row[cols.export]
        rows.append(
            _Row(line, day, start, end, end_next, has_seconds, row[cols.usage], export, unit)
        )
    if not rows:
        raise MeterParseError(header_line, "no readings after the header")

    # Which of a repeated (fall-back) wall time is which: file order, either way round.
    naive = [datetime.combine(r.day, r.start) for r in rows]
    newest_first = len(naive) > 1 and naive[-1] < naive[0]
    seen: Counter[tuple[date, time]] = Counter()
    readings: list[MeterInterval] = []
    missing: list[int] = []
    for r in rows:
        if not _exists(r.day, r.start, tz):
            raise MeterParseError(
                r.line,
                f"{r.day.isoformat()} {r.start.isoformat('minutes')} does not exist in {tz.key} "
                "(the clocks skip it when daylight saving time begins)",
            )
        key = (r.day, r.start)
        occurrence = seen[key]
        seen[key] += 1
        fold = 0
        if _ambiguous(r.day, r.start, tz):
            if occurrence > 1:
                raise MeterParseError(r.line, f"{r.day} {r.start} is given more than twice")
            fold = occurrence if not newest_first else 1 - occurrence
        begins = datetime.combine(r.day, r.start, tzinfo=tz).replace(fold=fold).astimezone(UTC)
        ends = _end_instant(r, begins, tz)
        seconds = (ends - begins).total_seconds()
        if not 0 < seconds <= 86400:
            raise MeterParseError(r.line, "END TIME is not within a day after START TIME")
        if not r.usage.strip():
            missing.append(r.line)
            continue
        value = _number(r.usage, r.line, "USAGE")
        if r.export is not None and r.export.strip():
            value -= _number(r.export, r.line, "EXPORT")
        readings.append(MeterInterval(begins, ends, _watts(value, r.unit, seconds), r.line))
    if not readings:
        raise MeterParseError(header_line, "no row has a usage value")
    return MeterData("green-button", _no_overlaps(readings), tuple(missing))


def _end_instant(r: _Row, start: datetime, tz: ZoneInfo) -> datetime:
    """The end: the nearest instant after the start that the END TIME wall clock shows
    (the same day or the next, either fold), then an inclusive last minute made whole."""
    candidates = []
    for days in (r.end_next_day, r.end_next_day + 1):
        day = r.day + timedelta(days=days)
        for fold in (0, 1):
            moment = datetime.combine(day, r.end, tzinfo=tz).replace(fold=fold).astimezone(UTC)
            if moment > start:
                candidates.append(moment)
    if not candidates:  # START and END both 00:00 with no later candidate cannot happen
        raise MeterParseError(r.line, "END TIME is not after START TIME")
    end = min(candidates)
    seconds = (end - start).total_seconds()
    if r.end_has_seconds:
        if r.end.second == 59:
            end += timedelta(seconds=1)  # 00:14:59: the last second of the interval
    elif (seconds + 60) % 300 == 0:
        end += timedelta(minutes=1)  # 00:14: the last minute of the interval
    return end
