"""Loading episodes from a store: what one time range needs, at a cost that follows the
range asked for, never the whole history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from gridhook.episodes import EPISODE_STATUSES, Episode, derive_episodes
from gridhook.events import StoredEvent
from gridhook.sites import DEFAULT_SITE
from gridhook.store import EventQuery, EventStore, iter_events

__all__ = ["LOOK_AROUND_EVENTS", "load_episodes"]

#: How many events per feed the loader reads before ``since`` (and after ``until``) to
#: find episodes that cross the range's edges: one page, whatever the history's size.
LOOK_AROUND_EVENTS = 50

_PAGE = 1000
_BEGINNING = datetime.min.replace(tzinfo=UTC)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def load_episodes(
    store: EventStore,
    *,
    since: datetime,
    until: datetime,
    feed_tag: str | None = None,
    correlation_id: str | None = None,
    status: str | None = None,
    now: datetime,
    ramp_deadline: timedelta | float,
    site: str = DEFAULT_SITE,
) -> list[Episode]:
    """One site's episodes overlapping [since, until), oldest first, filtered as asked.

    The cost follows the range, not the history: the events received in the range (pages
    of 1000), one latest-event-per-feed lookup, one look-back page per feed before
    ``since``, then only what the episodes crossing the range's edges need: a look-ahead
    page after ``until`` for a feed still open there, a query by correlation id for an
    episode whose other events may lie outside what was read, and a page after an
    episode's opening when that lies before the look-back (to know what followed it).
    With a correlation id: its events (one episode per feed), then the same completion.
    """
    if status is not None and status not in EPISODE_STATUSES:
        raise ValueError(f"unknown status {status!r}: use one of {', '.join(EPISODE_STATUSES)}")
    if until <= since:
        raise ValueError("until must be after since")
    loader = _Loader(store, site, since, until, now, ramp_deadline)
    if correlation_id is not None:
        loader.read_correlation_id(feed_tag, correlation_id)
    else:
        loader.read_range(feed_tag)
    return [
        e
        for e in loader.complete()
        if e.overlaps(since, until)
        and (feed_tag is None or e.feed_tag == feed_tag)
        and (correlation_id is None or e.correlation_id == correlation_id)
        and (status is None or e.status == status)
    ]


class _Loader:
    """What one range of one site needs from a store, read a page or a query at a time."""

    def __init__(
        self,
        store: EventStore,
        site: str,
        since: datetime,
        until: datetime,
        now: datetime,
        ramp_deadline: timedelta | float,
    ) -> None:
        self.store = store
        self.site = site
        self.since, self.until, self.now, self.ramp_deadline = since, until, now, ramp_deadline
        self.found: dict[str, StoredEvent] = {}
        # Per feed: every event received from this time up to `until` has been read.
        self.read_from: dict[str, datetime] = {}
        # Feeds with events at or after `until` (None: not known, assume they may have).
        self.later_events: set[str] | None = None
        self.asked: set[tuple[str | None, str]] = set()  # (feed, correlation id) read whole
        self.followed: set[tuple[str, datetime]] = set()  # (feed, from) pages read

    def add(self, events: Iterable[StoredEvent]) -> None:
        for e in events:
            self.found[e.event_id] = e

    def derive(self) -> list[Episode]:
        return derive_episodes(self.found.values(), now=self.now, ramp_deadline=self.ramp_deadline)

    def read_range(self, feed_tag: str | None) -> None:
        query = EventQuery(
            site=self.site, feed_tag=feed_tag, since=self.since, until=self.until, limit=_PAGE
        )
        self.add(iter_events(self.store, query))
        latest = self.store.latest_by_feed(site=self.site)
        feeds = [f for f in latest if feed_tag is None or f == feed_tag]
        for feed in feeds:
            page = self.store.events(
                EventQuery(
                    site=self.site,
                    feed_tag=feed,
                    until=self.since,
                    newest_first=True,
                    limit=LOOK_AROUND_EVENTS,
                )
            )
            self.add(page.events)
            whole = page.next_cursor is None  # the look-back reached the feed's first event
            self.read_from[feed] = _BEGINNING if whole else page.events[-1].received_at
        self.later_events = {f for f in feeds if latest[f].received_at >= self.until}

    def read_correlation_id(self, feed_tag: str | None, correlation_id: str) -> None:
        query = EventQuery(
            site=self.site, feed_tag=feed_tag, correlation_id=correlation_id, limit=_PAGE
        )
        events = list(iter_events(self.store, query))
        self.add(events)
        self.asked.update((e.feed_tag, correlation_id) for e in events)

    def complete(self) -> list[Episode]:
        """Read what the episodes overlapping the range still need, then derive them.

        Pages that follow an episode come first (they often complete the others); a query
        by correlation id only when none is pending. Every read is made once, so this ends.
        """
        while True:
            episodes = self.derive()
            follow, ask = self._wanted(episodes)
            if follow:
                for feed, start in sorted(follow):
                    self.followed.add((feed, start))
                    self.add(
                        self.store.events(
                            EventQuery(
                                site=self.site,
                                feed_tag=feed,
                                since=start,
                                limit=LOOK_AROUND_EVENTS,
                            )
                        ).events
                    )
            elif ask:
                for tag, corr in sorted(ask, key=lambda k: (k[0] or "", k[1])):
                    self.asked.add((tag, corr))
                    query = EventQuery(
                        site=self.site, feed_tag=tag, correlation_id=corr, limit=_PAGE
                    )
                    # A feed of None asks every feed: keep the events without one.
                    self.add(e for e in iter_events(self.store, query) if e.feed_tag == tag)
            else:
                return episodes

    def _wanted(
        self, episodes: list[Episode]
    ) -> tuple[set[tuple[str, datetime]], set[tuple[str | None, str]]]:
        by_id = {e.episode_id: e for e in episodes}
        follow: set[tuple[str, datetime]] = set()
        ask: set[tuple[str | None, str]] = set()
        for episode in episodes:
            if not episode.overlaps(self.since, self.until):
                continue
            feed = episode.feed_tag
            if episode.correlation_id is not None and self._may_have_more(episode):
                ask.add((feed, episode.correlation_id))
            if feed is not None:
                if episode.opened_at < self.read_from.get(feed, _END_OF_TIME):
                    follow.add((feed, episode.opened_at))  # what came next is unread
                elif episode.open and self._later_events(feed):
                    follow.add((feed, self.until))  # is it replaced after the range?
            # A successor seen only in part may be an older episode's late event.
            successor = by_id.get(episode.superseded_by or "")
            if (
                successor is not None
                and successor.correlation_id is not None
                and not successor.overlaps(self.since, self.until)
            ):
                ask.add((successor.feed_tag, successor.correlation_id))
        return follow - self.followed, ask - self.asked

    def _later_events(self, feed: str) -> bool:
        return self.later_events is None or feed in self.later_events

    def _may_have_more(self, episode: Episode) -> bool:
        """Whether some of a correlated episode's events may lie outside what was read.

        Not when all four are here, nor for a curtailment still going on whose feed has
        nothing after the range. Otherwise its opening may lie before the range, an event
        it lacks may have arrived out of order across an edge, or it went on after it.
        """
        seen = {e.event for e in episode.events}
        if len(seen) == 4:
            return False
        going_on = (
            episode.open
            and episode.kind == "curtailment"
            and "start_ramp_down" in seen
            and episode.feed_tag is not None
            and not self._later_events(episode.feed_tag)
        )
        return not going_on
