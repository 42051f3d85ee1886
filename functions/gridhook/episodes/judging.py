"""Judging: how each ramp of an episode went, its status, and the figures it reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from gridhook.display import format_duration, format_load, format_target
from gridhook.episodes.contention import Stop, Walk
from gridhook.episodes.grouping import Group, Ramp
from gridhook.episodes.model import Episode
from gridhook.episodes.spans import duration
from gridhook.events import StoredEvent

__all__ = ["judge"]


def judge(
    group: Group, stops: list[Stop], walk: Walk, now: datetime, deadline: timedelta
) -> Episode:
    opening, closing = group.opening, group.closing
    target_w = opening.target_w

    def follower(ramp: Ramp) -> StoredEvent | None:
        """What came after a ramp: its episode's next ramp (in the order they happened),
        or another episode's ramp received after it began, whichever was received first."""
        index = group.ramps.index(ramp)
        own = group.ramps[index + 1].first if index + 1 < len(group.ramps) else None
        began = ramp.first.received_at
        other = next((s for s in stops if s.at >= began), None)
        if own is None or (other is not None and other.at < own.received_at):
            return other.event if other is not None else None
        return own

    notes: list[str] = []
    judged = {
        id(r): _judge_ramp(r, _target_of(r, target_w), follower, now, deadline, notes)
        for r in group.ramps
    }
    opened = judged[id(opening)]
    closed_by_itself = closing is not None and closing.end is not None
    held_spans = list(walk.held_spans)
    if closed_by_itself:
        ended_at: datetime | None = closing.end.received_at  # type: ignore[union-attr]
    elif not walk.active and walk.stopper is not None:
        ended_at = walk.stopper.at
    else:
        ended_at = None
        if walk.holding_since is not None and now > walk.holding_since:
            held_spans.append((walk.holding_since, now))  # held up to now

    held: float | None
    if opened == "interrupted":
        held = duration(held_spans)  # 0 unless it took the feed back later
    elif opening.end is None or not walk.held_known:
        held, held_spans = None, []  # when it held is not known: no spans either
    else:
        held = duration(held_spans)

    prev_w = opening.prev_w
    reduction = prev_w - target_w if prev_w is not None and target_w is not None else None
    energy = reduction * held / 3600.0 if reduction is not None and held is not None else None
    if opening.end is not None:
        compliant = opening.end.compliant
    else:
        compliant = False if opened == "interrupted" else None

    missing = tuple(
        f"{edge}_ramp_{r.direction}"
        for r in (opening, closing)
        if r is not None
        for edge in ("start", "end")
        if judged[id(r)] == f"missing_{edge}"
    )
    if "stalled" in judged.values():
        status = "stalled"
    elif missing:
        status = "partial"
    elif ended_at is None:
        status = "in_progress"
    else:
        status = "complete"

    by_direction: dict[str, Ramp] = {}
    for r in (opening, closing):
        if r is not None:
            by_direction.setdefault(r.direction, r)
    if closing is not None and closing.direction == opening.direction:
        notes.append(
            f"closing: a second ramp {closing.direction} to {format_target(closing.target_w)} "
            "closed it (its times are in the events, not the ramp fields)"
        )
    down, up = by_direction.get("down"), by_direction.get("up")
    load_w: dict[str, float | None] = {}
    for r in (opening, closing, *group.ramps):
        for e in r.events if r is not None else ():
            load_w.setdefault(e.event, e.calculated_w)
    source = opening.first
    stopper = walk.stopper if not closed_by_itself and ended_at is not None else None
    return Episode(
        episode_id=group.episode_id,
        feed_tag=group.feed_tag,
        correlation_id=group.correlation_id,
        status=status,
        kind="curtailment" if opening.direction == "down" else "increase",
        open=ended_at is None,
        target_load=source.payload.get("target_load"),
        target_w=target_w,
        prev_target_load=source.payload.get("prev_target_load"),
        prev_target_w=prev_w,
        interval_start=source.start_time,
        interval_end=source.end_time,
        ramp_down_started_at=_received(down.start if down else None),
        ramp_down_ended_at=_received(down.end if down else None),
        ramp_down_seconds=down.seconds if down else None,
        constrained_seconds=held,
        ramp_up_started_at=_received(up.start if up else None),
        ramp_up_ended_at=_received(up.end if up else None),
        ramp_up_seconds=up.seconds if up else None,
        compliant=compliant,
        requested_reduction_w=reduction,
        requested_energy_wh=energy,
        load_w=load_w,
        events=group.events,
        missing=missing,
        flags=(*_reordered_flags(group.events), *group.flags, *walk.late, *notes),
        superseded_by=stopper.group.episode_id if stopper is not None else None,
        ended_at=ended_at,
        ignored_events=group.ignored,
        held_spans=tuple(held_spans),
        as_of=now,
    )


def _target_of(ramp: Ramp, episode_target: float | None) -> float | None:
    return episode_target if ramp.role != "closing" else ramp.target_w


def _judge_ramp(
    ramp: Ramp,
    target_w: float | None,
    follower: Callable[[Ramp], StoredEvent | None],
    now: datetime,
    deadline: timedelta,
    notes: list[str],
) -> str:
    """How one ramp went: done, missing_start, missing_end, running, stalled or
    interrupted (the next ramp began before this one reached its target)."""
    start, end, direction = ramp.start, ramp.end, ramp.direction
    if start is None:
        return "missing_start" if ramp.role != "resume" else "done"
    if end is not None:
        return "done"
    after = follower(ramp)
    if after is None:
        waited = now - start.received_at
        if waited > deadline:
            notes.append(
                f"stalled: start_ramp_{direction} received {format_duration(_secs(waited))} "
                f"ago and no end_ramp_{direction} within the "
                f"{format_duration(_secs(deadline))} ramp deadline"
            )
            return "stalled"
        return "running"
    if _stopped_short(direction, target_w, after):
        notes.append(
            f"interrupted: the ramp {direction} stopped at {format_load(after.calculated_w)}, "
            f"short of its {format_target(target_w)} target, when {after.event} followed"
        )
        return "interrupted"
    return "missing_end" if ramp.role != "resume" else "done"


def _stopped_short(direction: str, target_w: float | None, follower: StoredEvent) -> bool:
    """Whether the next ramp began before this one reached its target: then its end never
    happened (it is not missing). Judged by the load DPS calculated at that next start."""
    load = follower.calculated_w
    if target_w is None or load is None or not follower.event.startswith("start_"):
        return False
    tolerance = max(1.0, abs(target_w) * 1e-3)  # payloads round loads to 1 W (1e-6 MW)
    return load > target_w + tolerance if direction == "down" else load < target_w - tolerance


def _reordered_flags(events: tuple[StoredEvent, ...]) -> list[str]:
    flags: list[str] = []
    for i, earlier in enumerate(events):
        for later in events[i + 1 :]:
            if later.received_at < earlier.received_at:
                ahead = _secs(earlier.received_at - later.received_at)
                flags.append(
                    f"reordered: {later.event} received {format_duration(ahead)} "
                    f"before {earlier.event}"
                )
    return flags


def _received(event: StoredEvent | None) -> datetime | None:
    return None if event is None else event.received_at


def _secs(delta: timedelta) -> float:
    return delta.total_seconds()
