"""The order events happened in, whatever order they arrived in (pure: no I/O).

An event's place in time is its receipt time plus its phase: within one episode (one
correlation id on one feed), ``end_ramp_X`` follows ``start_ramp_X`` whatever order they
arrived in. So a reordered or late delivery cannot leave a feed in the wrong phase.
``ramp_instances`` and ``chain_times`` are that rule, the one implementation both the
curtailment episodes (grouping, contention) and the feed state (gridhook.state) use.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from gridhook.events import StoredEvent

__all__ = [
    "chain_times",
    "effective_times",
    "episode_key",
    "order_events",
    "ramp_direction",
    "ramp_instances",
]

_TICK = timedelta(microseconds=1)


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
