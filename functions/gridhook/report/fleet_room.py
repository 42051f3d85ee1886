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
    from gridhook.report.delivery import LiveDelivery
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
    site: Site,
    states: dict[str, FeedState],
    *,
    now: datetime,
    ramp_deadline: timedelta,
    delivery: DeliveryOptions | None,
    cache: QuarterHourCache | None = None,
) -> dict[str, LiveDelivery]:
    """What each constrained feed of ``site`` delivers now against the baseline: its open
    episode settled on 15-minute intervals (the feed's intervals read once). Nothing is
    read for a site with no feed constrained."""
    constrained = sorted(tag for tag, s in states.items() if s.phase in CONSTRAINED_PHASES)
    if delivery is None or not constrained:
        return {}
    from gridhook.report.settled import (
        CONTROL_ROOM_RESOLUTION,
        nothing_settled,
        settle_for_view,
    )
    from gridhook.settlement import SettlementInputError

    options = dataclasses.replace(delivery, resolution=CONTROL_ROOM_RESOLUTION)
    # Any episode open now overlaps the last second.
    since, until = now - timedelta(seconds=1), now + timedelta(seconds=1)
    try:
        deliveries = settle_for_view(
            store,
            site=site.name,
            zone=site.zone,
            since=since,
            until=until,
            now=now,
            ramp_deadline=ramp_deadline,
            options=options,
            feeds=constrained,
            cache=cache,
            cache_key=tuple(
                (tag, states[tag].episode_id or "", states[tag].phase) for tag in constrained
            ),
        )
    except SettlementInputError as exc:  # the page stands; the feed's row says why not
        deliveries = {
            tag: nothing_settled(site.name, tag, since, until, options, str(exc))
            for tag in constrained
        }
    live = {}
    for tag in constrained:
        found = deliveries.get(tag)
        if found is not None:
            live[tag] = found.live(states[tag].episode_id)
    return live


def _site_now(
    store: EventStore,
    site: Site,
    *,
    now: datetime,
    ramp_deadline: timedelta,
    delivery: DeliveryOptions | None = None,
    cache: QuarterHourCache | None = None,
) -> SiteNow:
    from gridhook.state.load import current_feed_states

    states = current_feed_states(store, now=now, ramp_deadline=ramp_deadline, site=site.name)
    newest: dict[str, LoadSample] = {}
    for sample in recent_samples(store, site.name, now):  # oldest first: the last one wins
        newest[sample.feed_tag] = sample
    tags = sorted(set(states) | set(newest))
    live = _delivering(
        store, site, states, now=now, ramp_deadline=ramp_deadline, delivery=delivery, cache=cache
    )
    return SiteNow(
        site=site,
        feeds=tuple(
            FeedNow(site.name, tag, states.get(tag), newest.get(tag), live.get(tag)) for tag in tags
        ),
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
        return _site_now(
            store, site, now=now, ramp_deadline=ramp_deadline, delivery=delivery, cache=cache
        )

    return FleetRoom(
        now=now,
        refresh_seconds=refresh_seconds,
        ramp_deadline_seconds=ramp_deadline.total_seconds(),
        sites=tuple(for_each(read, sites)),  # up to READERS sites at a time
    )
