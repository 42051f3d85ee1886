"""Feed contention: who had the feed when.

Several episodes of one feed can overlap: a newer target replaces an older one, and an
older one can take the feed back when the newer one ends. For each episode, the *stops*
are what took the feed from it (a ramp of a newer episode, or a take-back by an older
one), and the *walk* goes through its events among those stops, in receipt order, to
find how long it held its own target.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from gridhook.display import format_duration
from gridhook.episodes.grouping import Group, same_watts, target_watts
from gridhook.episodes.ordering import chain_times
from gridhook.events import StoredEvent

__all__ = ["Candidates", "Stop", "Walk", "walk_episode"]

_T = TypeVar("_T", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class Stop:
    """Another episode taking the feed: a ramp of a newer one, or an older one taking it back."""

    at: datetime  # when, as received (a newer episode: when it opened)
    event: StoredEvent  # the event that did it (a ramp: its first in the order they happened)
    group: Group


class Candidates:
    """Every ramp of a feed that could take the feed from one of its episodes, by receipt,
    and every take-back found so far, so each episode looks only at its own stretch of time
    (not at every other episode: a year of them must not cost a year squared)."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        # (at, group index, number, event): a ramp of a newer episode stops an older one.
        ramps: list[tuple[datetime, int, int, StoredEvent]] = []
        for index, group in enumerate(groups):
            for number, ramp in enumerate(group.ramps):
                began = group.opened_at if number == 0 else min(e.received_at for e in ramp.events)
                ramps.append((began, index, number, ramp.first))
        # Ties: an episode's own order, not its event ids, says which of its ramps was first.
        ramps.sort(key=lambda item: item[:3])
        self.ramps = ramps
        # (at, group index, number, stop): when an older episode took the feed back.
        self.take_backs: list[tuple[datetime, int, int, Stop]] = []

    def took_back(self, index: int, moments: list[tuple[datetime, StoredEvent]]) -> None:
        """Record when ``groups[index]`` took the feed back: that ends whichever newer
        episode held it then, even one whose own hand-back was never received."""
        for number, (at, event) in enumerate(moments):
            stop = Stop(at, event, self.groups[index])
            bisect.insort(self.take_backs, (at, index, number, stop), key=lambda item: item[:3])

    def stops(self, index: int) -> list[Stop]:
        """What takes the feed from ``groups[index]`` while its events arrive, and the first
        after its last: any ramp of an episode opened after it, and any take-back by an older
        one (recorded before: episodes are walked oldest first)."""
        this = self.groups[index]
        newer = (
            (at, other, number, Stop(at, event, self.groups[other]))
            for at, other, number, event in _from(self.ramps, this.opened_at)
            if other > index
        )
        older = (item for item in _from(self.take_backs, this.opened_at) if item[1] < index)
        stops: list[Stop] = []
        for at, _, _, stop in heapq.merge(newer, older, key=lambda item: item[:3]):
            stops.append(stop)
            if at > this.last_at:
                break  # nothing of this episode's comes after it
        return stops


def _from(items: list[_T], moment: datetime) -> Iterator[_T]:
    """The items (tuples sorted by their first, a time) from ``moment`` on, read lazily: a
    caller that stops early must not pay for the rest of the feed's history."""
    first = bisect.bisect_left(items, moment, key=lambda item: item[0])
    return (items[i] for i in range(first, len(items)))


def _takes_back(event: StoredEvent, own_target: float | None, from_target: float | None) -> bool:
    """Whether ``event`` moves the feed to its episode's own target from ``from_target``."""
    return same_watts(target_watts(event.target_w), own_target) and same_watts(
        target_watts(event.prev_target_w), from_target
    )


@dataclass
class Walk:
    """Who had the feed when: this episode's events and the stops, in receipt order."""

    active: bool = True
    stopper: Stop | None = None
    holding_since: datetime | None = None
    hold_from_start: bool = False  # counted from a ramp's start until its end is seen
    # When it held its own target, as [start, end) spans in the order they happened.
    held_spans: list[tuple[datetime, datetime]] = field(default_factory=list)
    held_known: bool = True
    late: list[str] = field(default_factory=list)
    # While stopped: the targets of every episode that had the feed since (one of them
    # may have handed it on without a received event: a redelivery-identical payload).
    holders: list[float | None] = field(default_factory=list)
    took_back: list[tuple[datetime, StoredEvent]] = field(default_factory=list)


def walk_episode(group: Group, stops: list[Stop]) -> Walk:
    """This episode's events in the order they happened (an end received before its start
    counts just after it, the rule of ordering.py) among the stops, by receipt."""
    target_w = group.opening.target_w
    role_of = {e.event_id: r for r in group.ramps for e in r.events}
    times = chain_times(group.events)
    timeline: list[tuple[datetime, int, StoredEvent, Stop | None]] = [
        (times.get(e.event_id, e.received_at), 0, e, None) for e in (*group.events, *group.ignored)
    ] + [(s.at, 1, s.event, s) for s in stops]
    timeline.sort(key=lambda item: (item[0], item[1], item[2].event_id))
    walk = Walk()
    for moment, _, event, stop in timeline:
        if stop is not None:
            if walk.active and moment >= group.opened_at:
                walk.active, walk.stopper = False, stop
                walk.holders = [stop.group.opening.target_w]
                _stop_holding(walk, moment)
            elif not walk.active:
                walk.holders.append(stop.group.opening.target_w)
            continue
        ramp = role_of.get(event.event_id)  # None: a repeat, already flagged
        if not walk.active:
            assert walk.stopper is not None
            if not any(_takes_back(event, target_w, held_by) for held_by in walk.holders):
                if ramp is not None:
                    walk.late.append(_late_flag(event, walk.stopper))
                    if ramp.role == "opening" and event is ramp.end:
                        walk.held_known = False  # reached before it was replaced: when?
                continue
            walk.active, walk.stopper = True, None  # back to this episode's target
            walk.took_back.append((moment, event))
            walk.holding_since, walk.hold_from_start = moment, event.event.startswith("start_")
        if ramp is None:
            continue
        if ramp.role == "closing":
            if walk.holding_since is not None and (
                ramp.start is None or moment != event.received_at
            ):
                walk.held_known = False  # the hold ended before this, but when is unknown
                walk.holding_since = None
            _stop_holding(walk, moment)
        elif event is ramp.end:
            if walk.holding_since is None or walk.hold_from_start:
                walk.holding_since, walk.hold_from_start = moment, False
        elif ramp.role == "resume" and walk.holding_since is None:
            walk.holding_since, walk.hold_from_start = moment, True
    return walk


def _stop_holding(walk: Walk, moment: datetime) -> None:
    if walk.holding_since is not None:
        if moment > walk.holding_since:
            walk.held_spans.append((walk.holding_since, moment))
        walk.holding_since = None


def _late_flag(event: StoredEvent, stopper: Stop) -> str:
    behind = (event.received_at - stopper.at).total_seconds()
    label = stopper.group.correlation_id or stopper.group.episode_id
    return f"late: {event.event} received {format_duration(behind)} after {label} took the feed"
