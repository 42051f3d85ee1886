"""A feed's timeline: its load readings (webhooks and DPS samples), the target in force,
and the phases it went through, over one window of time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from gridhook.episodes import Episode
from gridhook.episodes.grouping import target_watts
from gridhook.events import StoredEvent
from gridhook.intervals.readings import BUCKET, HOUR, bucket_means
from gridhook.report.model import LoadPoint, PhaseSpan, Timeline
from gridhook.store import LoadSample, RollupRecord

__all__ = ["CHART_STEPS", "MAX_CHART_POINTS", "chart_step", "feed_timeline", "phase_spans"]

#: The steps a timeline's DPS load is drawn at: a rollup's 5-minute buckets, or means of
#: several (UTC-aligned, so a step's buckets are whole).
CHART_STEPS = tuple(timedelta(minutes=m) for m in (5, 15, 60, 180, 360))
#: A chart is about a thousand pixels wide: more points than this per feed cannot be
#: seen, yet they cost the report's build, its JSON (every point is there) and its charts.
MAX_CHART_POINTS = 1500


def chart_step(start: datetime, end: datetime) -> timedelta:
    """The finest step at which [start, end) has at most MAX_CHART_POINTS points: 5 minutes
    up to 5 days 5 hours, 15 minutes up to 15½ days, an hour up to 62½, 3 hours up to
    187½, then 6 hours."""
    span = max(0.0, (end - start).total_seconds())
    for step in CHART_STEPS:
        if span / step.total_seconds() <= MAX_CHART_POINTS:
            return step
    return CHART_STEPS[-1]


def _event_point(event: StoredEvent) -> LoadPoint:
    return LoadPoint(
        at=event.received_at,
        source="event",
        calculated_w=event.calculated_w,
        target_w=target_watts(event.target_w),  # zero is the default, not 0 W
        event=event.event,
        correlation_id=event.correlation_id,
        compliant=event.compliant,
    )


def _sample_point(sample: LoadSample) -> LoadPoint:
    return LoadPoint(
        at=sample.sampled_at,
        source="sample",
        calculated_w=sample.calculated_w,
        target_w=target_watts(sample.target_w),
        correlation_id=sample.correlation_id,
    )


def _rollup_points(rollup: RollupRecord, start: datetime, end: datetime) -> list[LoadPoint]:
    return [
        LoadPoint(at=at, source="rollup", calculated_w=mean, target_w=None)
        for at, mean, _, _ in bucket_means(rollup, start, end)
    ]


def _slot(moment: datetime, step_s: float) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / step_s) * step_s, UTC)


def _rollup_means(
    rollups: Iterable[RollupRecord], start: datetime, end: datetime, step: timedelta
) -> list[LoadPoint]:
    """The rollups' 5-minute buckets as means over ``step``, each bucket weighed by its
    sample count (so a step's mean is the mean of its samples, as if read raw)."""
    step_s = step.total_seconds()
    bucket_s = BUCKET.total_seconds()
    lo, hi = start.timestamp(), end.timestamp()
    sums: dict[float, list[float]] = {}
    for rollup in rollups:  # epoch seconds: a month of a fleet is millions of buckets
        hour = rollup.hour_start.timestamp()
        for k, (mean, count) in enumerate(zip(rollup.means, rollup.counts, strict=True)):
            at = hour + k * bucket_s
            if mean is None or count <= 0 or not lo <= at < hi:
                continue
            acc = sums.setdefault(at - at % step_s, [0.0, 0.0])
            acc[0] += mean * count
            acc[1] += count
    return [
        LoadPoint(
            at=datetime.fromtimestamp(max(at, lo), UTC),
            source="rollup",
            calculated_w=total / n,
            target_w=None,
        )
        for at, (total, n) in sorted(sums.items())
    ]


def _sample_means(
    samples: Sequence[LoadSample], start: datetime, end: datetime, step: timedelta
) -> list[LoadPoint]:
    """Raw samples in [start, end) as means over ``step``; a point keeps the target of
    its slot's last sample (the target line itself follows every raw sample)."""
    step_s = step.total_seconds()
    slots: dict[datetime, list[LoadSample]] = {}
    for sample in samples:
        if sample.calculated_w is not None and start <= sample.sampled_at < end:
            slots.setdefault(_slot(sample.sampled_at, step_s), []).append(sample)
    return [
        LoadPoint(
            at=max(at, start),
            source="sample",
            calculated_w=sum(s.calculated_w or 0.0 for s in group) / len(group),
            target_w=target_watts(max(group, key=lambda s: s.sampled_at).target_w),
        )
        for at, group in sorted(slots.items())
    ]


def _target_steps(
    readings: Sequence[LoadPoint],
    events: Sequence[StoredEvent],
    start: datetime,
    end: datetime,
    seen_before: bool,
) -> tuple[tuple[datetime, float | None], ...]:
    """The target in force from each reading on, carried in at ``start`` and out to ``end``.

    ``seen_before``: the feed had events before ``start``. Without them, the target line
    begins at the feed's first reading: before its first event ever, gridhook knew nothing
    of the feed, so it draws no previous target there.
    """
    before = [p for p in readings if p.at < start]
    inside = [p for p in readings if start <= p.at < end]
    steps: list[tuple[datetime, float | None]] = []
    if before:
        steps.append((start, before[-1].target_w))
    elif seen_before and inside and inside[0].source == "event":
        # Before the first change in the window, the previous target was in force.
        first = next(e for e in events if e.received_at == inside[0].at)
        previous = target_watts(first.prev_target_w)
        if first.event.startswith("start_") and previous is not None:
            steps.append((start, previous))
    for p in inside:
        # A step only where the target changes: every sample repeats the one in force.
        if not steps or steps[-1][1] != p.target_w:
            steps.append((p.at, p.target_w))
    if steps:
        steps.append((end, steps[-1][1]))
    return tuple(steps)


def phase_spans(
    episodes: Sequence[Episode], start: datetime, end: datetime, now: datetime
) -> tuple[PhaseSpan, ...]:
    """The phases of ``episodes`` clipped to [start, end].

    A phase without its ending event ends where the next phase began, where the episode
    that superseded it began, or, while the episode is open, now.
    """
    started = {e.episode_id: e.started_at for e in episodes}
    spans: list[PhaseSpan] = []
    for episode in episodes:
        cut_off = started.get(episode.superseded_by) if episode.superseded_by else None
        open_end = now if episode.open else cut_off
        down = ("ramping_down", episode.ramp_down_started_at, episode.ramp_down_ended_at)
        up = ("ramping_up", episode.ramp_up_started_at, episode.ramp_up_ended_at)
        phases: tuple[tuple[str, datetime | None, datetime | None], ...]
        if episode.kind == "curtailment":
            held = ("constrained", episode.ramp_down_ended_at, episode.ramp_up_started_at)
            phases = (down, held, up)
        else:  # a raised target: up to it, steady there, then back down
            phases = (up, down)
        for index, (phase, begins, ends) in enumerate(phases):
            if begins is None:
                continue
            later = [b for _, b, _ in phases[index + 1 :] if b is not None]
            ongoing = ends is None and not later
            finish = ends or (later[0] if later else open_end)
            if finish is None or finish <= begins:
                continue
            clipped_start, clipped_end = max(begins, start), min(finish, end)
            if clipped_end <= clipped_start:
                continue
            spans.append(
                PhaseSpan(
                    phase=phase,
                    start=clipped_start,
                    end=clipped_end,
                    episode_id=episode.episode_id,
                    ongoing=ongoing and episode.open,
                    stalled=ongoing and episode.status == "stalled" and phase != "constrained",
                )
            )
    return tuple(sorted(spans, key=lambda s: s.start))


def feed_timeline(
    episodes: Sequence[Episode],
    samples: Sequence[LoadSample],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    seen_before: bool = False,
    rollups: Sequence[RollupRecord] = (),
    step: timedelta = BUCKET,
) -> Timeline:
    """One feed's timeline over [start, end) from its episodes' events and DPS's samples:
    raw ``samples``, and ``rollups`` (5-minute means) for the hours rolled up;
    ``seen_before``: the feed had events before ``start`` (see ``_target_steps``).

    ``step`` (see :func:`chart_step`): DPS's load is drawn as each sample and each
    5-minute mean, or, coarser, as means over ``step`` of both. The target line follows
    the webhooks and the raw samples (a rollup keeps no target); webhooks are always
    drawn one by one."""
    events = sorted(
        {e.event_id: e for episode in episodes for e in episode.events}.values(),
        key=lambda e: (e.received_at, e.event_id),
    )
    targeted = sorted(
        [*map(_event_point, events), *map(_sample_point, samples)],
        key=lambda p: (p.at, p.source),
    )
    if step > BUCKET:
        drawn = [
            *map(_event_point, events),
            *_sample_means(samples, start, end, step),
            *_rollup_means(rollups, start, end, step),
        ]
    else:
        drawn = [*targeted, *(p for r in rollups for p in _rollup_points(r, start, end))]
    readings = sorted(drawn, key=lambda p: (p.at, p.source))
    return Timeline(
        start=start,
        end=end,
        points=tuple(p for p in readings if start <= p.at < end),
        target_steps=_target_steps(targeted, events, start, end, seen_before),
        phases=phase_spans(episodes, start, end, now),
        rollup_hours=sum(1 for r in rollups if r.hour_start < end and r.hour_start + HOUR > start),
        step_seconds=int(max(step, BUCKET).total_seconds()),
    )
