"""DPS load samples, as arrays, and their 5-minute buckets.

Samples are point readings (``sampled_at``, ``calculated_w``) taken at a steady cadence
(``sample_load`` runs every minute by default). Everything downstream — hourly rollups,
intervals of 5 minutes, 15 minutes or an hour — is built from 5-minute buckets, because
every real UTC offset is a whole number of 5 minutes, so a site's local 5m, 15m and 1h
intervals are each a whole number of UTC 5-minute buckets.

**Coverage.** A sample stands for the time from its reading to the next one, at most one
cadence: sample *i* covers ``[t_i, t_i + min(cadence, t_{i+1} - t_i))``. The coverage of a
span is the length of the union of what its samples cover, divided by its length. Exact
duplicates cover nothing more; a sample just before a span's start covers its first
moments (so a 12:00:05, 12:01:05, … run covers the 12:00 to 12:05 bucket fully).
An interval's *load* is the mean of the samples read inside it (``[start, end)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from gridhook.settlement.errors import SettlementInputError

__all__ = [
    "BUCKET_S",
    "DEFAULT_SAMPLE_CADENCE_S",
    "Buckets",
    "SampleInput",
    "as_sample_arrays",
    "bucketize",
    "epoch",
]

BUCKET_S = 300
#: The sampling job's default schedule: one GetStatus a minute.
DEFAULT_SAMPLE_CADENCE_S = 60.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Samples as a caller has them: objects with ``sampled_at`` and ``calculated_w`` (a
#: ``gridhook.store.base.LoadSample``), ``(datetime | POSIX seconds, watts | None)``
#: tuples, or a pair of arrays ``(POSIX seconds, watts)``.
SampleInput = Iterable[Any] | tuple[FloatArray, FloatArray]


def epoch(moment: datetime) -> float:
    """An aware datetime as POSIX seconds (a naive one is refused: its zone is unknown)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SettlementInputError(f"{moment.isoformat()} has no time zone; give aware times")
    return moment.timestamp()


def _reading(item: Any) -> tuple[Any, Any]:
    if hasattr(item, "sampled_at"):
        return item.sampled_at, item.calculated_w
    moment, watts = item
    return moment, watts


def as_sample_arrays(samples: SampleInput) -> tuple[FloatArray, FloatArray]:
    """Samples as two arrays sorted by time: POSIX seconds and watts.

    A sample without a reading (``calculated_w`` None or NaN) is no sample: DPS said
    nothing about the load then, and a gap stays a gap.
    """
    if (
        isinstance(samples, tuple)
        and len(samples) == 2
        and all(isinstance(a, np.ndarray) for a in samples)
    ):
        times = np.asarray(samples[0], dtype=np.float64)
        watts = np.asarray(samples[1], dtype=np.float64)
        if times.shape != watts.shape or times.ndim != 1:
            raise SettlementInputError("sample arrays must be two 1-D arrays of one length")
    else:
        moments: list[float] = []
        values: list[float] = []
        for item in samples:
            moment, watts_value = _reading(item)
            if watts_value is None:
                continue
            moments.append(epoch(moment) if isinstance(moment, datetime) else float(moment))
            values.append(float(watts_value))
        times = np.array(moments, dtype=np.float64)
        watts = np.array(values, dtype=np.float64)
    keep = np.isfinite(watts) & np.isfinite(times)
    if not keep.all():
        times, watts = times[keep], watts[keep]
    if times.size > 1 and np.any(np.diff(times) < 0):
        order = np.argsort(times, kind="stable")
        times, watts = times[order], watts[order]
    return times, watts


@dataclass(frozen=True, eq=False)
class Buckets:
    """Consecutive UTC 5-minute buckets from ``first * 300`` (POSIX seconds).

    ``count``/``sum_w`` are of the samples read in the bucket; ``min_w``/``max_w`` NaN when
    it has none; ``covered_s`` is the time its samples cover (see the module doc).
    """

    first: int  # index of the first bucket: its start is first * BUCKET_S
    count: IntArray
    sum_w: FloatArray
    min_w: FloatArray
    max_w: FloatArray
    covered_s: FloatArray

    @property
    def size(self) -> int:
        return int(self.count.size)

    @classmethod
    def empty(cls, first: int, size: int) -> Buckets:
        nan = np.full(size, np.nan)
        return cls(first, np.zeros(size, np.int64), np.zeros(size), nan, nan.copy(), np.zeros(size))


def _check_cadence(cadence_s: float) -> None:
    if not (math.isfinite(cadence_s) and cadence_s > 0):
        raise SettlementInputError(f"the sample cadence must be > 0 seconds, not {cadence_s}")


def bucketize(
    times: FloatArray, watts: FloatArray, since: float, until: float, cadence_s: float
) -> Buckets:
    """The 5-minute buckets over ``[since, until)`` (rounded out to whole buckets).

    ``times`` must be sorted. Samples before ``since`` count only for coverage (the last
    one may cover the first bucket's first moments); samples at or after ``until`` only
    bound how long the sample before them counts.
    """
    _check_cadence(cadence_s)
    first = math.floor(since / BUCKET_S)
    last = math.ceil(until / BUCKET_S)
    size = max(0, last - first)
    out = Buckets.empty(first, size)
    if size == 0 or times.size == 0:
        return out

    # Coverage: C(x) = time covered before x; a bucket's coverage is C(end) - C(start).
    gaps = np.diff(times, append=np.inf)
    lengths = np.minimum(gaps, cadence_s)
    covered_before = np.concatenate(([0.0], np.cumsum(lengths)))
    edges = (first + np.arange(size + 1, dtype=np.float64)) * BUCKET_S
    j = np.searchsorted(times, edges, side="right") - 1  # last sample at or before the edge
    inside = np.where(j >= 0, np.clip(edges - times[np.maximum(j, 0)], 0.0, None), 0.0)
    partial = np.where(j >= 0, np.minimum(inside, lengths[np.maximum(j, 0)]), 0.0)
    cumulative = np.where(j >= 0, covered_before[np.maximum(j, 0)], 0.0) + partial
    np.copyto(out.covered_s, np.diff(cumulative))

    lo = np.searchsorted(times, first * BUCKET_S, side="left")
    hi = np.searchsorted(times, last * BUCKET_S, side="left")
    if hi > lo:
        t, w = times[lo:hi], watts[lo:hi]
        index = (np.floor(t / BUCKET_S).astype(np.int64) - first).clip(0, size - 1)
        np.copyto(out.count, np.bincount(index, minlength=size))
        np.copyto(out.sum_w, np.bincount(index, weights=w, minlength=size))
        starts = np.flatnonzero(np.diff(index, prepend=-1))  # index is sorted: runs
        out.min_w[index[starts]] = np.minimum.reduceat(w, starts)
        out.max_w[index[starts]] = np.maximum.reduceat(w, starts)
    return out
