"""Meter history from the load model: the interval data a site's revenue meter would have
recorded on the days before the simulator's clock starts, in the two formats gridhook
imports (`gridhook meter import`; docs/settlement.md):

- **gridhook CSV**: `interval_start,interval_end,kwh`, RFC 3339 UTC times, the energy of
  each interval;
- **Green Button "Download My Data" CSV**: a preamble, then `TYPE,DATE,START TIME,END
  TIME,USAGE,UNITS,COST,NOTES` in the site's local time (END TIME the interval's last
  minute, as utilities write it; on the fall-back day the repeated hour twice, in order).

Intervals are aligned on the site's local midnight, so a DST day has 23 or 25 hours of
them. Each value is the model's mean over its interval: the load the live simulator draws
(uncurtailed) at the same instants, so a baseline computed from the files matches it.

The same files, for the load the live simulator *served* (the model held under the caps of
its targets, `RampEngine.mean_served_watts`), are its meter's data after the fact
(`gridhook-sim --meter-out DIR`, `write_meter`): the interval data a utility delivers the
day after.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from simulator.clock import rfc3339
from simulator.load import LoadModel

__all__ = [
    "INTERVALS",
    "HistoryFile",
    "Reading",
    "green_button_csv",
    "gridhook_csv",
    "history_window",
    "interval_readings",
    "meter_window",
    "parse_interval",
    "readings",
    "write_history",
    "write_index",
    "write_meter",
]

#: The mean load of a feed over [start, end), watts.
MeanLoad = Callable[[datetime, datetime], float]

INTERVALS = {"5m": timedelta(minutes=5), "15m": timedelta(minutes=15), "1h": timedelta(hours=1)}
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Reading:
    start: datetime
    end: datetime
    watts: float  # the mean load over [start, end)

    @property
    def kwh(self) -> float:
        return self.watts * (self.end - self.start).total_seconds() / 3.6e6


@dataclass(frozen=True)
class HistoryFile:
    """One file written: which site, feed and format, and the span it covers."""

    site: str
    timezone: str
    feed: str
    format: str  # "csv" | "green-button"
    path: Path
    since: datetime
    until: datetime
    intervals: int


def parse_interval(text: str) -> timedelta:
    try:
        return INTERVALS[text]
    except KeyError:
        raise ValueError(f"interval {text!r} must be one of {', '.join(INTERVALS)}") from None


def history_window(
    days: int, clock_start: datetime, timezone: ZoneInfo, interval: timedelta
) -> tuple[datetime, datetime]:
    """[since, until): from the local midnight `days` days before the clock start's local day
    to the last interval boundary (aligned on local midnight) at or before the clock start."""
    if days < 1:
        raise ValueError("history needs at least one day")
    today = clock_start.astimezone(timezone).date()
    since = _midnight(today - timedelta(days=days), timezone)
    return since, _boundary_at_or_before(clock_start, timezone, interval)


def meter_window(
    began: datetime, ended: datetime, timezone: ZoneInfo, interval: timedelta
) -> tuple[datetime, datetime]:
    """[since, until) of the whole intervals the meter can report for a run from `began`
    (the clock's start: the history's `until` for it, so the two files join up) to `ended`
    (the last interval boundary at or before it: an interval still open is not data yet)."""
    since = _boundary_at_or_before(began, timezone, interval)
    return since, max(since, _boundary_at_or_before(ended, timezone, interval))


def readings(
    model: LoadModel, feed_tag: str, since: datetime, until: datetime, interval: timedelta
) -> Iterator[Reading]:
    """The model's mean load per interval (see `interval_readings`)."""

    def mean(start: datetime, end: datetime) -> float:
        return model.mean_watts(feed_tag, start, end)

    return interval_readings(mean, model.timezone, since, until, interval)


def interval_readings(
    mean: MeanLoad, timezone: ZoneInfo, since: datetime, until: datetime, interval: timedelta
) -> Iterator[Reading]:
    """`mean` per interval, each local day's intervals from its midnight (the last one cut
    short if the day is not a whole number of intervals long)."""
    day = since.astimezone(timezone).date()
    while True:
        starts = max(_midnight(day, timezone), since)
        ends = min(_midnight(day + timedelta(days=1), timezone), until)
        if starts >= until:
            return
        moment = starts
        while moment < ends:
            end = min(moment + interval, ends)
            yield Reading(moment, end, mean(moment, end))
            moment = end
        day += timedelta(days=1)


def gridhook_csv(rows: Sequence[Reading]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["interval_start", "interval_end", "kwh"])
    for row in rows:
        writer.writerow([rfc3339(row.start), rfc3339(row.end), f"{row.kwh:.3f}"])
    return out.getvalue()


def green_button_csv(rows: Sequence[Reading], timezone: ZoneInfo, site: str, feed: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # The preamble a utility's export starts with (the parser skips to the TYPE header).
    writer.writerow(["Name", "gridhook-sim"])
    writer.writerow(["Address", f"{site}, simulated ({timezone.key})"])
    writer.writerow(["Account Number", f"{site}/{feed}"])
    writer.writerow(["Service", f"Electric {feed}"])
    writer.writerow([])
    writer.writerow(["TYPE", "DATE", "START TIME", "END TIME", "USAGE", "UNITS", "COST", "NOTES"])
    for row in rows:
        start = row.start.astimezone(timezone)
        last_minute = (row.end - timedelta(minutes=1)).astimezone(timezone)
        writer.writerow(
            [
                "Electric usage",
                start.date().isoformat(),
                start.strftime("%H:%M"),
                last_minute.strftime("%H:%M"),
                f"{row.kwh:.3f}",
                "kWh",
                "",
                "",
            ]
        )
    return out.getvalue()


def write_history(
    model: LoadModel,
    days: int,
    clock_start: datetime,
    out_dir: Path,
    interval: timedelta = INTERVALS["15m"],
) -> list[HistoryFile]:
    """Write `OUT/<site>/<feed>.csv` and `OUT/<site>/<feed>.green-button.csv` for every feed
    of the model's site; returns what was written."""
    since, until = history_window(days, clock_start, model.timezone, interval)
    written = []
    for feed in model.feed_tags:
        rows = list(readings(model, feed, since, until, interval))
        written += _write_feed(rows, model.site, model.timezone, feed, since, until, out_dir)
    return written


def write_meter(
    site: str,
    timezone: ZoneInfo,
    feeds: Mapping[str, MeanLoad],
    since: datetime,
    until: datetime,
    out_dir: Path,
    interval: timedelta = INTERVALS["15m"],
) -> list[HistoryFile]:
    """The meter's data of [since, until) (`meter_window`) for each feed's served load
    (`feeds`: tag -> mean load), in the files and layout `write_history` writes."""
    written = []
    for feed, mean in feeds.items():
        rows = list(interval_readings(mean, timezone, since, until, interval))
        written += _write_feed(rows, site, timezone, feed, since, until, out_dir)
    return written


def _write_feed(
    rows: Sequence[Reading],
    site: str,
    timezone: ZoneInfo,
    feed: str,
    since: datetime,
    until: datetime,
    out_dir: Path,
) -> list[HistoryFile]:
    """`OUT/<site>/<feed>.csv` and `OUT/<site>/<feed>.green-button.csv` of `rows`."""
    site_dir = out_dir / site
    site_dir.mkdir(parents=True, exist_ok=True)
    stem = _UNSAFE_IN_FILE_NAME.sub("_", feed)
    texts = {
        "csv": (f"{stem}.csv", gridhook_csv(rows)),
        "green-button": (f"{stem}.green-button.csv", green_button_csv(rows, timezone, site, feed)),
    }
    written = []
    for kind, (name, text) in texts.items():
        path = site_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(HistoryFile(site, timezone.key, feed, kind, path, since, until, len(rows)))
    return written


def write_index(files: Sequence[HistoryFile], out_dir: Path) -> Path:
    """`OUT/index.json`: every file with its site, time zone, feed, format and span, for a
    script that imports them (`gridhook meter import FILE --site S --feed F`)."""
    path = out_dir / "index.json"
    entries = [
        {
            "site": f.site,
            "timezone": f.timezone,
            "feed": f.feed,
            "format": f.format,
            "path": str(f.path),
            "since": rfc3339(f.since),
            "until": rfc3339(f.until),
            "intervals": f.intervals,
        }
        for f in files
    ]
    path.write_text(json.dumps({"files": entries}, indent=2) + "\n", encoding="utf-8")
    return path


def _boundary_at_or_before(moment: datetime, timezone: ZoneInfo, interval: timedelta) -> datetime:
    """The last interval boundary (counted from the local midnight) at or before `moment`."""
    day_starts = _midnight(moment.astimezone(timezone).date(), timezone)
    return day_starts + interval * ((moment - day_starts) // interval)


def _midnight(day: date, timezone: ZoneInfo) -> datetime:
    """The instant `day` begins in `timezone` (where midnight is skipped, when it resumes)."""
    return datetime.combine(day, time(0), tzinfo=timezone).astimezone(UTC)
