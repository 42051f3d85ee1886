"""Per-feed state, derived from stored events (never kept as a mutable document).

An event's place in time is its receipt time plus its phase: within one episode (one
correlation id on one feed), ``end_ramp_X`` follows ``start_ramp_X`` whatever order they
arrived in. So a reordered or late delivery cannot leave a feed in the wrong phase.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridhook.events import StoredEvent, rfc3339
from gridhook.store import EventQuery, EventStore, iter_events

__all__ = ["FeedState", "current_feed_states", "feed_state", "order_events"]

_START_OF = {"end_ramp_down": "start_ramp_down", "end_ramp_up": "start_ramp_up"}
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


def _effective_times(events: list[StoredEvent]) -> dict[str, datetime]:
    """Receipt times, with each end_* moved just after its episode's start_* if needed."""
    times = {e.event_id: e.received_at for e in events}
    starts: dict[tuple[str | None, str | None, str], datetime] = {}
    for e in events:
        if e.event in ("start_ramp_down", "start_ramp_up"):
            key = (e.feed_tag, e.correlation_id, e.event)
            starts[key] = max(starts.get(key, e.received_at), e.received_at)
    for e in events:
        start = _START_OF.get(e.event)
        if start is not None and e.correlation_id is not None:
            started = starts.get((e.feed_tag, e.correlation_id, start))
            if started is not None and started >= e.received_at:
                times[e.event_id] = started + _TICK
    return times


def order_events(events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """Events in the order they happened (receipt time, corrected within episodes)."""
    listed = list(events)
    times = _effective_times(listed)
    return sorted(listed, key=lambda e: (times[e.event_id], e.event_id))


def feed_state(events: Iterable[StoredEvent]) -> FeedState | None:
    """The state a feed is in after ``events`` (all of one feed); None without events."""
    ordered = order_events(events)
    if not ordered:
        return None
    times = _effective_times(ordered)
    last = ordered[-1]
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
