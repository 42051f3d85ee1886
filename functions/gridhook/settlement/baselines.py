"""Customer baselines: the load a feed would have drawn during an event, from its past.

Four methods (docs/settlement.md gives each definition and the manual behind it):

- ``caiso-10-in-10``: the 10 most recent eligible weekdays (4 weekend/holiday days for a
  weekend/holiday event), averaged per interval, times a day-of factor from the event
  day's ``[start - 4 h, start - 1 h)``, clipped to ±20 %; fewer than 5 (2) days:
  ``insufficient_history``.
- ``pjm-high-4-of-5``: the 5 most recent eligible weekdays (3 weekend/holiday days), the one
  with the lowest mean load over the event intervals dropped, the others averaged, plus an
  additive adjustment over the same window (either sign); fewer than 5 (3) days:
  ``insufficient_history``.
- ``pjm-same-day``: flat, the mean load over ``[start - 4 h, start - 1 h)`` and
  ``[end + 1 h, end + 3 h)`` on the event day; ``pending`` until those hours are over.
- ``meter-before``: flat, the mean load over the hour before the ramp down began.

An *eligible day* is a local day before the event day, within 45 days, with every interval
present, no episode's target interval overlapping it on the feed, and of the event day's
type (weekday, or weekend/holiday). ``start``/``end`` are rounded out to the interval grid
(whole intervals, as the ISOs count whole hours). Nothing is invented: missing data or too
few days is a status with its reason, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from gridhook.settlement.days import (
    WEEKDAY,
    HolidayCalendar,
    Midnights,
    NercHolidays,
    day_type,
)
from gridhook.settlement.errors import SettlementInputError
from gridhook.settlement.intervals import LoadSeries
from gridhook.settlement.samples import FloatArray

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "STATUSES",
    "Adjustment",
    "BaselineParams",
    "DayExclusion",
]

METHODS = ("caiso-10-in-10", "pjm-high-4-of-5", "pjm-same-day", "meter-before")
#: What ``GRIDHOOK_BASELINE_METHOD`` defaults to.
DEFAULT_METHOD = "caiso-10-in-10"
#: Data statuses, in precedence: the first that applies is the status.
STATUSES = ("insufficient_history", "pending", "gaps", "complete")

_HOUR = timedelta(hours=1)


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise SettlementInputError(f"{name} must be at least 1, not {value}")


@dataclass(frozen=True)
class BaselineParams:
    """Every parameter of the four methods; the defaults are the issue's (and the ISOs')."""

    lookback_days: int = 45
    holidays: HolidayCalendar = field(default_factory=NercHolidays)
    #: caiso and pjm adjust over [start - adjustment_from, start - adjustment_to).
    adjustment_from: timedelta = 4 * _HOUR
    adjustment_to: timedelta = _HOUR
    caiso_days: int = 10
    caiso_min_days: int = 5
    caiso_weekend_days: int = 4
    caiso_weekend_min_days: int = 2
    caiso_cap: float = 0.2  # the factor is clipped to [1 - cap, 1 + cap]
    pjm_days: int = 5
    pjm_keep: int = 4
    pjm_weekend_days: int = 3
    pjm_weekend_keep: int = 2
    #: pjm-same-day averages [start - before_from, start - before_to) and
    #: [end + after_from, end + after_to).
    same_day_before_from: timedelta = 4 * _HOUR
    same_day_before_to: timedelta = _HOUR
    same_day_after_from: timedelta = _HOUR
    same_day_after_to: timedelta = 3 * _HOUR
    meter_before: timedelta = _HOUR

    def __post_init__(self) -> None:
        for name in (
            "lookback_days",
            "caiso_days",
            "caiso_min_days",
            "caiso_weekend_days",
            "caiso_weekend_min_days",
            "pjm_days",
            "pjm_keep",
            "pjm_weekend_days",
            "pjm_weekend_keep",
        ):
            _positive(name, getattr(self, name))
        if self.caiso_min_days > self.caiso_days or (
            self.caiso_weekend_min_days > self.caiso_weekend_days
        ):
            raise SettlementInputError("caiso's minimum days cannot exceed the days it takes")
        if self.pjm_keep > self.pjm_days or self.pjm_weekend_keep > self.pjm_weekend_days:
            raise SettlementInputError("pjm cannot keep more days than it takes")
        if not (math.isfinite(self.caiso_cap) and 0 <= self.caiso_cap < 1):
            raise SettlementInputError(f"caiso_cap must be in [0, 1), not {self.caiso_cap}")
        for a, b, what in (
            (self.adjustment_from, self.adjustment_to, "adjustment window"),
            (self.same_day_before_from, self.same_day_before_to, "same-day window before"),
        ):
            if not a > b >= timedelta(0):
                raise SettlementInputError(f"the {what} must end after it starts, before start")
        if not self.same_day_after_to > self.same_day_after_from >= timedelta(0):
            raise SettlementInputError("the same-day window after must end after it starts")
        if self.meter_before <= timedelta(0):
            raise SettlementInputError("meter_before must be positive")


@dataclass(frozen=True, slots=True)
class DayExclusion:
    """A day looked at and not used, and why (``reason`` is machine-readable)."""

    day: date
    reason: str  # day_type | event | missing_data | dropped_lowest
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Adjustment:
    """The day-of adjustment: a factor (caiso) or an offset in watts (pjm-high-4-of-5)."""

    kind: str  # factor | offset
    value: float | None  # as applied (a factor after clipping); None when not computed
    unclipped: float | None  # a factor before clipping (an offset is never clipped)
    window_start: datetime
    window_end: datetime

    @property
    def clipped(self) -> bool:
        return (
            self.value is not None and self.unclipped is not None and self.value != self.unclipped
        )

    def to_dict(self) -> dict[str, Any]:
        from gridhook.events import rfc3339

        return {
            "kind": self.kind,
            "value": self.value,
            "unclipped": self.unclipped,
            "clipped": self.clipped,
            "window_start": rfc3339(self.window_start),
            "window_end": rfc3339(self.window_end),
        }


# -- the computation (used by gridhook.settlement.delivered) -------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """An interval of the event day, as a wall-clock position other days are read at."""

    start: float  # POSIX seconds, on the event day
    day_offset: int  # local days after the event day (an event past midnight: 1)
    wall: time
    fold: int


def slots_of(starts: Sequence[float], event_day: date, series: LoadSeries) -> list[Slot]:
    out = []
    for start in starts:
        local = datetime.fromtimestamp(start, UTC).astimezone(series.tz)
        out.append(Slot(start, (local.date() - event_day).days, local.time(), local.fold))
    return out


@dataclass(frozen=True)
class Outcome:
    """A method's answer: per-interval baseline (NaN-free) or a status saying why not."""

    status: str  # complete | pending | gaps | insufficient_history
    reason: str
    baseline_w: FloatArray | None  # one per event interval, when computed
    selected_days: tuple[date, ...] = ()
    excluded_days: tuple[DayExclusion, ...] = ()
    adjustment: Adjustment | None = None


@dataclass
class Context:
    """What every method reads: the series, the event's intervals, the clock."""

    series: LoadSeries
    midnights: Midnights
    params: BaselineParams
    event_day: date
    start: float  # the event's start rounded down to the grid
    end: float  # the event's end rounded up to the grid
    event_slots: list[Slot]
    now: float
    other_starts: FloatArray  # every episode's target interval on the feed: starts
    other_ends: FloatArray  # and ends (inf: still going)

    def clash(self, spans: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
        """The first episode target interval overlapping any of these spans."""
        for lo, hi in spans:
            hits = np.flatnonzero((self.other_starts < hi) & (self.other_ends > lo))
            if hits.size:
                return float(self.other_starts[hits[0]]), float(self.other_ends[hits[0]])
        return None

    def window(self, since: float, until: float, what: str) -> tuple[FloatArray | None, str, str]:
        """The event day's loads over ``[since, until)``; with a status when not usable."""
        if until > self.now:
            return None, "pending", f"{what} {_span(since, until)} is not over yet"
        values = self.series.values(since, until)
        missing = int(np.isnan(values).sum())
        if missing:
            return (
                None,
                "gaps",
                f"{what} {_span(since, until)} has {missing} of {values.size} intervals missing",
            )
        return values, "complete", ""


def _span(since: float, until: float) -> str:
    from gridhook.events import rfc3339

    a = rfc3339(datetime.fromtimestamp(since, UTC))
    # An episode still going (no end_time: until replaced) has an infinite end.
    b = "still going" if math.isinf(until) else rfc3339(datetime.fromtimestamp(until, UTC))
    return f"[{a}, {b})"


def _dt(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


class SlotTable:
    """Slots grouped by the day they fall on, so that reading a day is a few array ops."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        self.slots = list(slots)
        self.groups = [
            (
                offset,
                np.array([i for i, s in enumerate(slots) if s.day_offset == offset]),
                np.array([_seconds(s.wall) for s in slots if s.day_offset == offset]),
            )
            for offset in sorted({s.day_offset for s in slots})
        ]

    def values(self, ctx: Context, day: date) -> FloatArray:
        """The day's loads at the slots' wall-clock positions (vectorised where the days
        read have 24 hours; on a DST day zoneinfo resolves each slot)."""
        instants = np.empty(len(self.slots))
        for offset, index, seconds in self.groups:
            on = day + timedelta(days=offset)
            start, end = ctx.midnights.day_span(on)
            if end - start == 86400.0:
                instants[index] = start + seconds
            else:
                for i in index:
                    slot = self.slots[i]
                    instants[i] = ctx.midnights.instant(on, slot.wall, slot.fold)
        return ctx.series.values_at(instants)


def _seconds(wall: time) -> float:
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _walk(
    ctx: Context, need: int, window_slots: Sequence[Slot]
) -> tuple[list[tuple[date, FloatArray, FloatArray]], list[DayExclusion]]:
    """The ``need`` most recent eligible days before the event day, with their loads at
    the event's and the window's slots; every day looked at and refused, with why."""
    params = ctx.params
    kind = day_type(ctx.event_day, params.holidays)
    step = ctx.series.step_s
    eligible: list[tuple[date, FloatArray, FloatArray]] = []
    excluded: list[DayExclusion] = []
    table = SlotTable([*ctx.event_slots, *window_slots])
    split = len(ctx.event_slots)
    for back in range(1, params.lookback_days + 1):
        if len(eligible) == need:
            break
        day = ctx.event_day - timedelta(days=back)
        if day_type(day, params.holidays) != kind:
            what = "a weekday" if kind != WEEKDAY else "a weekend day or holiday"
            excluded.append(DayExclusion(day, "day_type", f"{what}; the event day is not"))
            continue
        day_start, day_end = ctx.midnights.day_span(day)
        # The day's own span and every slot read on a neighbouring day must be event-free.
        spans = [(day_start, day_end)]
        for slot in (*ctx.event_slots, *window_slots):
            if slot.day_offset:
                on = day + timedelta(days=slot.day_offset)
                t = ctx.midnights.instant(on, slot.wall, slot.fold)
                spans.append((t, t + step))
        clash = ctx.clash(spans)
        if clash is not None:
            excluded.append(
                DayExclusion(day, "event", f"an episode's target {_span(*clash)} overlaps it")
            )
            continue
        both = table.values(ctx, day)
        event_values, window_values = both[:split], both[split:]
        day_values = ctx.series.values(day_start, day_end)
        missing = int(np.isnan(day_values).sum())
        slot_missing = int(np.isnan(event_values).sum() + np.isnan(window_values).sum())
        if missing or slot_missing:
            detail = f"{missing} of {day_values.size} intervals missing"
            if slot_missing and not missing:
                detail = (
                    f"{slot_missing} intervals it is read at on the next or previous day missing"
                )
            excluded.append(DayExclusion(day, "missing_data", detail))
            continue
        eligible.append((day, event_values, window_values))
    return eligible, excluded


def _adjustment_window(ctx: Context) -> tuple[float, float, list[Slot]]:
    p = ctx.params
    since = ctx.start - p.adjustment_from.total_seconds()
    until = ctx.start - p.adjustment_to.total_seconds()
    step = ctx.series.step_s
    starts = [since + k * step for k in range(int((until - since) // step))]
    return since, until, slots_of(starts, ctx.event_day, ctx.series)


def _history(
    ctx: Context, method: str, need: int, minimum: int
) -> tuple[
    list[tuple[date, FloatArray, FloatArray]], list[DayExclusion], float, float, Outcome | None
]:
    since, until, window_slots = _adjustment_window(ctx)
    eligible, excluded = _walk(ctx, need, window_slots)
    if len(eligible) < minimum:
        kind = day_type(ctx.event_day, ctx.params.holidays).replace("_", "/")
        reason = (
            f"{len(eligible)} eligible {kind} days in the {ctx.params.lookback_days} days before "
            f"{ctx.event_day.isoformat()}; {method} needs at least {minimum}"
        )
        return (
            eligible,
            excluded,
            since,
            until,
            Outcome("insufficient_history", reason, None, excluded_days=tuple(excluded)),
        )
    return eligible, excluded, since, until, None


def caiso_10_in_10(ctx: Context) -> Outcome:
    p = ctx.params
    weekday = day_type(ctx.event_day, p.holidays) == WEEKDAY
    need = p.caiso_days if weekday else p.caiso_weekend_days
    minimum = p.caiso_min_days if weekday else p.caiso_weekend_min_days
    eligible, excluded, since, until, refused = _history(ctx, "caiso-10-in-10", need, minimum)
    if refused is not None:
        return refused
    days = tuple(d for d, _, _ in eligible)
    unadjusted = np.mean([v for _, v, _ in eligible], axis=0)
    window_baseline = float(np.mean([w for _, _, w in eligible]))
    actual, status, reason = ctx.window(since, until, "the adjustment window")
    pending = Adjustment("factor", None, None, _dt(since), _dt(until))
    if actual is None:
        return Outcome(status, reason, None, days, tuple(excluded), pending)
    if window_baseline <= 0:
        reason = "the baseline is 0 W over the adjustment window: no factor can be formed"
        return Outcome("gaps", reason, None, days, tuple(excluded), pending)
    raw = float(np.mean(actual)) / window_baseline
    factor = min(max(raw, 1 - p.caiso_cap), 1 + p.caiso_cap)
    adjustment = Adjustment("factor", factor, raw, _dt(since), _dt(until))
    return Outcome("complete", "", unadjusted * factor, days, tuple(excluded), adjustment)


def pjm_high_4_of_5(ctx: Context) -> Outcome:
    p = ctx.params
    weekday = day_type(ctx.event_day, p.holidays) == WEEKDAY
    need = p.pjm_days if weekday else p.pjm_weekend_days
    keep = p.pjm_keep if weekday else p.pjm_weekend_keep
    eligible, excluded, since, until, refused = _history(ctx, "pjm-high-4-of-5", need, need)
    if refused is not None:
        return refused
    # Highest mean over the event intervals first; on a tie the more recent day ranks higher.
    ranked = sorted(enumerate(eligible), key=lambda item: (-float(np.mean(item[1][1])), item[0]))
    kept = sorted((item for item in ranked[:keep]), key=lambda item: item[0])
    for _, (day, values, _) in ranked[keep:]:
        excluded.append(
            DayExclusion(
                day,
                "dropped_lowest",
                f"mean {float(np.mean(values)):.0f} W over the event intervals: among the "
                f"lowest {need - keep} of {need}",
            )
        )
    days = tuple(day for _, (day, _, _) in kept)
    unadjusted = np.mean([v for _, (_, v, _) in kept], axis=0)
    window_baseline = np.mean([w for _, (_, _, w) in kept], axis=0)
    actual, status, reason = ctx.window(since, until, "the adjustment window")
    if actual is None:
        pending = Adjustment("offset", None, None, _dt(since), _dt(until))
        return Outcome(status, reason, None, days, tuple(excluded), pending)
    offset = float(np.mean(actual - window_baseline))
    adjustment = Adjustment("offset", offset, offset, _dt(since), _dt(until))
    return Outcome("complete", "", unadjusted + offset, days, tuple(excluded), adjustment)


def pjm_same_day(ctx: Context) -> Outcome:
    p = ctx.params
    before = (
        ctx.start - p.same_day_before_from.total_seconds(),
        ctx.start - p.same_day_before_to.total_seconds(),
    )
    after = (
        ctx.end + p.same_day_after_from.total_seconds(),
        ctx.end + p.same_day_after_to.total_seconds(),
    )
    values = []
    for (since, until), what in ((before, "the window before"), (after, "the window after")):
        got, status, reason = ctx.window(since, until, what)
        if got is None:
            return Outcome(status, reason, None)
        values.append(got)
    flat = float(np.mean(np.concatenate(values)))
    return Outcome("complete", "", np.full(len(ctx.event_slots), flat))


def meter_before(ctx: Context, ramp_down_started_at: float | None) -> Outcome:
    if ramp_down_started_at is None:
        return Outcome(
            "gaps", "no start_ramp_down was received: when the ramp down began is unknown", None
        )
    # Whole intervals only: the hour ends at the last boundary at or before the ramp began,
    # so no interval holding ramped-down load is averaged in.
    until = ctx.series.floor(ramp_down_started_at)
    since = until - ctx.params.meter_before.total_seconds()
    got, status, reason = ctx.window(since, until, "the hour before the ramp down")
    if got is None:
        return Outcome(status, reason, None)
    return Outcome("complete", "", np.full(len(ctx.event_slots), float(np.mean(got))))
