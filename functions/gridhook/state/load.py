"""Loading feed states from a store: O(feeds), whatever the history's size."""

from __future__ import annotations

from datetime import datetime, timedelta

from gridhook.events import PHASE_OF_EVENT, StoredEvent
from gridhook.sites import DEFAULT_SITE
from gridhook.state import FeedState, feed_states
from gridhook.store import EventQuery, EventStore, iter_events

__all__ = ["RECENT_EVENTS", "current_feed_states"]

#: How many of a feed's newest events the state reads first, in one page: its latest
#: episode (four events) and what came before it (a longer one is completed by correlation
#: id). Each event read is derived into episodes: a bigger page costs time, not accuracy.
RECENT_EVENTS = 8

_PAGE = 1000


def current_feed_states(
    store: EventStore,
    *,
    now: datetime,
    ramp_deadline: timedelta | float,
    site: str = DEFAULT_SITE,
) -> dict[str, FeedState]:
    """Every feed's state now (``gridhook.state``) on one site, judged at ``now``; raises
    StoreError.

    Cost: one latest-event-per-feed lookup, then per feed one page of its newest events;
    only when that page holds part of its latest episode (a curtailment going on, or one
    longer than the page), a query by that episode's correlation id, and a page from the
    episode's opening when that lies before the newest page (what took the feed since).
    Never the history.
    """
    found: dict[str, StoredEvent] = {}
    for tag, latest in store.latest_by_feed(site=site).items():
        page = store.events(
            EventQuery(site=site, feed_tag=tag, newest_first=True, limit=RECENT_EVENTS)
        )
        events = list(page.events) or [latest]
        if page.next_cursor is not None:  # older events exist: the page may cut the episode
            events += _rest_of_episode(store, site, tag, latest, events)
        found.update((e.event_id, e) for e in events)
    return feed_states(found.values(), now=now, ramp_deadline=ramp_deadline)


def _rest_of_episode(
    store: EventStore, site: str, tag: str, latest: StoredEvent, page: list[StoredEvent]
) -> list[StoredEvent]:
    """What ``page`` (newest first) lacks of ``latest``'s episode: its other events, by
    correlation id, and the feed's events from its opening when that lies before the page.
    Without a correlation id an episode is a run of events (docs/episodes.md): the page
    holds the latest one unless it is longer than the page."""
    corr = latest.correlation_id
    if not corr:
        return []
    seen = {e.event for e in page if e.correlation_id == corr}
    if seen == set(PHASE_OF_EVENT):
        return []  # all four are here: nothing of it lies before the page
    query = EventQuery(site=site, feed_tag=tag, correlation_id=corr, limit=_PAGE)
    episode = list(iter_events(store, query))
    opened = min((e.received_at for e in episode), default=latest.received_at)
    if opened < page[-1].received_at:
        after = EventQuery(site=site, feed_tag=tag, since=opened, limit=RECENT_EVENTS)
        episode += store.events(after).events
    return episode
