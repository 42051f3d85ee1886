"""What one site's control-room page shows: each feed now, open episodes, the last 24 hours
as a timeline, and recent episodes, in the site's local time. Read-only, like every report.
(The fleet's page, every site at once, is ``gridhook.report.fleet_room``.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from gridhook.episodes import Episode
from gridhook.intervals.readings import load_readings
from gridhook.report.build import assemble_report, feeds_seen_before
from gridhook.report.model import LoadPoint, Report
from gridhook.sites import DEFAULT_SITE
from gridhook.state import FeedState
from gridhook.store import EventStore

if TYPE_CHECKING:
    from gridhook.report.delivery import LiveDelivery
    from gridhook.report.settled import DeliveryOptions, QuarterHourCache

__all__ = ["DAY_WINDOW", "RECENT_LIMIT", "RECENT_WINDOW", "ControlRoom", "build_control_room"]

DAY_WINDOW = timedelta(hours=24)
RECENT_WINDOW = timedelta(days=7)
RECENT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class ControlRoom:
    now: datetime
    refresh_seconds: int
    feeds: tuple[FeedState, ...]  # every feed that ever reported, by tag
    open_episodes: tuple[Episode, ...]  # newest first
    recent_episodes: tuple[Episode, ...]  # newest first, at most RECENT_LIMIT
    recent_total: int  # episodes in RECENT_WINDOW, before the limit
    day: Report  # the last DAY_WINDOW, one timeline per feed
    site: str = DEFAULT_SITE
    zone: tzinfo = UTC  # the site's: every time on its page is local, with its offset
    several: bool = False  # the deployment has several sites: the page names its site

    @property
    def recent_window(self) -> timedelta:
        return RECENT_WINDOW

    @property
    def ramp_deadline_seconds(self) -> float:
        return self.day.ramp_deadline_seconds

    def live(self, feed_tag: str) -> LiveDelivery | None:
        """For a feed constrained now (ramping down or held), what it delivers against the
        baseline at the latest interval, or why that is not known; None otherwise (or when
        the page does not settle)."""
        from gridhook.report.fleet_room import CONSTRAINED_PHASES

        state = next((s for s in self.feeds if s.feed_tag == feed_tag), None)
        if state is None or state.phase not in CONSTRAINED_PHASES:
            return None
        feed = next((f for f in self.day.feeds if f.feed_tag == feed_tag), None)
        if feed is None or feed.delivery is None:
            return None
        return feed.delivery.live(state.episode_id)

    def latest_sample(self, feed_tag: str) -> LoadPoint | None:
        """The feed's newest DPS sample of the last 24 hours, if any."""
        for feed in self.day.feeds:
            if feed.feed_tag == feed_tag:
                samples = [p for p in feed.timeline.points if p.source == "sample"]
                return samples[-1] if samples else None
        return None


def _doing(states: Mapping[str, FeedState]) -> tuple[tuple[str, str, str], ...]:
    """What each feed is doing: its episode and phase (a cached settlement is reused only
    while these stay the same)."""
    return tuple(sorted((tag, s.episode_id or "", s.phase) for tag, s in states.items()))


def build_control_room(
    store: EventStore,
    *,
    now: datetime,
    ramp_deadline: timedelta,
    refresh_seconds: int = 30,
    site: str = DEFAULT_SITE,
    zone: tzinfo = UTC,
    several: bool = False,
    delivery: DeliveryOptions | None = None,
    cache: QuarterHourCache | None = None,
) -> ControlRoom:
    """Everything ``site``'s page shows, from one state lookup, one 7-day episode load and
    the last 24 hours' readings (rollups, and raw samples for the hours without one);
    with ``delivery``, the last 24 hours' curtailments settled against that baseline on
    15-minute intervals (``CONTROL_ROOM_RESOLUTION``: each feed's intervals read once;
    with ``cache``, once a quarter hour while the feeds' episodes and phases stay the
    same). Raises StoreError."""
    from gridhook.episodes.load import load_episodes
    from gridhook.state.load import current_feed_states

    # `until` is exclusive: a second past now keeps an event received this instant.
    until = now + timedelta(seconds=1)
    # The cards' phase, stalled and target met: the same episode derivation, the same now.
    states = current_feed_states(store, now=now, ramp_deadline=ramp_deadline, site=site)
    episodes = load_episodes(
        store,
        since=now - RECENT_WINDOW,
        until=until,
        now=now,
        ramp_deadline=ramp_deadline,
        site=site,
    )
    day_start = now - DAY_WINDOW
    readings = load_readings(store, since=day_start, until=until, site=site)
    deliveries, unsettled = None, ""
    if delivery is not None:
        from gridhook.report.settled import CONTROL_ROOM_RESOLUTION, settle_for_view
        from gridhook.settlement import SettlementInputError

        delivery = dataclasses.replace(delivery, resolution=CONTROL_ROOM_RESOLUTION)
        try:
            deliveries = settle_for_view(
                store,
                site=site,
                zone=zone,
                since=day_start,
                until=until,
                now=now,
                ramp_deadline=ramp_deadline,
                options=delivery,
                cache=cache,
                cache_key=_doing(states),
            )
        except SettlementInputError as exc:  # the page stands; the figures say why not
            unsettled = str(exc)
    day = assemble_report(
        episodes,
        readings.samples,
        since=day_start,
        until=until,
        now=now,
        ramp_deadline_seconds=ramp_deadline.total_seconds(),
        include_feeds=states.keys(),
        feeds_seen_before=feeds_seen_before(store, episodes, day_start, site),
        rollups=readings.rollups,
        site=site,
        zone=zone,
        delivery=delivery,
        deliveries=deliveries,
        unsettled=unsettled,
    )
    newest_first = sorted(episodes, key=lambda e: (e.started_at, e.episode_id), reverse=True)
    return ControlRoom(
        now=now,
        refresh_seconds=refresh_seconds,
        feeds=tuple(states[tag] for tag in sorted(states)),
        open_episodes=tuple(e for e in newest_first if e.open),
        recent_episodes=tuple(newest_first[:RECENT_LIMIT]),
        recent_total=len(newest_first),
        day=day,
        site=site,
        zone=zone,
        several=several,
    )
