"""The hourly rollup: one immutable record per feed and UTC hour, so that reading a range
costs O(intervals), not O(samples).

A rollup holds the hour's twelve 5-minute buckets: the count, mean, minimum and maximum of
the samples read in each, and the seconds they cover (what coverage needs; see
:mod:`gridhook.settlement.samples`). Intervals built from rollups are exactly those built
from the raw samples: means are rebuilt as mean x count, coverage adds up.

**The rule for a range**: a complete hour comes from its rollup; an hour without one (the
open hour, or one the job has not rolled up yet) comes from raw samples.
:func:`sample_ranges_needed` says which raw samples to read; :func:`load_from_rollups`
joins the two. An hour is complete once ``hour_end + cadence`` has passed (its last sample
is in) — :func:`hour_complete`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gridhook.events import parse_time, rfc3339
from gridhook.settlement.errors import SettlementInputError
from gridhook.settlement.intervals import (
    DEFAULT_MIN_COVERAGE,
    LoadSeries,
    grid_bounds,
    load_from_buckets,
    resolution_seconds,
)
from gridhook.settlement.samples import (
    BUCKET_S,
    DEFAULT_SAMPLE_CADENCE_S,
    SampleInput,
    as_sample_arrays,
    bucketize,
    epoch,
)

__all__ = [
    "BUCKETS_PER_HOUR",
    "HourlyRollup",
    "hour_complete",
    "load_from_rollups",
    "rollup_hours",
    "sample_ranges_needed",
]

BUCKETS_PER_HOUR = 3600 // BUCKET_S
_HOUR = 3600


def _floor_hour(instant: float) -> int:
    return math.floor(instant / _HOUR) * _HOUR


def _none_if_nan(value: float) -> float | None:
    return None if value != value else value  # NaN is the one value not equal to itself


@dataclass(frozen=True, slots=True)
class HourlyRollup:
    """One feed's UTC hour as twelve 5-minute buckets (immutable; insert-if-absent).

    ``means``/``minima``/``maxima`` are None for a bucket without samples.
    """

    site: str
    feed: str
    hour_start: datetime  # UTC, on the hour
    counts: tuple[int, ...]
    means: tuple[float | None, ...]
    minima: tuple[float | None, ...]
    maxima: tuple[float | None, ...]
    covered_s: tuple[float, ...]

    def __post_init__(self) -> None:
        fields = (self.counts, self.means, self.minima, self.maxima, self.covered_s)
        if any(len(f) != BUCKETS_PER_HOUR for f in fields):
            raise SettlementInputError(f"a rollup holds {BUCKETS_PER_HOUR} buckets per field")
        start = epoch(self.hour_start)
        if start % _HOUR:
            raise SettlementInputError(f"{rfc3339(self.hour_start)} is not on a UTC hour")

    @property
    def rollup_id(self) -> str:
        """Stable key: one record per site, feed and hour."""
        return f"{self.site}|{self.feed}|{rfc3339(self.hour_start)}"

    @property
    def sample_count(self) -> int:
        return sum(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed": self.feed,
            "hour_start": rfc3339(self.hour_start),
            "counts": list(self.counts),
            "means": list(self.means),
            "minima": list(self.minima),
            "maxima": list(self.maxima),
            "covered_s": list(self.covered_s),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HourlyRollup:
        """The record :meth:`to_dict` wrote (a store's codec calls this)."""
        hour = parse_time(str(data["hour_start"]))
        if hour is None:  # pragma: no cover - parse_time returns None only for None
            raise SettlementInputError("a rollup needs its hour_start")

        def floats(key: str) -> tuple[float | None, ...]:
            return tuple(None if v is None else float(v) for v in data[key])

        return cls(
            site=str(data["site"]),
            feed=str(data["feed"]),
            hour_start=hour,
            counts=tuple(int(v) for v in data["counts"]),
            means=floats("means"),
            minima=floats("minima"),
            maxima=floats("maxima"),
            covered_s=tuple(float(v) for v in data["covered_s"]),
        )


def hour_complete(
    hour_start: datetime, now: datetime, *, cadence_s: float = DEFAULT_SAMPLE_CADENCE_S
) -> bool:
    """Whether an hour may be rolled up: its end plus one cadence has passed."""
    return epoch(now) >= epoch(hour_start) + _HOUR + cadence_s


def rollup_hours(
    samples: SampleInput,
    *,
    site: str,
    feed: str,
    since: datetime,
    until: datetime,
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
) -> list[HourlyRollup]:
    """A rollup for every UTC hour starting in ``[since, until)`` (hours without samples
    too: "nothing was read" is a fact worth keeping).

    Give the samples from one cadence before the first hour (the one read just before
    covers its first moments) to the end of the last. Only roll up complete hours
    (:func:`hour_complete`): a rollup is never rewritten.
    """
    times, watts = as_sample_arrays(samples)
    first_hour = _floor_hour(epoch(since))
    end = epoch(until)
    hours = max(0, math.ceil((end - first_hour) / _HOUR))
    buckets = bucketize(times, watts, first_hour, first_hour + hours * _HOUR, cadence_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(buckets.count > 0, buckets.sum_w / buckets.count, np.nan)
    counts, covered = buckets.count.tolist(), buckets.covered_s.tolist()
    means = [_none_if_nan(v) for v in mean.tolist()]
    minima = [_none_if_nan(v) for v in buckets.min_w.tolist()]
    maxima = [_none_if_nan(v) for v in buckets.max_w.tolist()]
    out = []
    for h in range(hours):
        a, b = h * BUCKETS_PER_HOUR, (h + 1) * BUCKETS_PER_HOUR
        out.append(
            HourlyRollup(
                site=site,
                feed=feed,
                hour_start=datetime.fromtimestamp(first_hour + h * _HOUR, UTC),
                counts=tuple(counts[a:b]),
                means=tuple(means[a:b]),
                minima=tuple(minima[a:b]),
                maxima=tuple(maxima[a:b]),
                covered_s=tuple(covered[a:b]),
            )
        )
    return out


def _range_bounds(
    tz: ZoneInfo, since: datetime, until: datetime, resolution: str
) -> tuple[int, int]:
    step = resolution_seconds(resolution)
    first, count = grid_bounds(tz, epoch(since), epoch(until), step)
    return first, first + count * step


def sample_ranges_needed(
    rollups: Iterable[HourlyRollup],
    *,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str,
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
) -> list[tuple[datetime, datetime]]:
    """The raw-sample ranges a loader must read besides these rollups: each run of hours
    without a rollup, from one cadence before it (the sample read just before covers its
    first moments) to its end."""
    lo, hi = _range_bounds(tz, since, until, resolution)
    have = {epoch(r.hour_start) for r in rollups}
    ranges: list[tuple[float, float]] = []
    hour = _floor_hour(lo)
    run_start: int | None = None
    while hour < hi:
        if hour in have:
            if run_start is not None:
                ranges.append((run_start, hour))
                run_start = None
        elif run_start is None:
            run_start = hour
        hour += _HOUR
    if run_start is not None:
        ranges.append((run_start, hour))
    return [
        (
            datetime.fromtimestamp(a - cadence_s, UTC),
            datetime.fromtimestamp(b, UTC),
        )
        for a, b in ranges
    ]


def load_from_rollups(
    rollups: Sequence[HourlyRollup],
    samples: SampleInput = (),
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
    """Interval load over ``[since, until)``: rollups for the hours that have one, raw
    ``samples`` (read per :func:`sample_ranges_needed`) for the others."""
    lo, hi = _range_bounds(tz, since, until, resolution)
    first_hour = _floor_hour(lo)
    hours = max(0, math.ceil((hi - first_hour) / _HOUR))
    times, watts = as_sample_arrays(samples)
    buckets = bucketize(times, watts, first_hour, first_hour + hours * _HOUR, cadence_s)
    chosen = []
    for rollup in rollups:
        if rollup.site != site or rollup.feed != feed:
            raise SettlementInputError(
                f"rollup {rollup.rollup_id} is not of site {site!r}, feed {feed!r}"
            )
        h = int((epoch(rollup.hour_start) - first_hour) // _HOUR)
        if 0 <= h < hours:
            chosen.append((h, rollup))
    if chosen:
        # Every rollup's 12 buckets at once: (rollups, 12) arrays, None read as NaN.
        at = (
            np.array([h for h, _ in chosen])[:, None] * BUCKETS_PER_HOUR
            + np.arange(BUCKETS_PER_HOUR)
        ).ravel()
        counts = np.array([r.counts for _, r in chosen], dtype=np.int64).ravel()
        means = np.array([r.means for _, r in chosen], dtype=np.float64).ravel()
        buckets.count[at] = counts
        buckets.sum_w[at] = np.where(counts > 0, np.nan_to_num(means) * counts, 0.0)
        buckets.min_w[at] = np.array([r.minima for _, r in chosen], dtype=np.float64).ravel()
        buckets.max_w[at] = np.array([r.maxima for _, r in chosen], dtype=np.float64).ravel()
        buckets.covered_s[at] = np.array([r.covered_s for _, r in chosen], np.float64).ravel()
    return load_from_buckets(
        buckets,
        site=site,
        feed=feed,
        tz=tz,
        since=epoch(since),
        until=epoch(until),
        resolution=resolution,
        min_coverage=min_coverage,
    )
