"""Interval load: one model for DPS samples and revenue-meter data.

An interval is ``[interval_start, interval_end)`` on a grid aligned in the site's local
time (``5m``, ``15m`` or ``1h``): local midnight is an interval boundary, so a DST day has
23 or 25 hourly intervals. Its load is a mean in watts, or missing — never filled in.

- From samples: the mean of the samples read inside it, missing when they cover less than
  ``min_coverage`` (``GRIDHOOK_INTERVAL_MIN_COVERAGE``, 0.8) of it (coverage: see
  :mod:`gridhook.settlement.samples`).
- From meter data: the time-weighted mean of the meter intervals that lie inside it,
  missing when they cover less than ``min_coverage`` of it. A meter interval longer than
  the grid's (hourly meter data on a 15m grid) fills none of it: its shape is not known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gridhook.events import rfc3339
from gridhook.settlement.errors import SettlementInputError
from gridhook.settlement.samples import (
    BUCKET_S,
    DEFAULT_SAMPLE_CADENCE_S,
    Buckets,
    FloatArray,
    SampleInput,
    as_sample_arrays,
    bucketize,
    epoch,
)

__all__ = [
    "DEFAULT_MIN_COVERAGE",
    "RESOLUTIONS",
    "SOURCES",
    "IntervalLoad",
    "LoadSeries",
    "MeterInterval",
    "grid_bounds",
    "load_from_buckets",
    "load_from_meter",
    "load_from_samples",
    "resolution_seconds",
]

#: Interval lengths, by the name the CLI takes (``--interval``).
RESOLUTIONS = {"5m": 300, "15m": 900, "1h": 3600}
#: Where an interval's load came from.
SOURCES = ("meter", "samples")
#: Below this share of an interval covered by data, the interval is missing.
DEFAULT_MIN_COVERAGE = 0.8


def resolution_seconds(resolution: str) -> int:
    """Seconds of an interval of ``resolution`` (``5m``, ``15m``, ``1h``)."""
    try:
        return RESOLUTIONS[resolution]
    except KeyError:
        names = ", ".join(RESOLUTIONS)
        raise SettlementInputError(f"unknown interval {resolution!r}; use one of {names}") from None


def check_min_coverage(min_coverage: float) -> None:
    if not (math.isfinite(min_coverage) and 0 < min_coverage <= 1):
        raise SettlementInputError(f"min_coverage must be in (0, 1], not {min_coverage}")


def _phase(tz: ZoneInfo, instant: float, step: int) -> int:
    offset = datetime.fromtimestamp(instant, UTC).astimezone(tz).utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    if seconds % BUCKET_S:
        raise SettlementInputError(
            f"{tz.key} is {seconds} s off UTC then, not a whole number of 5 minutes: "
            "its local intervals do not fall on the 5-minute grid"
        )
    # A local boundary t satisfies (t + offset) % step == 0.
    return (-seconds) % step


def grid_bounds(tz: ZoneInfo, since: float, until: float, step: int) -> tuple[int, int]:
    """The first interval start and the count of local-aligned intervals of ``step``
    seconds that overlap ``[since, until)`` (POSIX seconds).

    The grid is regular in absolute time: a whole-hour DST shift moves the wall clock by a
    whole number of intervals, so local boundaries stay on it (a zone whose offset moves by
    a fraction of the step, like Lord Howe's 30 minutes on a 1h grid, is refused).
    """
    phase = _phase(tz, since, step)
    if _phase(tz, until, step) != phase:
        raise SettlementInputError(
            f"{tz.key} changes its offset by a fraction of {step // 60} minutes in this range; "
            "choose a shorter interval"
        )
    first = math.floor((since - phase) / step) * step + phase
    count = max(0, math.ceil((until - first) / step))
    return first, count


@dataclass(frozen=True, slots=True)
class IntervalLoad:
    """One interval's load on one feed: the record every source comes down to."""

    site: str
    feed: str
    interval_start: datetime
    interval_end: datetime
    mean_w: float | None  # None: missing (coverage below the minimum, or no data)
    source: str  # "meter" | "samples"
    coverage: float  # share of the interval covered by data, 0..1

    @property
    def missing(self) -> bool:
        return self.mean_w is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed": self.feed,
            "interval_start": rfc3339(self.interval_start),
            "interval_end": rfc3339(self.interval_end),
            "mean_w": self.mean_w,
            "source": self.source,
            "coverage": self.coverage,
        }


@dataclass(frozen=True, eq=False)
class LoadSeries:
    """A feed's interval load over a range, as arrays on a regular local-aligned grid.

    Interval ``k`` is ``[first_start + k*step_s, first_start + (k+1)*step_s)`` (POSIX
    seconds); ``mean_w[k]`` is NaN when missing. Baselines read it by instant.
    """

    site: str
    feed: str
    source: str
    resolution: str
    tz: ZoneInfo
    first_start: int
    mean_w: FloatArray
    coverage: FloatArray

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise SettlementInputError(f"unknown source {self.source!r}; use meter or samples")
        resolution_seconds(self.resolution)
        if self.mean_w.shape != self.coverage.shape:
            raise SettlementInputError("mean_w and coverage must have one length")

    @property
    def step_s(self) -> int:
        return RESOLUTIONS[self.resolution]

    @property
    def size(self) -> int:
        return int(self.mean_w.size)

    @property
    def end(self) -> int:
        return self.first_start + self.size * self.step_s

    def index(self, instant: float) -> int | None:
        """The interval starting at ``instant``, or None (off the grid or out of range)."""
        offset = instant - self.first_start
        k = int(offset // self.step_s)
        if offset != k * self.step_s or not 0 <= k < self.size:
            return None
        return k

    def value(self, instant: float) -> float:
        """The load of the interval starting at ``instant``; NaN when missing or unknown."""
        k = self.index(instant)
        return float("nan") if k is None else float(self.mean_w[k])

    def values_at(self, instants: FloatArray) -> FloatArray:
        """Loads of the intervals starting at each instant; NaN where missing, off the grid
        or out of range (vectorised :meth:`value`)."""
        offset = (instants - self.first_start) / self.step_s
        k = np.floor(offset)
        ok = (k == offset) & (k >= 0) & (k < self.size)
        index = np.where(ok, k, 0).astype(np.int64)
        return np.where(ok, self.mean_w[index] if self.size else np.nan, np.nan)

    def values(self, since: float, until: float) -> FloatArray:
        """Loads of the intervals starting in ``[since, until)`` (grid-aligned bounds);
        NaN for each one missing or outside the series."""
        step = self.step_s
        n = max(0, math.ceil((until - since) / step))
        out = np.full(n, np.nan)
        k0 = int((since - self.first_start) // step)
        lo, hi = max(k0, 0), min(k0 + n, self.size)
        if hi > lo:
            out[lo - k0 : hi - k0] = self.mean_w[lo:hi]
        return out

    def floor(self, instant: float) -> float:
        """The start of the interval holding ``instant`` (on this grid, in range or not)."""
        step = self.step_s
        return self.first_start + math.floor((instant - self.first_start) / step) * step

    def ceil(self, instant: float) -> float:
        """The first interval boundary at or after ``instant``."""
        step = self.step_s
        return self.first_start + math.ceil((instant - self.first_start) / step) * step

    def intervals(self) -> list[IntervalLoad]:
        """Every interval as an :class:`IntervalLoad` record."""
        step = self.step_s
        out = []
        for k in range(self.size):
            start = datetime.fromtimestamp(self.first_start + k * step, UTC)
            mean = float(self.mean_w[k])
            out.append(
                IntervalLoad(
                    self.site,
                    self.feed,
                    start,
                    start + timedelta(seconds=step),
                    None if math.isnan(mean) else mean,
                    self.source,
                    float(self.coverage[k]),
                )
            )
        return out

    @classmethod
    def from_intervals(
        cls,
        intervals: Sequence[IntervalLoad],
        *,
        tz: ZoneInfo,
        resolution: str,
        since: datetime,
        until: datetime,
    ) -> LoadSeries:
        """A series over ``[since, until)`` from interval records already on its grid
        (e.g. read back from a store); intervals not given are missing."""
        step = resolution_seconds(resolution)
        first, count = grid_bounds(tz, epoch(since), epoch(until), step)
        mean = np.full(count, np.nan)
        coverage = np.zeros(count)
        sites = {i.site for i in intervals}
        feeds = {i.feed for i in intervals}
        sources = {i.source for i in intervals}
        if len(sites) > 1 or len(feeds) > 1 or len(sources) > 1:
            raise SettlementInputError("a series holds one site, one feed and one source")
        for item in intervals:
            start, end = epoch(item.interval_start), epoch(item.interval_end)
            k = int((start - first) // step)
            if end - start != step or start != first + k * step:
                raise SettlementInputError(
                    f"interval {rfc3339(item.interval_start)} is not on the {resolution} grid"
                )
            if 0 <= k < count:
                mean[k] = np.nan if item.mean_w is None else item.mean_w
                coverage[k] = item.coverage
        site = sites.pop() if sites else ""
        feed = feeds.pop() if feeds else ""
        source = sources.pop() if sources else "samples"
        return cls(site, feed, source, resolution, tz, first, mean, coverage)


def load_from_buckets(
    buckets: Buckets,
    *,
    site: str,
    feed: str,
    tz: ZoneInfo,
    since: float,
    until: float,
    resolution: str,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> LoadSeries:
    """Intervals of ``resolution`` over ``[since, until)`` from 5-minute sample buckets."""
    check_min_coverage(min_coverage)
    step = resolution_seconds(resolution)
    first, count = grid_bounds(tz, since, until, step)
    per = step // BUCKET_S
    offset = first // BUCKET_S - buckets.first  # bucket index of the first interval
    index = offset + np.arange(count + 1, dtype=np.int64) * per
    valid = (index >= 0) & (index <= buckets.size)
    index = index.clip(0, buckets.size)

    def window_sums(values: FloatArray) -> FloatArray:
        cumulative = np.concatenate(([0.0], np.cumsum(values)))
        return np.diff(cumulative[index])

    counts = window_sums(buckets.count.astype(np.float64))
    sums = window_sums(buckets.sum_w)
    covered = window_sums(buckets.covered_s)
    inside = valid[:-1] & valid[1:]  # intervals wholly within the buckets given
    coverage = np.where(inside, np.clip(covered / step, 0.0, 1.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(inside & (counts > 0) & (coverage >= min_coverage), sums / counts, np.nan)
    return LoadSeries(site, feed, "samples", resolution, tz, first, mean, coverage)


def load_from_samples(
    samples: SampleInput,
    *,
    site: str,
    feed: str,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str,
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> LoadSeries:
    """One feed's interval load over ``[since, until)`` from its raw samples.

    Give the samples from one cadence before ``since`` (the one read just before covers the
    first interval's first moments) up to ``until``.
    """
    times, watts = as_sample_arrays(samples)
    start, end = epoch(since), epoch(until)
    step = resolution_seconds(resolution)
    first, count = grid_bounds(tz, start, end, step)
    buckets = bucketize(times, watts, first, first + count * step, cadence_s)
    return load_from_buckets(
        buckets,
        site=site,
        feed=feed,
        tz=tz,
        since=start,
        until=end,
        resolution=resolution,
        min_coverage=min_coverage,
    )


@dataclass(frozen=True, slots=True)
class MeterInterval:
    """One revenue-meter reading: the mean demand over ``[interval_start, interval_end)``."""

    interval_start: datetime
    interval_end: datetime
    mean_w: float
    line: int = 0  # where it was read (0: not from a file)

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_start": rfc3339(self.interval_start),
            "interval_end": rfc3339(self.interval_end),
            "mean_w": self.mean_w,
        }


def load_from_meter(
    readings: Iterable[MeterInterval],
    *,
    site: str,
    feed: str,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> LoadSeries:
    """One feed's interval load over ``[since, until)`` from meter readings (which must not
    overlap: :func:`gridhook.settlement.meter.parse_meter_csv` guarantees it per file)."""
    check_min_coverage(min_coverage)
    step = resolution_seconds(resolution)
    first, count = grid_bounds(tz, epoch(since), epoch(until), step)
    energy = np.zeros(count)  # watt-seconds of readings wholly inside each interval
    covered = np.zeros(count)
    for reading in readings:
        start, end = epoch(reading.interval_start), epoch(reading.interval_end)
        k = math.floor((start - first) / step)
        if not 0 <= k < count or end > first + (k + 1) * step:
            continue  # outside the range, or straddles a boundary (longer than the grid)
        energy[k] += reading.mean_w * (end - start)
        covered[k] += end - start
    coverage = np.clip(covered / step, 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where((covered > 0) & (coverage >= min_coverage), energy / covered, np.nan)
    return LoadSeries(site, feed, "meter", resolution, tz, first, mean, coverage)
