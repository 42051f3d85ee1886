"""Importing a revenue meter's interval data: a file in, meter records stored, all or nothing.

The file is parsed whole first (``gridhook.settlement.parse_meter_csv``: gridhook's CSV or
Green Button's, whose local times are in the site's zone); a bad row is a
``MeterParseError`` naming its line and nothing is stored. Each reading is then compared
with what the store keeps for the feed (one listing of the file's range):

- **new**: nothing stored overlaps it;
- **unchanged**: the same interval is stored with the same value — importing the same data
  again stores nothing;
- **replaced**: something stored overlaps it with another value or other bounds. Refused
  (:class:`MeterConflict`, naming the first such line; nothing stored) unless ``replace``:
  then the file's value is a new revision of its interval and the stored values stay as
  the revisions before it; a stored interval whose time the file covers with other
  bounds is withdrawn by a revision without a value.

Records are written insert-if-absent by (site, feed, interval start, revision): two
imports racing to replace the same interval store one revision each number, never two,
and the one that loses is told to run again. Nothing rests on a transaction; a write the
store fails part-way through is completed by importing the file again (what was stored
reads as unchanged).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridhook.events import rfc3339
from gridhook.settlement import MeterInterval, MeterParseError, parse_meter_csv
from gridhook.sites import DEFAULT_SITE
from gridhook.store import (
    EventStore,
    MeterQuery,
    MeterRecord,
    current_meter,
)
from gridhook.store.intervals import MAX_METER_INTERVAL

__all__ = ["MeterConflict", "MeterImport", "import_meter"]

# Two values read from the same text are equal; stores keep doubles exactly, so this only
# forgives a last-bit difference (a value from an older import of other units).
_REL_TOLERANCE = 1e-9


_REPLACE_HINT = (
    "Import with --replace to keep the file's values (the stored ones stay as earlier revisions)"
)


class MeterConflict(ValueError):
    """The file changes meter data already stored (without ``replace``), or another import
    changed it meanwhile. ``line`` is the first line concerned (0: none in particular)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class MeterImport:
    """What one import found and stored."""

    site: str
    feed: str
    file: str
    format: str  # csv | green-button
    intervals: int  # readings in the file
    new: int
    unchanged: int
    replaced: int
    withdrawn: int  # stored intervals the file covers with other bounds
    missing_lines: tuple[int, ...]  # Green Button rows without a usage value
    first: datetime | None
    last: datetime | None  # end of the last interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed": self.feed,
            "file": self.file,
            "format": self.format,
            "intervals": self.intervals,
            "new": self.new,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "withdrawn": self.withdrawn,
            "missing_lines": list(self.missing_lines),
            "first": rfc3339(self.first),
            "last": rfc3339(self.last),
        }


def _same(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=_REL_TOLERANCE, abs_tol=1e-9)


def _kw(watts: float | None) -> str:
    return "no value" if watts is None else f"{watts / 1000:g} kW"


def _when(record: MeterRecord | MeterInterval) -> str:
    start = record.interval_start.isoformat().replace("+00:00", "Z")
    end = record.interval_end.isoformat().replace("+00:00", "Z")
    return f"[{start}, {end})"


def import_meter(
    store: EventStore,
    text: str,
    *,
    file: str,
    feed: str,
    tz: ZoneInfo,
    now: datetime,
    site: str = DEFAULT_SITE,
    replace: bool = False,
) -> MeterImport:
    """Store a meter file's readings for one site's feed (see the module doc).

    Raises MeterParseError (a bad row: nothing stored), MeterConflict (values that differ
    from the stored ones without ``replace``, or another import meanwhile) and StoreError.
    """
    data = parse_meter_csv(text, tz)
    readings = list(data.intervals)
    for reading in readings:
        if reading.interval_end - reading.interval_start > MAX_METER_INTERVAL:
            raise MeterParseError(reading.line, "an interval longer than a day is not meter data")
    first, last = readings[0].interval_start, max(r.interval_end for r in readings)
    stored = store.meter_records(
        MeterQuery(feed=feed, since=first - MAX_METER_INTERVAL, until=last, site=site)
    )
    revision: dict[datetime, int] = {}  # the highest revision of each stored interval start
    for kept in stored:
        revision[kept.interval_start] = max(kept.revision, revision.get(kept.interval_start, 0))
    current = current_meter(stored)
    starts = [r.interval_start for r in current]

    def overlapping(reading: MeterInterval) -> list[MeterRecord]:
        # Stored intervals are disjoint and at most a day long: look a day back.
        lo = bisect.bisect_left(starts, reading.interval_start - MAX_METER_INTERVAL)
        hi = bisect.bisect_left(starts, reading.interval_end)
        return [
            r
            for r in current[lo:hi]
            if r.interval_end > reading.interval_start and r.interval_start < reading.interval_end
        ]

    def record(
        reading: MeterInterval | MeterRecord, mean_w: float | None, line: int
    ) -> MeterRecord:
        start = reading.interval_start
        revision[start] = revision.get(start, 0) + 1
        return MeterRecord(
            site=site,
            feed=feed,
            interval_start=start,
            interval_end=reading.interval_end,
            mean_w=mean_w,
            revision=revision[start],
            imported_at=now,
            source=f"{file}:{line}" if line else f"{file} (withdrawn)",
        )

    writes: list[MeterRecord] = []
    unchanged = replaced = 0
    conflicts: list[tuple[MeterInterval, list[MeterRecord]]] = []
    for reading in readings:
        found = overlapping(reading)
        if not found:
            writes.append(record(reading, reading.mean_w, reading.line))
        elif (
            len(found) == 1
            and (found[0].interval_start, found[0].interval_end)
            == (reading.interval_start, reading.interval_end)
            and _same(found[0].mean_w, reading.mean_w)
        ):
            unchanged += 1
        else:
            conflicts.append((reading, found))
    if conflicts and not replace:
        reading, found = conflicts[0]
        kept_now = ", ".join(f"{_when(r)} at {_kw(r.mean_w)} ({r.source})" for r in found)
        raise MeterConflict(
            reading.line,
            f"{_when(reading)} is {_kw(reading.mean_w)} in the file, but the store keeps "
            f"{kept_now}; {len(conflicts)} interval(s) in the file are not as stored: "
            f"nothing imported. {_REPLACE_HINT}",
        )
    withdrawn: dict[datetime, MeterRecord] = {}
    for reading, found in conflicts:
        replaced += 1
        for old in found:
            same_start = old.interval_start == reading.interval_start
            if not same_start and old.interval_start not in withdrawn:
                withdrawn[old.interval_start] = old
    in_file = {r.interval_start for r in readings}
    for start, old in sorted(withdrawn.items()):
        if start not in in_file:  # else the file's own reading there is its new revision
            writes.append(record(old, None, 0))
    for reading, _ in conflicts:
        writes.append(record(reading, reading.mean_w, reading.line))
    written = store.add_meter_records(writes) if writes else 0
    if written != len(writes):
        raise MeterConflict(
            0,
            f"another import changed feed {feed!r}'s meter data meanwhile: {written} of "
            f"{len(writes)} record(s) stored; import the file again",
        )
    return MeterImport(
        site=site,
        feed=feed,
        file=file,
        format=data.format,
        intervals=len(readings),
        new=len(readings) - unchanged - replaced,
        unchanged=unchanged,
        replaced=replaced,
        withdrawn=sum(1 for w in writes if w.mean_w is None),
        missing_lines=data.missing_lines,
        first=first,
        last=last,
    )
