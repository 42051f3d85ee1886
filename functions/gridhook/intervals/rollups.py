"""Hourly rollups of DPS samples: written once an hour is complete, so that reading a range
costs O(intervals), not O(samples).

One immutable record per site, feed and UTC hour (``gridhook.settlement.HourlyRollup``,
stored as a ``RollupRecord``): its twelve 5-minute buckets. :func:`roll_up` writes the
rollups a range of complete hours lacks, from the raw samples stored; every write is
insert-if-absent, so two runs at once, a run repeated or a retried one each leave one
rollup per hour and feed — correctness never rests on a transaction. The sampling job
calls it each run for the last few hours (:data:`RECENT_HOURS`); ``gridhook samples
rollup`` for everything already stored.

An hour counts as rolled up when it has a rollup of every feed asked for (the feeds DPS
reports now) — or, asked for none, of any feed: one run writes an hour's rollups of every
feed together (one transaction on SQLite, one batched Commit on Firestore), and the
readers take an hour with a rollup as rolled up. Rollups keep the long retention
(``GRIDHOOK_SAMPLE_RETENTION_DAYS``), raw samples the short one
(``GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gridhook.events import rfc3339
from gridhook.intervals.samples import site_samples
from gridhook.settlement import (
    DEFAULT_SAMPLE_CADENCE_S,
    HourlyRollup,
    hour_complete,
    rollup_hours,
)
from gridhook.store import EventStore, LoadSample, RollupQuery, RollupRecord

__all__ = [
    "RECENT_HOURS",
    "ROLLUP_MARGIN_S",
    "RollupRun",
    "complete_until",
    "hourly_rollup",
    "roll_up",
    "rollup_record",
]

HOUR = timedelta(hours=1)
#: How far back each sampling run looks for hours without their rollups (the last one
#: complete, and two more in case a run failed then).
RECENT_HOURS = 3
#: Waited beyond an hour's end and one cadence before rolling it up: a run that asked DPS
#: before the hour ended may still be storing its sample a little after.
ROLLUP_MARGIN_S = 60.0
#: Hours of raw samples read and rolled up at a time (bounded memory for a long backfill).
_CHUNK_HOURS = 24


def _floor_hour(moment: datetime) -> datetime:
    seconds = math.floor(moment.timestamp() / 3600) * 3600
    return datetime.fromtimestamp(seconds, UTC)


def rollup_record(rollup: HourlyRollup, retention: timedelta) -> RollupRecord:
    """The stored form of a rollup, kept ``retention`` after its hour ends."""
    return RollupRecord(
        site=rollup.site,
        feed=rollup.feed,
        hour_start=rollup.hour_start,
        counts=rollup.counts,
        means=rollup.means,
        minima=rollup.minima,
        maxima=rollup.maxima,
        covered_s=rollup.covered_s,
        expires_at=rollup.hour_start + HOUR + retention,
    )


def hourly_rollup(record: RollupRecord) -> HourlyRollup:
    """A stored rollup as the settlement core reads it."""
    return HourlyRollup(
        site=record.site,
        feed=record.feed,
        hour_start=record.hour_start,
        counts=record.counts,
        means=record.means,
        minima=record.minima,
        maxima=record.maxima,
        covered_s=record.covered_s,
    )


def complete_until(now: datetime, cadence_s: float = DEFAULT_SAMPLE_CADENCE_S) -> datetime:
    """The end of the last UTC hour that may be rolled up at ``now`` (its end, one cadence
    and :data:`ROLLUP_MARGIN_S` have passed)."""
    end = _floor_hour(now)
    while not hour_complete(end - HOUR, now, cadence_s=cadence_s + ROLLUP_MARGIN_S):
        end -= HOUR
    return end


@dataclass(frozen=True)
class RollupRun:
    """What one :func:`roll_up` did."""

    site: str
    since: datetime  # the first hour looked at
    until: datetime  # the end of the last hour looked at (complete ones only)
    hours: int  # hours looked at
    rolled_up_before: int  # of those, hours that had their rollups already
    written: int  # rollups new in this run
    samples_read: int
    feeds: tuple[str, ...]  # feeds rolled up by this run

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "since": rfc3339(self.since),
            "until": rfc3339(self.until),
            "hours": self.hours,
            "rolled_up_before": self.rolled_up_before,
            "written": self.written,
            "samples_read": self.samples_read,
            "feeds": list(self.feeds),
        }


def _runs(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours as [start, end) runs of at most ``_CHUNK_HOURS``."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour and runs[-1][1] - runs[-1][0] < _CHUNK_HOURS * HOUR:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def roll_up(
    store: EventStore,
    *,
    site: str,
    since: datetime,
    until: datetime,
    now: datetime,
    retention: timedelta,
    feeds: Iterable[str] = (),
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
) -> RollupRun:
    """Write the rollups the complete UTC hours overlapping ``[since, until)`` lack.

    One rollup listing of the range; then, for each run of hours not rolled up (see the
    module doc), one sample query (from one cadence before it: the sample read just
    before covers its first moments) and one insert-if-absent write of its rollups. A
    second run over the same range reads the listing and writes nothing. Raises
    StoreError.
    """
    first = _floor_hour(since)
    end = min(complete_until(now, cadence_s), _floor_hour(until - timedelta(microseconds=1)) + HOUR)
    hours = []
    at = first
    while at < end:
        hours.append(at)
        at += HOUR
    have: dict[datetime, set[str]] = defaultdict(set)
    if hours:
        for record in store.rollups(RollupQuery(since=first, until=end, site=site)):
            have[record.hour_start].add(record.feed)
    wanted = set(feeds)

    def rolled_up(hour: datetime) -> bool:
        found = have.get(hour)
        return found is not None and bool(found) and wanted <= found

    missing = [h for h in hours if not rolled_up(h)]
    written = samples_read = 0
    rolled: set[str] = set()
    for start, stop in _runs(missing):
        cover = timedelta(seconds=cadence_s)
        samples = list(site_samples(store, site, since=start - cover, until=stop))
        samples_read += len(samples)
        by_feed: dict[str, list[LoadSample]] = defaultdict(list)
        for sample in samples:
            by_feed[sample.feed_tag].append(sample)
        inside = {s.feed_tag for s in samples if s.sampled_at >= start}
        new = []
        for feed in sorted(inside | wanted):
            for rollup in rollup_hours(
                by_feed.get(feed, []),
                site=site,
                feed=feed,
                since=start,
                until=stop,
                cadence_s=cadence_s,
            ):
                if feed not in have.get(rollup.hour_start, ()):
                    new.append(rollup_record(rollup, retention))
        written += store.add_rollups(new)
        rolled.update(r.feed for r in new)
    return RollupRun(
        site=site,
        since=first,
        until=max(first, end),
        hours=len(hours),
        rolled_up_before=len(hours) - len(missing),
        written=written,
        samples_read=samples_read,
        feeds=tuple(sorted(rolled)),
    )
