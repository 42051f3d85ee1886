"""Per-feed state, derived from stored events (never kept as a mutable document).

An event's place in time is its receipt time plus its phase: within one episode (one
correlation id on one feed), ``end_ramp_X`` follows ``start_ramp_X`` whatever order they
arrived in. So a reordered or late delivery cannot leave a feed in the wrong phase.
``ramp_instances`` and ``chain_times`` are that rule, the one implementation both the
feed state and the curtailment episodes (gridhook/episodes/) use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridhook.events import StoredEvent, rfc3339
from gridhook.store import EventQuery, EventStore, iter_events

__all__ = [
    "FeedState",
    "chain_times",
    "current_feed_states",
    "effective_times",
    "episode_key",
    "feed_state",
    "order_events",
    "ramp_direction",
    "ramp_instances",
]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What our events say about one feed now."""

    feed_tag: str
    phase: str  # steady | ramping_down | constrained | ramping_up
    since: datetime  # when the current phase began (receipt of its event)
    correlation_id: str | None
    target_w: float | None
    prev_target_w: float | None
    calculated_w: float | None
    compliant: bool | None
    last_event: str
    last_event_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed_tag": self.feed_tag,
            "phase": self.phase,
            "since": rfc3339(self.since),
            "correlation_id": self.correlation_id,
            "target_w": self.target_w,
            "prev_target_w": self.prev_target_w,
            "calculated_w": self.calculated_w,
            "compliant": self.compliant,
            "last_event": self.last_event,
            "last_event_id": self.last_event_id,
        }


def episode_key(event: StoredEvent) -> tuple[str | None, str] | None:
    """(feed tag, correlation id) of the episode an event belongs to; None without an id.

    An empty correlation id is no id: it cannot tell two curtailments apart.
    """
    if not event.correlation_id:
        return None
    return (event.feed_tag, event.correlation_id)


def ramp_direction(event: StoredEvent) -> str:
    """ "down" or "up": the direction of the ramp an event starts or ends."""
    return "down" if event.event.endswith("_down") else "up"


def _watts_key(watts: float | None) -> int | None:
    # To the watt (payloads carry MW to 6 places); 0 is DPS's other spelling of "the default".
    return None if watts is None or watts == 0 else round(watts)


def ramp_instances(events: Iterable[StoredEvent]) -> list[list[StoredEvent]]:
    """The ramps of one episode in the order they happened, each as its events.

    A ramp is the events with one direction, target and previous target (a start and its
    end; more if DPS repeated one). Ramps are ordered by DPS's own ``start_time`` (the
    ramp back to the default carries a later one than the ramp to the target), then by
    first receipt; within a ramp the start comes before the end, each by receipt (the
    first received first). So the order does not depend on the order of arrival.
    """
    ramps: dict[tuple[str, int | None, int | None], list[StoredEvent]] = {}
    for e in events:
        key = (ramp_direction(e), _watts_key(e.target_w), _watts_key(e.prev_target_w))
        ramps.setdefault(key, []).append(e)

    def when(members: list[StoredEvent]) -> tuple[datetime, datetime, str]:
        first = min(e.received_at for e in members)
        dps = min((e.start_time for e in members if e.start_time is not None), default=first)
        return (dps, first, min(e.event_id for e in members))

    ordered = sorted(ramps.values(), key=when)
    return [
        sorted(m, key=lambda e: (not e.event.startswith("start_"), e.received_at, e.event_id))
        for m in ordered
    ]


def effective_times(events: Iterable[StoredEvent]) -> dict[str, datetime]:
    """Receipt times, each event moved just after the one before it in its episode.

    Events without a correlation id keep their receipt time (nothing says which episode
    they belong to), and so do repeats (a ramp's second start or end).
    """
    listed = list(events)
    times = {e.event_id: e.received_at for e in listed}
    episodes: dict[tuple[str | None, str], list[StoredEvent]] = {}
    for e in listed:
        key = episode_key(e)
        if key is not None:
            episodes.setdefault(key, []).append(e)
    for members in episodes.values():
        firsts = [e for ramp in ramp_instances(members) for e in _first_of_each_type(ramp)]
        times.update(chain_times(firsts))
    return times


def chain_times(ordered: Iterable[StoredEvent]) -> dict[str, datetime]:
    """Receipt times of events in the order they happened, each moved just after the one
    before it when it was received earlier (an end received before its start)."""
    times: dict[str, datetime] = {}
    previous: datetime | None = None
    for e in ordered:
        at = e.received_at if previous is None or e.received_at > previous else previous + _TICK
        times[e.event_id] = previous = at
    return times


def _first_of_each_type(ramp: list[StoredEvent]) -> list[StoredEvent]:
    firsts: dict[str, StoredEvent] = {}
    for e in ramp:
        firsts.setdefault(e.event, e)
    return list(firsts.values())


def order_events(events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """Events in the order they happened (receipt time, corrected within episodes)."""
    listed = list(events)
    times = effective_times(listed)
    return sorted(listed, key=lambda e: (times[e.event_id], e.event_id))


def feed_state(events: Iterable[StoredEvent]) -> FeedState | None:
    """The state a feed is in after ``events`` (all of one feed); None without events."""
    listed = list(events)
    if not listed:
        return None
    times = effective_times(listed)
    # The last in the order they happened, as order_events sorts them.
    last = max(listed, key=lambda e: (times[e.event_id], e.event_id))
    return FeedState(
        feed_tag=last.feed_tag or "",
        phase=last.phase,
        since=times[last.event_id],
        correlation_id=last.correlation_id,
        target_w=last.target_w,
        prev_target_w=last.prev_target_w,
        calculated_w=last.calculated_w,
        compliant=last.compliant,
        last_event=last.event,
        last_event_id=last.event_id,
    )


def current_feed_states(store: EventStore) -> dict[str, FeedState]:
    """Every feed's current state: its latest event, corrected by its own episode.

    Cost: one latest-by-feed lookup plus one episode query per feed, not a full scan.
    """
    states: dict[str, FeedState] = {}
    for tag, latest in store.latest_by_feed().items():
        episode: list[StoredEvent] = [latest]
        if latest.correlation_id is not None:
            episode = list(
                iter_events(
                    store,
                    EventQuery(feed_tag=tag, correlation_id=latest.correlation_id, limit=500),
                )
            )
        state = feed_state(episode)
        if state is not None:
            states[tag] = state
    return states
