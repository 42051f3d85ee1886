"""Interval data in the store: hourly rollups of DPS samples and revenue-meter intervals.

Both are immutable records, stored insert-if-absent, so concurrent or repeated writers
(two sampling runs, an import run twice) can never contend or double-store, and nothing
here rests on a transaction:

- :class:`RollupRecord` — one feed's UTC hour of DPS samples as twelve 5-minute buckets
  (count, mean, minimum, maximum, seconds covered): the stored form of
  ``gridhook.settlement.HourlyRollup``, plus its expiry (``GRIDHOOK_SAMPLE_RETENTION_DAYS``,
  the long one; raw samples keep ``GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS``). One per site,
  feed and hour: the first written is kept.
- :class:`DayRollupRecord` — one feed's UTC day of those rollups packed in one record,
  written once the day is complete (``gridhook.intervals.rollups.pack_days``), so that a
  long range reads one record per feed and day instead of 24 (Firestore's client spends
  about 0.6 ms of CPU per document whatever its size). A pure function of the hourly
  rollups it packs: reading it gives exactly what they would.
- :class:`MeterRecord` — one revenue-meter interval of one feed as one import stored it.
  An interval (site, feed, start) has revisions 1, 2, …: the current reading is the
  highest; the ones below it are what ``gridhook meter import --replace`` replaced, kept.
  A revision without a value (``mean_w`` None) withdraws the interval (a later import
  covers its time with intervals of other bounds). :func:`current_meter` picks the
  current readings out of a listing.

Every record carries its ``site`` and every read names one site (``default`` unless
named), like every other record of the store. Listings take a range and cost
O(records in the range), never the history (tests/integration/test_store_intervals.py
holds each backend to it). The store knows nothing of settlement: ``gridhook.intervals``
converts between these records and the settlement core's types.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gridhook.sites import DEFAULT_SITE, SITE_NAME

__all__ = [
    "BUCKETS_PER_HOUR",
    "DAY",
    "MAX_METER_INTERVAL",
    "DayRollupQuery",
    "DayRollupRecord",
    "IntervalStore",
    "MeterQuery",
    "MeterRecord",
    "RollupQuery",
    "RollupRecord",
    "current_meter",
    "unpack_day",
]

#: A rollup's buckets: 5 minutes each.
BUCKETS_PER_HOUR = 12
#: A day rollup's span: one UTC day.
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: The longest meter interval stored: an import looks this far before its first interval
#: for stored ones it overlaps.
MAX_METER_INTERVAL = timedelta(days=1)


def _check_site(site: str) -> None:
    if not isinstance(site, str) or not SITE_NAME.fullmatch(site):
        raise ValueError(f"{site!r} is not a site name")


def _check_range(since: datetime, until: datetime) -> None:
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if until < since:
        raise ValueError("until must not be before since")


def _stamp(value: datetime) -> str:
    """As ``gridhook.store.base.sortable_timestamp`` (which this module cannot import:
    ``base`` imports it)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RollupRecord:
    """One feed's UTC hour of DPS samples as twelve 5-minute buckets (immutable).

    ``means``/``minima``/``maxima`` are None for a bucket without samples; a rollup with
    no sample at all is kept too ("nothing was read" is a fact, and a reader then needs no
    raw sample for the hour).
    """

    site: str
    feed: str
    hour_start: datetime  # UTC, on the hour
    counts: tuple[int, ...]
    means: tuple[float | None, ...]
    minima: tuple[float | None, ...]
    maxima: tuple[float | None, ...]
    covered_s: tuple[float, ...]
    expires_at: datetime

    def __post_init__(self) -> None:
        _check_site(self.site)
        fields = (self.counts, self.means, self.minima, self.maxima, self.covered_s)
        if any(len(f) != BUCKETS_PER_HOUR for f in fields):
            raise ValueError(f"a rollup holds {BUCKETS_PER_HOUR} buckets per field")
        if self.hour_start.tzinfo is None or self.hour_start.timestamp() % 3600:
            raise ValueError(f"{self.hour_start.isoformat()} is not an aware time on the hour")

    @property
    def rollup_id(self) -> str:
        """One per feed and hour (within its site, as every id of the store)."""
        return _digest(f"{self.feed}|{_stamp(self.hour_start)}")

    @property
    def sample_count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class DayRollupRecord:
    """One feed's UTC day of hourly rollups in one record (immutable).

    ``rollups`` are the day's hourly rollups of the feed, by hour: one for each hour that
    had one (a day whose feed appeared late has fewer than 24). ``expires_at`` is the
    earliest of theirs: the record goes when its first hour would, and a reader then reads
    the hours left from their own records. ``feeds`` names every feed whose day record was
    written with this one: a reader of every feed takes the day as packed only when it
    finds them all (DynamoDB writes them one by one). Build one with :meth:`pack`.
    """

    site: str
    feed: str
    day_start: datetime  # UTC midnight
    rollups: tuple[RollupRecord, ...]
    expires_at: datetime
    feeds: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_site(self.site)
        if self.day_start.tzinfo is None or self.day_start.timestamp() % DAY.total_seconds():
            raise ValueError(f"{self.day_start.isoformat()} is not an aware UTC midnight")
        if not self.rollups:
            raise ValueError("a day rollup packs at least one hourly rollup")
        hours = [r.hour_start for r in self.rollups]
        if hours != sorted(set(hours)):
            raise ValueError("a day rollup's hours are distinct and in order")
        for rollup in self.rollups:
            if (rollup.site, rollup.feed) != (self.site, self.feed):
                raise ValueError("a day rollup packs one site's and feed's rollups")
            if not self.day_start <= rollup.hour_start < self.day_start + DAY:
                raise ValueError(f"{rollup.hour_start.isoformat()} is not in the day")
        if self.expires_at > min(r.expires_at for r in self.rollups):
            raise ValueError("a day rollup expires no later than its first hour")
        if self.feed not in self.feeds:
            raise ValueError("a day rollup's feeds include its own")

    @classmethod
    def pack(cls, rollups: Sequence[RollupRecord], feeds: Iterable[str]) -> DayRollupRecord:
        """The day record of one site's and feed's rollups of one UTC day, written with
        the day records of ``feeds`` (its own included)."""
        if not rollups:
            raise ValueError("a day rollup packs at least one hourly rollup")
        ordered = tuple(sorted(rollups, key=lambda r: r.hour_start))
        first = ordered[0]
        day_start = datetime.fromtimestamp(
            first.hour_start.timestamp() // DAY.total_seconds() * DAY.total_seconds(), UTC
        )
        return cls(
            site=first.site,
            feed=first.feed,
            day_start=day_start,
            rollups=ordered,
            expires_at=min(r.expires_at for r in ordered),
            feeds=tuple(sorted(set(feeds))),
        )

    @property
    def day_rollup_id(self) -> str:
        """One per feed and day (within its site)."""
        return _digest(f"day|{self.feed}|{_stamp(self.day_start)}")

    @property
    def packed(self) -> list[list[Any]]:
        """The stored form of ``rollups`` (see :func:`unpack_day`): per hour its index in
        the day, its five bucket lists and its expiry in whole epoch microseconds (an integer:
        exact by construction, as every stored time is to the microsecond)."""
        return [
            [
                int((r.hour_start - self.day_start).total_seconds() // 3600),
                r.counts,
                r.means,
                r.minima,
                r.maxima,
                r.covered_s,
                (r.expires_at - _EPOCH) // _MICROSECOND,
            ]
            for r in self.rollups
        ]


def unpack_day(
    *,
    site: str,
    feed: str,
    day_start: datetime,
    packed: Sequence[Sequence[Any]],
    expires_at: datetime,
    feeds: Sequence[str],
) -> DayRollupRecord:
    """A day rollup from its stored form (:attr:`DayRollupRecord.packed`)."""
    rollups = tuple(
        RollupRecord(
            site=site,
            feed=feed,
            hour_start=day_start + timedelta(hours=int(hour)),
            counts=tuple(counts),
            means=tuple(means),
            minima=tuple(minima),
            maxima=tuple(maxima),
            covered_s=tuple(covered_s),
            expires_at=_EPOCH + int(expiry) * _MICROSECOND,
        )
        for hour, counts, means, minima, maxima, covered_s, expiry in packed
    )
    return DayRollupRecord(site, feed, day_start, rollups, expires_at, tuple(feeds))


@dataclass(frozen=True, slots=True)
class MeterRecord:
    """One revenue-meter interval of one feed, as one import stored it (immutable).

    ``mean_w`` is the mean demand over ``[interval_start, interval_end)`` in watts; None
    withdraws the interval (a later revision covers its time with intervals of other
    bounds). ``source`` says where the values came from (the file's name and line).
    """

    site: str
    feed: str
    interval_start: datetime
    interval_end: datetime
    mean_w: float | None
    revision: int  # 1 for the first import of the interval; each replacement adds one
    imported_at: datetime
    source: str

    def __post_init__(self) -> None:
        _check_site(self.site)
        if self.revision < 1:
            raise ValueError("a meter revision counts from 1")
        if not timedelta(0) < self.interval_end - self.interval_start <= MAX_METER_INTERVAL:
            raise ValueError("a meter interval lasts more than nothing and at most a day")
        if self.mean_w is not None and not math.isfinite(self.mean_w):
            raise ValueError("a meter interval's mean must be a finite number")

    @property
    def meter_id(self) -> str:
        """One per feed, interval start and revision (within its site)."""
        return _digest(f"{self.feed}|{_stamp(self.interval_start)}|{self.revision}")


@dataclass(frozen=True, slots=True)
class RollupQuery:
    """One site's rollups whose hour starts in ``[since, until)``, of one feed or all."""

    since: datetime
    until: datetime
    feed: str | None = None
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        _check_range(self.since, self.until)
        _check_site(self.site)


@dataclass(frozen=True, slots=True)
class DayRollupQuery:
    """One site's day rollups whose day starts in ``[since, until)``, of one feed or all."""

    since: datetime
    until: datetime
    feed: str | None = None
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        _check_range(self.since, self.until)
        _check_site(self.site)


@dataclass(frozen=True, slots=True)
class MeterQuery:
    """Every revision of one site's and feed's meter intervals starting in ``[since, until)``."""

    feed: str
    since: datetime
    until: datetime
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        _check_range(self.since, self.until)
        _check_site(self.site)


def current_meter(records: Iterable[MeterRecord]) -> list[MeterRecord]:
    """The current reading of each interval (its highest revision), withdrawn ones left
    out, by interval start."""
    latest: dict[tuple[str, str, datetime], MeterRecord] = {}
    for record in records:
        key = (record.site, record.feed, record.interval_start)
        kept = latest.get(key)
        if kept is None or record.revision > kept.revision:
            latest[key] = record
    return sorted(
        (r for r in latest.values() if r.mean_w is not None),
        key=lambda r: (r.interval_start, r.feed),
    )


class IntervalStore(Protocol):
    """The interval-data part of the storage port (``EventStore`` includes it).

    Every backend passes tests/integration/test_store_intervals.py.
    """

    def add_rollups(self, rollups: Sequence[RollupRecord]) -> int:
        """Insert each rollup unless its site keeps one for its feed and hour (the first
        written wins; an expired one makes way); returns how many were new."""

    def rollups(self, query: RollupQuery) -> list[RollupRecord]:
        """The site's unexpired rollups of the range, by (hour_start, feed): O(records in
        the range)."""

    def add_day_rollups(self, days: Sequence[DayRollupRecord]) -> int:
        """Insert each day rollup unless its site keeps one for its feed and day (the first
        written wins; an expired one makes way); returns how many were new."""

    def day_rollups(self, query: DayRollupQuery) -> list[DayRollupRecord]:
        """The site's unexpired day rollups of the range, by (day_start, feed): O(records
        in the range)."""

    def add_meter_records(self, records: Sequence[MeterRecord]) -> int:
        """Insert each record unless its site keeps one for its feed, interval start and
        revision; returns how many were new."""

    def meter_records(self, query: MeterQuery) -> list[MeterRecord]:
        """Every revision of the range's meter intervals, by (interval_start, revision):
        O(records in the range)."""
