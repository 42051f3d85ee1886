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

Day rollups: once a UTC day is rolled up (each of its hours has its rollups) and no
sampling run can add to it any more (:data:`RECENT_HOURS` after it ended), :func:`pack_days`
writes one ``DayRollupRecord`` per feed holding that day's hourly rollups, insert-if-absent
like them. :func:`read_rollups` is what every reader of a range calls: the day records for
whole days inside the range, hourly rollups for the rest — exactly the hourly rollups a
listing would give (tests/integration/test_day_rollups.py holds it to that), at about a
24th of the documents: Firestore's client costs about 0.6 ms of CPU per document read.
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
from gridhook.store import (
    DayRollupQuery,
    DayRollupRecord,
    EventStore,
    LoadSample,
    RollupQuery,
    RollupRecord,
)

__all__ = [
    "MIN_PACKED_DAYS",
    "PACK_LOOKBACK",
    "RECENT_HOURS",
    "ROLLUP_MARGIN_S",
    "RollupRun",
    "complete_until",
    "floor_to",
    "hourly_rollup",
    "pack_days",
    "read_rollups",
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
DAY = timedelta(days=1)
#: How far back a sampling run that wrote rollups looks for days to pack (the day just
#: complete, and the one before in case a run failed then).
PACK_LOOKBACK = timedelta(days=2)
#: The fewest whole days a range must hold for :func:`read_rollups` to look for day
#: rollups: below it the day listing and the edges' listings (up to three queries for one)
#: cost more round trips than the documents they save (24 a feed and day, about 0.6 ms of
#: client CPU each on Firestore, against some tens of ms a round trip there).
MIN_PACKED_DAYS = 3
#: Days packed per write (a day record of one feed is about 20 kB: a batch stays far below
#: Firestore's 10 MiB request).
_CHUNK_DAYS = 7


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a whole ``step`` (an hour, a day) of UTC."""
    seconds = step.total_seconds()
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, UTC)


def _ceil_day(moment: datetime) -> datetime:
    floor = floor_to(moment, DAY)
    return floor if floor == moment else floor + DAY


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
    end = floor_to(now, HOUR)
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
    days_packed: int = 0  # day rollups new in this run

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
            "days_packed": self.days_packed,
        }


def _runs(starts: list[datetime], step: timedelta, limit: int) -> list[tuple[datetime, datetime]]:
    """Consecutive steps (hours, days) as [start, end) runs of at most ``limit`` steps."""
    runs: list[tuple[datetime, datetime]] = []
    for start in starts:
        if runs and runs[-1][1] == start and runs[-1][1] - runs[-1][0] < limit * step:
            runs[-1] = (runs[-1][0], start + step)
        else:
            runs.append((start, start + step))
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
    first = floor_to(since, HOUR)
    last_hour = floor_to(until - timedelta(microseconds=1), HOUR)
    end = min(complete_until(now, cadence_s), last_hour + HOUR)
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
    for start, stop in _runs(missing, HOUR, _CHUNK_HOURS):
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
    packed = pack_days(store, site=site, since=first, until=max(first, end), now=now)
    return RollupRun(
        site=site,
        since=first,
        until=max(first, end),
        hours=len(hours),
        rolled_up_before=len(hours) - len(missing),
        written=written,
        samples_read=samples_read,
        feeds=tuple(sorted(rolled)),
        days_packed=packed,
    )


def _packed_days(days: Iterable[DayRollupRecord]) -> set[datetime]:
    """The days whose records are all there: every feed each names (``feeds``) found."""
    found: dict[datetime, set[str]] = defaultdict(set)
    named: dict[datetime, set[str]] = defaultdict(set)
    for day in days:
        found[day.day_start].add(day.feed)
        named[day.day_start].update(day.feeds)
    return {start for start, feeds in found.items() if named[start] <= feeds}


def pack_days(
    store: EventStore,
    *,
    site: str,
    since: datetime,
    until: datetime,
    now: datetime,
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
) -> int:
    """Write the day rollups the UTC days inside ``[since, until)`` lack, for each day that
    is rolled up (every hour has its rollups) and settled (ended :data:`RECENT_HOURS`
    before the last hour that may be rolled up at ``now``: no sampling run adds a feed's
    rollups to it any more). One day listing; then per run of days to pack, one rollup
    listing and one insert-if-absent write. Returns how many day records were new.
    Raises StoreError."""
    settled = complete_until(now, cadence_s) - RECENT_HOURS * HOUR
    first, end = _ceil_day(since), min(floor_to(until, DAY), floor_to(settled, DAY))
    if end <= first:
        return 0
    have = _packed_days(store.day_rollups(DayRollupQuery(since=first, until=end, site=site)))
    days = []
    at = first
    while at < end:
        if at not in have:
            days.append(at)
        at += DAY
    written = 0
    for start, stop in _runs(days, DAY, _CHUNK_DAYS):
        by_day: dict[datetime, list[RollupRecord]] = defaultdict(list)
        for rollup in store.rollups(RollupQuery(since=start, until=stop, site=site)):
            by_day[floor_to(rollup.hour_start, DAY)].append(rollup)
        new = []
        for _, rollups in sorted(by_day.items()):
            if len({r.hour_start for r in rollups}) < 24:
                continue  # an hour not rolled up (yet): its samples are read instead
            by_feed: dict[str, list[RollupRecord]] = defaultdict(list)
            for rollup in rollups:
                by_feed[rollup.feed].append(rollup)
            new += [DayRollupRecord.pack(hours, by_feed) for _, hours in sorted(by_feed.items())]
        written += store.add_day_rollups(new)
    return written


def read_rollups(store: EventStore, query: RollupQuery) -> list[RollupRecord]:
    """The rollups ``store.rollups(query)`` lists, read from day rollups for the whole UTC
    days of the range that have them and hourly ones for the rest: one day listing and
    one hourly listing per stretch without. A range of fewer than
    :data:`MIN_PACKED_DAYS` whole days is one hourly listing. Raises StoreError."""
    first, end = _ceil_day(query.since), floor_to(query.until, DAY)
    if end - first < MIN_PACKED_DAYS * DAY:
        return store.rollups(query)
    days = store.day_rollups(
        DayRollupQuery(since=first, until=end, feed=query.feed, site=query.site)
    )
    # Of one feed, its record is all of it; of every feed, a day counts when all its
    # feeds' records were found.
    packed = {d.day_start for d in days} if query.feed is not None else _packed_days(days)
    found = [r for d in days if d.day_start in packed for r in d.rollups]
    stretch = query.since
    for day in sorted(packed):
        if stretch < day:
            found += store.rollups(_within(query, stretch, day))
        stretch = day + DAY
    if stretch < query.until:
        found += store.rollups(_within(query, stretch, query.until))
    return sorted(found, key=lambda r: (r.hour_start, r.feed))


def _within(query: RollupQuery, since: datetime, until: datetime) -> RollupQuery:
    return RollupQuery(since=since, until=until, feed=query.feed, site=query.site)
