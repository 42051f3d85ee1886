"""Grouping: the events of one feed sorted into episodes, and each episode's into ramps.

An episode is one correlation id on one feed; without a correlation id, a
``start_ramp_down`` opens one and an ``end_ramp_up`` closes it (per feed, in receipt
order). Within an episode, ``ordering.ramp_instances`` orders the ramps; each gets
its role: opening (to the target), resume (back to it) or closing (away from it).
Nothing here judges anything yet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridhook.display import format_target
from gridhook.episodes.ordering import episode_key, ramp_direction, ramp_instances
from gridhook.events import StoredEvent

__all__ = ["Group", "Ramp", "group_events", "same_watts", "target_watts"]


@dataclass(frozen=True, slots=True)
class Ramp:
    """One ramp of an episode as received: its first start and first end (either may be
    missing) and its role: opening (to the target), resume (back to the target after a
    nested target ended) or closing (away from the target)."""

    role: str
    direction: str
    start: StoredEvent | None
    end: StoredEvent | None

    @property
    def first(self) -> StoredEvent:
        return self.start if self.start is not None else self.end  # type: ignore[return-value]

    @property
    def target_w(self) -> float | None:
        return target_watts(self.first.target_w)

    @property
    def prev_w(self) -> float | None:
        return target_watts(self.first.prev_target_w)

    @property
    def events(self) -> list[StoredEvent]:
        return [e for e in (self.start, self.end) if e is not None]

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        elapsed = (self.end.received_at - self.start.received_at).total_seconds()
        return elapsed if elapsed >= 0 else None


@dataclass(frozen=True, slots=True)
class Group:
    """The events of one episode, sorted into ramps, before anything is judged."""

    episode_id: str
    feed_tag: str | None
    correlation_id: str | None
    ramps: tuple[Ramp, ...]  # in the order they happened; the first is the opening
    ignored: tuple[StoredEvent, ...]  # repeats, and ramps that fit no role
    flags: tuple[str, ...]
    events: tuple[StoredEvent, ...]  # the ramps' events, in order
    opened_at: datetime  # its first receipt
    last_at: datetime  # its last receipt, ignored events included

    @property
    def opening(self) -> Ramp:
        return self.ramps[0]

    @property
    def closing(self) -> Ramp | None:
        return next((r for r in self.ramps if r.role == "closing"), None)


def group_events(events: Iterable[StoredEvent]) -> list[Group]:
    unique: dict[str, StoredEvent] = {}
    for e in sorted(events, key=lambda e: e.received_at, reverse=True):
        unique[e.event_id] = e  # the first receipt wins, as in a store
    correlated: dict[tuple[str | None, str], list[StoredEvent]] = {}
    uncorrelated: dict[str | None, list[StoredEvent]] = {}
    for e in unique.values():
        key = episode_key(e)
        if key is None:
            uncorrelated.setdefault(e.feed_tag, []).append(e)
        else:
            correlated.setdefault(key, []).append(e)
    groups = [
        _group([feed, corr], feed, corr, members) for (feed, corr), members in correlated.items()
    ]
    for feed, members in uncorrelated.items():
        for sequence in _split_by_sequence(members):
            groups.append(_group([feed, None, sequence[0].event_id], feed, None, sequence))
    return groups


def _split_by_sequence(events: list[StoredEvent]) -> list[list[StoredEvent]]:
    """Events of one feed without a correlation id, cut into episodes by receipt order: a
    start_ramp_down opens one, an end_ramp_up closes it, anything else joins the open one
    (or opens a partial one when none is open)."""
    sequences: list[list[StoredEvent]] = []
    current: list[StoredEvent] | None = None
    for e in sorted(events, key=lambda e: (e.received_at, e.event_id)):
        if current is None or e.event == "start_ramp_down":
            current = [e]
            sequences.append(current)
        else:
            current.append(e)
        if e.event == "end_ramp_up":
            current = None
    return sequences


def _group(
    id_basis: list[Any], feed: str | None, corr: str | None, members: list[StoredEvent]
) -> Group:
    ramps: list[Ramp] = []
    ignored: list[StoredEvent] = []
    target: float | None = None
    has_closing = False
    for index, events in enumerate(ramp_instances(members)):
        start = next((e for e in events if e.event.startswith("start_")), None)
        end = next((e for e in events if e.event.startswith("end_")), None)
        ignored.extend(e for e in events if e is not start and e is not end)
        ramp = Ramp("opening", ramp_direction(events[0]), start, end)
        if index == 0:
            target = ramp.target_w
        elif same_watts(ramp.target_w, target) and not same_watts(ramp.prev_w, target):
            ramp = Ramp("resume", ramp.direction, start, end)
        elif (
            not has_closing
            and same_watts(ramp.prev_w, target)
            and not same_watts(ramp.target_w, target)
        ):
            ramp = Ramp("closing", ramp.direction, start, end)
            has_closing = True
        elif _continues(ramps[-1], ramp, target):
            # The ramp under way, restated (to the target from the target): its end is the
            # end of that ramp; its start is a repeat.
            ramps[-1] = Ramp(ramps[-1].role, ramps[-1].direction, ramps[-1].start, ramp.end)
            ignored.extend(e for e in ramp.events if e is not ramp.end)
            continue
        else:
            ignored.extend(ramp.events)
            continue
        ramps.append(ramp)
    kept = [e for r in ramps for e in r.events]
    flags = [_repeat_flag(e, kept) for e in sorted(ignored, key=lambda e: e.received_at)]
    digest = hashlib.sha256(json.dumps(id_basis).encode("utf-8")).hexdigest()[:20]
    return Group(
        episode_id=digest,
        feed_tag=feed,
        correlation_id=corr,
        ramps=tuple(ramps),
        ignored=tuple(ignored),
        flags=tuple(flags),
        events=tuple(kept),
        opened_at=min(e.received_at for e in kept),
        last_at=max(e.received_at for e in members),
    )


def _continues(under_way: Ramp, ramp: Ramp, target: float | None) -> bool:
    """Whether ``ramp`` restates ``under_way``, a ramp to the target not yet ended: same
    direction, to the target from the target. The simulator sends one when an override to
    the default ends before the load got there (the default is then still the target)."""
    return (
        under_way.role != "closing"
        and under_way.end is None
        and ramp.end is not None
        and ramp.direction == under_way.direction
        and same_watts(ramp.target_w, target)
        and same_watts(ramp.prev_w, target)
    )


def _repeat_flag(extra: StoredEvent, kept: list[StoredEvent]) -> str:
    first = next((e for e in kept if e.event == extra.event), None)
    if first is None:
        return (
            f"unexpected: a {extra.event} (event {extra.event_id[:12]}) to "
            f"{format_target(extra.target_w)} fits no ramp of this episode; ignored"
        )
    differs = sorted(
        k
        for k in set(first.payload) | set(extra.payload)
        if first.payload.get(k) != extra.payload.get(k)
    )
    return (
        f"repeated: a second {extra.event} (event {extra.event_id[:12]}) differs in "
        f"{', '.join(differs) or 'content'}; kept the first received"
    )


def same_watts(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1.0  # payloads carry MW to 6 places: 1 W


def target_watts(value: float | None) -> float | None:
    # DPS: "--value=0 with any unit also sets the default constraint" — not a target of 0 W.
    return None if value is None or value == 0 else value
