"""A feed's timeline: its load readings (webhooks and DPS samples), the target in force,
and the phases it went through, over one window of time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gridhook.episodes import Episode
from gridhook.episodes.grouping import target_watts
from gridhook.events import StoredEvent
from gridhook.intervals.readings import HOUR, bucket_means
from gridhook.report.model import LoadPoint, PhaseSpan, Timeline
from gridhook.store import LoadSample, RollupRecord

__all__ = ["feed_timeline", "phase_spans"]


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
    steps.extend((p.at, p.target_w) for p in inside)
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
) -> Timeline:
    """One feed's timeline over [start, end) from its episodes' events and DPS's samples:
    raw ``samples``, and ``rollups`` (5-minute means) for the hours rolled up;
    ``seen_before``: the feed had events before ``start`` (see ``_target_steps``).

    The target line follows the webhooks and the raw samples (a rollup keeps no target)."""
    events = sorted(
        {e.event_id: e for episode in episodes for e in episode.events}.values(),
        key=lambda e: (e.received_at, e.event_id),
    )
    targeted = sorted(
        [*map(_event_point, events), *map(_sample_point, samples)],
        key=lambda p: (p.at, p.source),
    )
    means = [p for rollup in rollups for p in _rollup_points(rollup, start, end)]
    readings = sorted([*targeted, *means], key=lambda p: (p.at, p.source))
    return Timeline(
        start=start,
        end=end,
        points=tuple(p for p in readings if start <= p.at < end),
        target_steps=_target_steps(targeted, events, start, end, seen_before),
        phases=phase_spans(episodes, start, end, now),
        rollup_hours=sum(1 for r in rollups if r.hour_start < end and r.hour_start + HOUR > start),
    )
