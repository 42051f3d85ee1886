"""What the fleet's control-room page shows: every site's feeds now — phase, since when, load
against target, open and stalled episodes — and the fleet's totals (sites and feeds
constrained now, MW requested off now). Read-only, like every report.

Cost O(sites x feeds), never the history: per site, its feed states (one newest-event
lookup, one page of each feed's newest events), its samples of the last
``RECENT_SAMPLES`` and its subscription records; up to ``site_reads.READERS`` sites are read
at once. Charts and episode lists are each site's
own page (``gridhook.report.control_room``).

The one read beyond that: a feed constrained now says what it delivers against the baseline
("delivering X MW against the baseline (method)"), which takes its site's episodes of the
baselines' look-back and that feed's interval load (rollups). A site with no feed
constrained reads nothing more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gridhook.display import is_default_target
from gridhook.health import Registration, recent_samples, registration
from gridhook.sites import Site
from gridhook.state import FeedState
from gridhook.store import EventStore, LoadSample

if TYPE_CHECKING:
    from gridhook.report.delivery import FeedDelivery, LiveDelivery
    from gridhook.report.settled import DeliveryOptions, QuarterHourCache

__all__ = ["CONSTRAINED_PHASES", "FeedNow", "FleetRoom", "SiteNow", "build_fleet_room"]

#: The phases in which a feed is held below its load for the grid: a curtailment's target
#: is in force (its ramp down began and its ramp up has not).
CONSTRAINED_PHASES = ("ramping_down", "constrained")


@dataclass(frozen=True, slots=True)
class FeedNow:
    """One feed of one site now: its state (from its power events) and DPS's newest sample."""

    site: str
    feed_tag: str
    state: FeedState | None  # None: DPS samples it, no power event has come yet
    sample: LoadSample | None  # its newest of the last RECENT_SAMPLES
    # Constrained now: what it delivers against the baseline (None: not constrained, or
    # the page does not settle).
    delivery: LiveDelivery | None = None

    @property
    def label(self) -> str:
        return self.feed_tag or "(no feed tag)"

    @property
    def phase(self) -> str:
        return self.state.phase if self.state is not None else "steady"

    @property
    def constrained(self) -> bool:
        return self.phase in CONSTRAINED_PHASES

    @property
    def stalled(self) -> bool:
        return self.state is not None and self.state.stalled

    @property
    def episode_open(self) -> bool:
        return self.state is not None and self.state.episode_open

    @property
    def sampled(self) -> bool:
        """Whether the load shown is DPS's newest sample (newer than the last webhook)."""
        if self.sample is None:
            return False
        last = self.state.last_received_at if self.state is not None else None
        return last is None or self.sample.sampled_at >= last

    @property
    def load_w(self) -> float | None:
        """The newest calculated load DPS reported: a sample, or the last webhook's."""
        if self.sampled and self.sample is not None:
            return self.sample.calculated_w
        return self.state.calculated_w if self.state is not None else None

    @property
    def load_at(self) -> datetime | None:
        if self.sampled and self.sample is not None:
            return self.sample.sampled_at
        return self.state.last_received_at if self.state is not None else None

    @property
    def target_w(self) -> float | None:
        """The target in force: the last power event's (what was requested); DPS's own
        view from a sample only for a feed without events."""
        if self.state is not None:
            return self.state.target_w
        return self.sample.target_w if self.sample is not None else None

    @property
    def over_target(self) -> bool:
        """Held at its target (or stalled on the way down to it) and drawing more than it,
        by more than 0.5 %; a feed still ramping down on time is not over its target yet."""
        load, target = self.load_w, self.target_w
        held = self.phase == "constrained" or (self.stalled and self.phase == "ramping_down")
        if not held or load is None or target is None or is_default_target(target):
            return False
        return load > target * 1.005

    @property
    def requested_off_w(self) -> float | None:
        """While constrained, the reduction requested: previous target less target; None
        when either is the default constraint (its MW are not in the events) or not held."""
        if not self.constrained or self.state is None:
            return None
        target, previous = self.state.target_w, self.state.prev_target_w
        if target is None or previous is None:
            return None
        if is_default_target(target) or is_default_target(previous):
            return None
        return previous - target


@dataclass(frozen=True, slots=True)
class SiteNow:
    site: Site
    feeds: tuple[FeedNow, ...]  # by feed tag
    registration: Registration

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def constrained(self) -> tuple[FeedNow, ...]:
        return tuple(f for f in self.feeds if f.constrained)

    @property
    def stalled(self) -> tuple[FeedNow, ...]:
        return tuple(f for f in self.feeds if f.stalled)

    @property
    def open_episodes(self) -> int:
        return sum(1 for f in self.feeds if f.episode_open)


@dataclass(frozen=True, slots=True)
class FleetRoom:
    now: datetime
    refresh_seconds: int
    ramp_deadline_seconds: float
    sites: tuple[SiteNow, ...]  # in the deployment's order

    @property
    def feeds(self) -> tuple[FeedNow, ...]:
        return tuple(f for s in self.sites for f in s.feeds)

    @property
    def sites_constrained(self) -> int:
        return sum(1 for s in self.sites if s.constrained)

    @property
    def feeds_constrained(self) -> int:
        return sum(1 for f in self.feeds if f.constrained)

    @property
    def requested_off_w(self) -> float:
        """MW requested off now: the reductions of every constrained feed that has one."""
        return sum(f.requested_off_w or 0.0 for f in self.feeds)

    @property
    def requested_off_unknown(self) -> int:
        """Constrained feeds whose reduction is not known (to or from a default target)."""
        return sum(1 for f in self.feeds if f.constrained and f.requested_off_w is None)

    @property
    def open_episodes(self) -> int:
        return sum(s.open_episodes for s in self.sites)

    @property
    def stalled(self) -> tuple[FeedNow, ...]:
        return tuple(f for s in self.sites for f in s.stalled)

    @property
    def registrations_failing(self) -> tuple[SiteNow, ...]:
        return tuple(s for s in self.sites if s.registration.state != "registered")


def _delivering(
    store: EventStore,
    sites: Sequence[SiteNow],
    *,
    now: datetime,
    ramp_deadline: timedelta,
    delivery: DeliveryOptions,
    cache: QuarterHourCache | None = None,
) -> dict[tuple[str, str], LiveDelivery]:
    """What each feed constrained now delivers against the baseline, by (site, feed): its
    open episode settled on 15-minute intervals, every such feed of the fleet in one
    settlement (each feed's intervals read once). Nothing is read when no feed is
    constrained. Called from the request's thread, never from the site readers' pool: the
    settlement reads in that pool itself."""
    held = [(site, f) for site in sites for f in site.feeds if f.constrained and f.state]
    if not held:
        return {}
    from gridhook.intervals.settle import settle_range
    from gridhook.report.settled import CONTROL_ROOM_RESOLUTION, deliveries_of, nothing_settled
    from gridhook.settlement import SettlementInputError

    options = dataclasses.replace(delivery, resolution=CONTROL_ROOM_RESOLUTION)
    # Any episode open now overlaps the last second.
    since, until = now - timedelta(seconds=1), now + timedelta(seconds=1)
    chosen = list({site.name: site.site for site, _ in held}.values())
    feeds = sorted({f.feed_tag for _, f in held})

    def settle() -> dict[str, dict[str | None, FeedDelivery]]:
        run = settle_range(
            store,
            chosen,
            since=since,
            until=until,
            now=now,
            feeds=feeds,
            method=options.method,
            source=options.source,
            resolution=options.resolution,
            ramp_deadline=ramp_deadline,
            min_coverage=options.min_coverage,
        )
        return {site.name: deliveries_of(run, site.name, options) for site in chosen}

    try:
        if cache is None:
            by_site = settle()
        else:
            doing = tuple(
                (site.name, f.feed_tag, f.state.episode_id or "", f.phase)
                for site, f in held
                if f.state is not None
            )
            by_site = cache.get(("fleet", doing, options), now, settle)
    except SettlementInputError as exc:  # the page stands; the feeds' rows say why not
        why = str(exc)
        by_site = {
            site.name: {
                f.feed_tag: nothing_settled(site.name, f.feed_tag, since, until, options, why)
            }
            for site, f in held
        }
    live: dict[tuple[str, str], LiveDelivery] = {}
    for site, feed in held:
        found = by_site.get(site.name, {}).get(feed.feed_tag)
        if found is not None and feed.state is not None:
            live[(site.name, feed.feed_tag)] = found.live(feed.state.episode_id)
    return live


def _site_now(store: EventStore, site: Site, *, now: datetime, ramp_deadline: timedelta) -> SiteNow:
    from gridhook.state.load import current_feed_states

    states = current_feed_states(store, now=now, ramp_deadline=ramp_deadline, site=site.name)
    newest: dict[str, LoadSample] = {}
    for sample in recent_samples(store, site.name, now):  # oldest first: the last one wins
        newest[sample.feed_tag] = sample
    tags = sorted(set(states) | set(newest))
    return SiteNow(
        site=site,
        feeds=tuple(FeedNow(site.name, tag, states.get(tag), newest.get(tag)) for tag in tags),
        registration=registration(store.subscriptions(site=site.name)),
    )


def build_fleet_room(
    store: EventStore,
    sites: Sequence[Site],
    *,
    now: datetime,
    ramp_deadline: timedelta,
    refresh_seconds: int = 30,
    delivery: DeliveryOptions | None = None,
    cache: QuarterHourCache | None = None,
) -> FleetRoom:
    """Every site of ``sites`` now, each read on its own (several at a time: on a networked
    store each read is a round trip); with ``delivery``, each constrained feed's delivery
    against that baseline (only a site with a feed constrained reads more: its look-back
    episodes and that feed's intervals; with ``cache``, once a quarter hour while its
    episode and phase stay the same). Raises StoreError."""
    from gridhook.site_reads import for_each

    def read(site: Site) -> SiteNow:
        return _site_now(store, site, now=now, ramp_deadline=ramp_deadline)

    read_sites = for_each(read, sites)  # up to READERS sites at a time
    if delivery is not None:
        live = _delivering(
            store, read_sites, now=now, ramp_deadline=ramp_deadline, delivery=delivery, cache=cache
        )
        read_sites = [
            dataclasses.replace(
                site,
                feeds=tuple(
                    dataclasses.replace(f, delivery=live.get((site.name, f.feed_tag)))
                    for f in site.feeds
                ),
            )
            for site in read_sites
        ]
    return FleetRoom(
        now=now,
        refresh_seconds=refresh_seconds,
        ramp_deadline_seconds=ramp_deadline.total_seconds(),
        sites=tuple(read_sites),
    )
