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
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
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
    "parse_interval",
    "readings",
    "write_history",
    "write_index",
]

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
    today_starts = _midnight(today, timezone)
    whole = (clock_start - today_starts) // interval
    return since, today_starts + interval * whole


def readings(
    model: LoadModel, feed_tag: str, since: datetime, until: datetime, interval: timedelta
) -> Iterator[Reading]:
    """The model's mean load per interval, each local day's intervals from its midnight (the
    last one cut short if the day is not a whole number of intervals long)."""
    day = since.astimezone(model.timezone).date()
    while True:
        starts = max(_midnight(day, model.timezone), since)
        ends = min(_midnight(day + timedelta(days=1), model.timezone), until)
        if starts >= until:
            return
        moment = starts
        while moment < ends:
            end = min(moment + interval, ends)
            yield Reading(moment, end, model.mean_watts(feed_tag, moment, end))
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
    site_dir = out_dir / model.site
    site_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for feed in model.feed_tags:
        rows = list(readings(model, feed, since, until, interval))
        stem = _UNSAFE_IN_FILE_NAME.sub("_", feed)
        texts = {
            "csv": (f"{stem}.csv", gridhook_csv(rows)),
            "green-button": (
                f"{stem}.green-button.csv",
                green_button_csv(rows, model.timezone, model.site, feed),
            ),
        }
        for kind, (name, text) in texts.items():
            path = site_dir / name
            path.write_text(text, encoding="utf-8")
            written.append(
                HistoryFile(
                    model.site, model.timezone.key, feed, kind, path, since, until, len(rows)
                )
            )
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


def _midnight(day: date, timezone: ZoneInfo) -> datetime:
    """The instant `day` begins in `timezone` (where midnight is skipped, when it resumes)."""
    return datetime.combine(day, time(0), tzinfo=timezone).astimezone(UTC)
