"""Delivered curtailment: baseline minus actual, per interval and per episode.

Per interval *i* of an event: baseline B, actual L, target T (the episode's).
Delivered reduction R = B - L; needed reduction N = max(0, B - T), what meeting the cap
would have taken. Per episode: delivered energy ΣR·Δt and needed energy ΣN·Δt, where Δt
is the part of the interval inside the event's target interval (partial intervals weigh by
overlap), the performance factor ΣR·Δt / ΣN·Δt (capped at 1, and uncapped), and how many
intervals had L ≤ T. Sums run over the *counted* intervals: those with both B and L.
Totals over a range count only the part of each counted interval inside the range, so
totals of adjacent ranges add up.

Statuses, in precedence: ``insufficient_history`` (too few eligible days: no baseline),
``pending`` (the event or a window the method needs is not over yet: figures so far),
``gaps`` (data the method or an interval needs is missing), ``complete``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from gridhook.events import rfc3339
from gridhook.settlement.baselines import (
    DEFAULT_METHOD,
    METHODS,
    STATUSES,
    Adjustment,
    BaselineParams,
    Context,
    DayExclusion,
    Outcome,
    caiso_10_in_10,
    meter_before,
    pjm_high_4_of_5,
    pjm_same_day,
    slots_of,
)
from gridhook.settlement.days import Midnights, local_day
from gridhook.settlement.errors import SettlementInputError
from gridhook.settlement.intervals import LoadSeries
from gridhook.settlement.samples import FloatArray, epoch

__all__ = [
    "EpisodeLike",
    "SettledInterval",
    "Settlement",
    "SettlementTotals",
    "data_range",
    "event_window",
    "range_totals",
    "settle",
    "settle_episode",
    "settle_episodes",
]

_DEFAULT_PARAMS = BaselineParams()


class EpisodeLike(Protocol):
    """What settlement reads of an episode (``gridhook.episodes.Episode`` has it all)."""

    @property
    def episode_id(self) -> str: ...
    @property
    def feed_tag(self) -> str | None: ...
    @property
    def interval_start(self) -> datetime | None: ...
    @property
    def interval_end(self) -> datetime | None: ...
    @property
    def target_w(self) -> float | None: ...
    @property
    def ramp_down_started_at(self) -> datetime | None: ...


def event_window(episode: EpisodeLike) -> tuple[datetime, datetime | None] | None:
    """An episode's target interval: DPS's start_time and end_time (None: until replaced,
    still going), or None when its start is unknown (no event carried it)."""
    if episode.interval_start is None:
        return None
    return episode.interval_start, episode.interval_end


@dataclass(frozen=True, slots=True)
class SettledInterval:
    """One interval of an event. ``counted_*`` is its part inside the event's target
    interval; loads in watts, None when unknown."""

    interval_start: datetime
    interval_end: datetime
    counted_start: datetime
    counted_end: datetime
    baseline_w: float | None
    actual_w: float | None
    delivered_w: float | None  # B - L
    needed_w: float | None  # max(0, B - T)

    @property
    def counted_s(self) -> float:
        return (self.counted_end - self.counted_start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_start": rfc3339(self.interval_start),
            "interval_end": rfc3339(self.interval_end),
            "baseline_w": self.baseline_w,
            "actual_w": self.actual_w,
            "delivered_w": self.delivered_w,
            "needed_w": self.needed_w,
            "counted_s": self.counted_s,
        }


@dataclass(frozen=True)
class Settlement:
    """One event's baseline and delivered figures, and what they rest on."""

    site: str
    feed: str
    episode_id: str | None
    method: str
    source: str  # meter | samples
    resolution: str
    event_start: datetime
    event_end: datetime | None  # None: still going (figures up to now, status pending)
    target_w: float | None  # None: the default constraint, whose watts are unknown
    status: str  # one of STATUSES
    reason: str  # why the status is not complete ("" when it is)
    intervals: tuple[SettledInterval, ...]
    selected_days: tuple[date, ...]
    excluded_days: tuple[DayExclusion, ...]
    adjustment: Adjustment | None
    delivered_wh: float | None
    needed_wh: float | None
    performance_factor: float | None  # delivered / needed, capped at 1
    performance_factor_uncapped: float | None
    intervals_at_or_below_target: int | None  # L <= T among the intervals with L
    intervals_counted: int  # with both B and L
    intervals_missing: int  # over, and without an actual load

    @property
    def delivered_mwh(self) -> float | None:
        return None if self.delivered_wh is None else self.delivered_wh / 1e6

    @property
    def needed_mwh(self) -> float | None:
        return None if self.needed_wh is None else self.needed_wh / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed": self.feed,
            "episode_id": self.episode_id,
            "method": self.method,
            "source": self.source,
            "resolution": self.resolution,
            "event_start": rfc3339(self.event_start),
            "event_end": rfc3339(self.event_end),
            "target_w": self.target_w,
            "status": self.status,
            "reason": self.reason,
            "delivered_mwh": self.delivered_mwh,
            "needed_mwh": self.needed_mwh,
            "performance_factor": self.performance_factor,
            "performance_factor_uncapped": self.performance_factor_uncapped,
            "intervals_at_or_below_target": self.intervals_at_or_below_target,
            "intervals_counted": self.intervals_counted,
            "intervals_missing": self.intervals_missing,
            "selected_days": [d.isoformat() for d in self.selected_days],
            "excluded_days": [e.to_dict() for e in self.excluded_days],
            "adjustment": None if self.adjustment is None else self.adjustment.to_dict(),
            "intervals": [i.to_dict() for i in self.intervals],
        }


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise SettlementInputError(
            f"unknown baseline method {method!r}; use one of {', '.join(METHODS)}"
        )


def _check_windows(params: BaselineParams, step: int) -> None:
    for name in (
        "adjustment_from",
        "adjustment_to",
        "same_day_before_from",
        "same_day_before_to",
        "same_day_after_from",
        "same_day_after_to",
        "meter_before",
    ):
        seconds = getattr(params, name).total_seconds()
        if seconds % step:
            raise SettlementInputError(
                f"{name} ({seconds:.0f} s) is not a whole number of {step // 60}-minute intervals"
            )


Windows = Iterable[tuple[datetime, datetime | None]] | tuple[FloatArray, FloatArray]


def _windows_as_arrays(windows: Windows) -> tuple[FloatArray, FloatArray]:
    """Target intervals as arrays of starts and ends (POSIX seconds; inf: still going)."""
    if isinstance(windows, tuple) and len(windows) == 2 and isinstance(windows[0], np.ndarray):
        return windows[0], windows[1]
    pairs = [(epoch(a), math.inf if b is None else epoch(b)) for a, b in windows]
    return (
        np.array([a for a, _ in pairs], dtype=np.float64),
        np.array([b for _, b in pairs], dtype=np.float64),
    )


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def settle(
    load: LoadSeries,
    *,
    event_start: datetime,
    event_end: datetime | None,
    now: datetime,
    method: str = DEFAULT_METHOD,
    target_w: float | None = None,
    ramp_down_started_at: datetime | None = None,
    other_events: Windows = (),
    episode_id: str | None = None,
    params: BaselineParams = _DEFAULT_PARAMS,
    midnights: Midnights | None = None,
) -> Settlement:
    """The baseline and delivered figures of one event on ``load``'s feed (pure).

    ``event_start``/``event_end`` are the target interval (DPS's start_time/end_time; an
    end of None means still going). ``other_events`` are the target intervals of the
    feed's episodes (this one may be among them): days they overlap are not eligible.
    ``now`` decides what is over. ``load`` must cover :func:`data_range`. ``midnights``
    is a cache of the zone's midnights that a batch may share (:func:`settle_episodes`).
    """
    _check_method(method)
    step = load.step_s
    _check_windows(params, step)
    start_s, now_s = epoch(event_start), epoch(now)
    open_event = event_end is None
    end_s = max(now_s, start_s) if event_end is None else epoch(event_end)
    if end_s < start_s:
        raise SettlementInputError(
            f"the event ends ({rfc3339(event_end)}) before it starts ({rfc3339(event_start)})"
        )
    grid_start, grid_end = load.floor(start_s), load.ceil(end_s)
    if grid_end == grid_start:
        grid_end = grid_start + step  # an instant event still lies in one interval
    starts = [grid_start + k * step for k in range(int((grid_end - grid_start) // step))]
    event_day = local_day(start_s, load.tz)
    other_starts, other_ends = _windows_as_arrays(other_events)
    if midnights is None or midnights.tz != load.tz:
        midnights = Midnights(load.tz)
    ctx = Context(
        series=load,
        midnights=midnights,
        params=params,
        event_day=event_day,
        start=grid_start,
        end=grid_end,
        event_slots=slots_of(starts, event_day, load),
        now=now_s,
        other_starts=other_starts,
        other_ends=other_ends,
    )
    outcome: Outcome
    if method == "caiso-10-in-10":
        outcome = caiso_10_in_10(ctx)
    elif method == "pjm-high-4-of-5":
        outcome = pjm_high_4_of_5(ctx)
    elif method == "pjm-same-day":
        outcome = pjm_same_day(ctx)
    else:
        ramp = None if ramp_down_started_at is None else epoch(ramp_down_started_at)
        outcome = meter_before(ctx, ramp)
    return _figures(
        load, ctx, outcome, starts, start_s, end_s, open_event, method, target_w, episode_id
    )


def _figures(
    load: LoadSeries,
    ctx: Context,
    outcome: Outcome,
    starts: Sequence[float],
    start_s: float,
    end_s: float,
    open_event: bool,
    method: str,
    target_w: float | None,
    episode_id: str | None,
) -> Settlement:
    step = load.step_s
    baseline = outcome.baseline_w
    rows: list[SettledInterval] = []
    delivered_ws = needed_ws = 0.0
    at_or_below = counted = missing = 0
    not_over = open_event or end_s > ctx.now
    for k, t in enumerate(starts):
        lo, hi = max(t, start_s), min(t + step, end_s)
        if hi < lo:
            hi = lo
        b = None if baseline is None else float(baseline[k])
        actual = load.value(t) if t + step <= ctx.now else math.nan
        a = _opt(actual)
        delivered = None if b is None or a is None else b - a
        needed = None if b is None or target_w is None else max(0.0, b - target_w)
        rows.append(
            SettledInterval(
                datetime.fromtimestamp(t, UTC),
                datetime.fromtimestamp(t + step, UTC),
                datetime.fromtimestamp(lo, UTC),
                datetime.fromtimestamp(hi, UTC),
                b,
                a,
                delivered,
                needed,
            )
        )
        if a is not None and target_w is not None and a <= target_w:
            at_or_below += 1
        if delivered is not None:
            counted += 1
            delivered_ws += delivered * (hi - lo)
            if needed is not None:
                needed_ws += needed * (hi - lo)
        if a is None and t + step <= ctx.now:
            missing += 1

    has_figures = baseline is not None
    delivered_wh = delivered_ws / 3600 if has_figures else None
    needed_wh = needed_ws / 3600 if has_figures and target_w is not None else None
    uncapped = (
        delivered_wh / needed_wh
        if delivered_wh is not None and needed_wh is not None and needed_wh > 0
        else None
    )
    status, reason = outcome.status, outcome.reason
    if status == "complete" and not_over:
        status, reason = "pending", "the event is not over yet: figures so far"
    elif status == "complete" and missing:
        status = "gaps"
        reason = f"{missing} of {len(starts)} event intervals have no actual load"
    return Settlement(
        site=load.site,
        feed=load.feed,
        episode_id=episode_id,
        method=method,
        source=load.source,
        resolution=load.resolution,
        event_start=datetime.fromtimestamp(start_s, UTC),
        event_end=None if open_event else datetime.fromtimestamp(end_s, UTC),
        target_w=target_w,
        status=status,
        reason=reason,
        intervals=tuple(rows),
        selected_days=outcome.selected_days,
        excluded_days=outcome.excluded_days,
        adjustment=outcome.adjustment,
        delivered_wh=delivered_wh,
        needed_wh=needed_wh,
        performance_factor=None if uncapped is None else min(1.0, uncapped),
        performance_factor_uncapped=uncapped,
        intervals_at_or_below_target=None if target_w is None else at_or_below,
        intervals_counted=counted,
        intervals_missing=missing,
    )


def settle_episode(
    load: LoadSeries,
    episode: EpisodeLike,
    *,
    now: datetime,
    method: str = DEFAULT_METHOD,
    other_episodes: Iterable[EpisodeLike] = (),
    params: BaselineParams = _DEFAULT_PARAMS,
) -> Settlement:
    """:func:`settle` for an episode (``gridhook.episodes.Episode`` or any
    :class:`EpisodeLike`): its target interval, target and ramp; ``other_episodes`` (this
    one may be among them) make days ineligible."""
    windows = [w for w in (event_window(e) for e in other_episodes) if w is not None]
    return _settle_one(load, episode, now, method, windows, params, None)


def settle_episodes(
    load: LoadSeries,
    episodes: Sequence[EpisodeLike],
    *,
    now: datetime,
    method: str = DEFAULT_METHOD,
    other_episodes: Iterable[EpisodeLike] | None = None,
    params: BaselineParams = _DEFAULT_PARAMS,
) -> list[Settlement]:
    """Every episode of one feed settled on ``load`` (what a settlement over a range
    does): the feed's episodes' target intervals — ``other_episodes``, by default these
    episodes — are converted once and shared, and so are the zone's midnights."""
    others = episodes if other_episodes is None else other_episodes
    windows = _windows_as_arrays([w for w in (event_window(e) for e in others) if w is not None])
    midnights = Midnights(load.tz)
    return [_settle_one(load, e, now, method, windows, params, midnights) for e in episodes]


def _settle_one(
    load: LoadSeries,
    episode: EpisodeLike,
    now: datetime,
    method: str,
    windows: Windows,
    params: BaselineParams,
    midnights: Midnights | None,
) -> Settlement:
    if episode.feed_tag is not None and episode.feed_tag != load.feed:
        raise SettlementInputError(
            f"episode {episode.episode_id} is on feed {episode.feed_tag!r}, "
            f"the load on {load.feed!r}"
        )
    window = event_window(episode)
    if window is None:
        raise SettlementInputError(
            f"episode {episode.episode_id} has no target interval (no event carried its start_time)"
        )
    return settle(
        load,
        event_start=window[0],
        event_end=window[1],
        now=now,
        method=method,
        target_w=episode.target_w,
        ramp_down_started_at=episode.ramp_down_started_at,
        other_events=windows,
        episode_id=episode.episode_id,
        params=params,
        midnights=midnights,
    )


def data_range(
    *,
    method: str,
    event_start: datetime,
    event_end: datetime | None,
    now: datetime,
    ramp_down_started_at: datetime | None = None,
    lookback_days: int = _DEFAULT_PARAMS.lookback_days,
) -> tuple[datetime, datetime]:
    """The load a loader must read to settle one event: ``(since, until)``, generous by a
    day on each side of the lookback (windows may fall on neighbouring days)."""
    _check_method(method)
    end = event_end or max(now, event_start)
    if method in ("caiso-10-in-10", "pjm-high-4-of-5"):
        since = event_start - timedelta(days=lookback_days + 2)
    else:
        since = event_start - timedelta(hours=6)
        if ramp_down_started_at is not None:
            since = min(since, ramp_down_started_at - timedelta(hours=2))
    until = end + timedelta(hours=4)
    return since, until


@dataclass(frozen=True)
class SettlementTotals:
    """Figures over ``[since, until)``: each counted interval weighs by its part inside."""

    since: datetime
    until: datetime
    episodes: int  # settlements whose target interval overlaps the range
    delivered_wh: float
    needed_wh: float
    performance_factor: float | None
    performance_factor_uncapped: float | None
    statuses: dict[str, int]  # how many of those episodes have each status

    @property
    def delivered_mwh(self) -> float:
        return self.delivered_wh / 1e6

    @property
    def needed_mwh(self) -> float:
        return self.needed_wh / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": rfc3339(self.since),
            "until": rfc3339(self.until),
            "episodes": self.episodes,
            "delivered_mwh": self.delivered_mwh,
            "needed_mwh": self.needed_mwh,
            "performance_factor": self.performance_factor,
            "performance_factor_uncapped": self.performance_factor_uncapped,
            "statuses": dict(self.statuses),
        }


def range_totals(
    settlements: Iterable[Settlement], since: datetime, until: datetime
) -> SettlementTotals:
    """Totals of these settlements over ``[since, until)`` (group them first for per-feed,
    per-site and fleet totals)."""
    lo, hi = epoch(since), epoch(until)
    delivered_ws = needed_ws = 0.0
    episodes = 0
    statuses: Counter[str] = Counter()
    for s in settlements:
        event_lo = epoch(s.event_start)
        event_hi = max(event_lo, epoch(s.intervals[-1].counted_end)) if s.intervals else event_lo
        overlaps = event_lo < hi and event_hi > lo
        instant_inside = event_hi == event_lo and lo <= event_lo < hi
        if not (overlaps or instant_inside):
            continue
        episodes += 1
        statuses[s.status] += 1
        for row in s.intervals:
            if row.delivered_w is None:
                continue
            a = max(epoch(row.counted_start), lo)
            b = min(epoch(row.counted_end), hi)
            if b <= a:
                continue
            delivered_ws += row.delivered_w * (b - a)
            if row.needed_w is not None:
                needed_ws += row.needed_w * (b - a)
    delivered_wh, needed_wh = delivered_ws / 3600, needed_ws / 3600
    uncapped = delivered_wh / needed_wh if needed_wh > 0 else None
    return SettlementTotals(
        since=since,
        until=until,
        episodes=episodes,
        delivered_wh=delivered_wh,
        needed_wh=needed_wh,
        performance_factor=None if uncapped is None else min(1.0, uncapped),
        performance_factor_uncapped=uncapped,
        statuses={k: statuses[k] for k in STATUSES if statuses[k]},
    )
