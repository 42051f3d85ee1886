"""Per-feed state: what the stored events say about each feed now (pure: no I/O).

A feed's state is its last event in the order they happened (an end follows its start
whatever order they arrived in: gridhook.episodes.ordering) and the curtailment episode
that event belongs to, judged by the episode derivation every episode list, report and
the control room use (gridhook.episodes). So ``gridhook state``, the control room's feed
cards and reconcile's drift and stalled-ramp checks say what the episodes say.

The phase, when it began, the correlation id and the loads are the last event's. The
verdicts are its episode's:

- ``stalled``: the episode is stalled (a ramp started more than the ramp deadline ago and
  neither its end nor anything after it came), judged at ``now``;
- ``compliant``: DPS's verdict on the episode's target (the ``compliant`` of its opening
  ramp's end; False when that ramp was interrupted short of it), None until judged. A
  feed back at the default still says whether its last target was met: the ramp-up
  events' own ``compliant`` says nothing about the target.

``gridhook.state.load`` reads what this needs from a store, O(feeds); only it imports
the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridhook.episodes import Episode, derive_episodes
from gridhook.episodes.ordering import effective_times
from gridhook.events import StoredEvent, rfc3339
from gridhook.sites import DEFAULT_SITE

__all__ = ["FeedState", "feed_state", "feed_states"]


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
    compliant: bool | None  # DPS's verdict on the episode's target; None: not judged (yet)
    last_event: str
    last_event_id: str
    # Added with the episode verdicts; the fields above keep their names and types.
    stalled: bool = False  # the episode is stalled (judged at the state's `now`)
    episode_id: str | None = None  # the episode of the last event (gridhook episodes)
    episode_status: str | None = None  # its status: complete, in_progress, stalled, partial
    last_received_at: datetime | None = None  # the newest receipt of any of the feed's events
    # Added with sites: the site of the feed's events; whether its episode is still open.
    site: str = DEFAULT_SITE
    episode_open: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed_tag": self.feed_tag,
            "phase": self.phase,
            "since": rfc3339(self.since),
            "correlation_id": self.correlation_id,
            "target_w": self.target_w,
            "prev_target_w": self.prev_target_w,
            "calculated_w": self.calculated_w,
            "compliant": self.compliant,
            "stalled": self.stalled,
            "episode_id": self.episode_id,
            "episode_status": self.episode_status,
            "last_event": self.last_event,
            "last_event_id": self.last_event_id,
            "last_received_at": rfc3339(self.last_received_at),
            "episode_open": self.episode_open,
        }


def feed_states(
    events: Iterable[StoredEvent], *, now: datetime, ramp_deadline: timedelta | float
) -> dict[str, FeedState]:
    """Each feed's state after ``events`` (any feeds, any order), by feed tag ("" for
    events without one). ``now`` and ``ramp_deadline`` (a timedelta or seconds) judge
    stalled ramps, as in ``derive_episodes``."""
    unique: dict[str, StoredEvent] = {}
    for e in sorted(events, key=lambda e: e.received_at, reverse=True):
        unique[e.event_id] = e  # the first receipt wins, as in a store and the episodes
    listed = list(unique.values())
    times = effective_times(listed)
    episode_of: dict[str, Episode] = {
        e.event_id: episode
        for episode in derive_episodes(listed, now=now, ramp_deadline=ramp_deadline)
        for e in (*episode.events, *episode.ignored_events)
    }
    by_feed: dict[str, list[StoredEvent]] = {}
    for e in listed:
        by_feed.setdefault(e.feed_tag or "", []).append(e)
    states: dict[str, FeedState] = {}
    for tag, members in sorted(by_feed.items()):  # by tag, whatever the input order
        # The last in the order they happened (as order_events sorts them).
        last = max(members, key=lambda e: (times[e.event_id], e.event_id))
        episode = episode_of.get(last.event_id)  # every event has one; None is defensive
        states[tag] = FeedState(
            feed_tag=tag,
            phase=last.phase,
            since=times[last.event_id],
            correlation_id=last.correlation_id,
            target_w=last.target_w,
            prev_target_w=last.prev_target_w,
            calculated_w=last.calculated_w,
            compliant=episode.compliant if episode is not None else None,
            last_event=last.event,
            last_event_id=last.event_id,
            stalled=episode is not None and episode.status == "stalled",
            episode_id=episode.episode_id if episode is not None else None,
            episode_status=episode.status if episode is not None else None,
            last_received_at=max(e.received_at for e in members),
            site=last.site,
            episode_open=episode is not None and episode.open,
        )
    return states


def feed_state(
    events: Iterable[StoredEvent], *, now: datetime, ramp_deadline: timedelta | float
) -> FeedState | None:
    """The state one feed is in after ``events`` (all of that feed); None without events."""
    states = feed_states(events, now=now, ramp_deadline=ramp_deadline)
    if len(states) > 1:
        raise ValueError(f"feed_state takes one feed's events, not {sorted(states)}'s")
    return next(iter(states.values()), None)
