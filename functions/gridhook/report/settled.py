"""The report's and the control rooms' delivered figures, read through the one settlement
glue (``gridhook.intervals.settle.settle_range``): each site's episodes settled against the
baseline method asked for, each feed's interval load read once (not once per episode).

This module only turns a :class:`~gridhook.intervals.settle.SettlementRun` into what the
pages show (``gridhook.report.delivery``); it settles nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from gridhook.report.delivery import FeedDelivery
from gridhook.sites import Site

if TYPE_CHECKING:
    from gridhook.intervals.settle import SettlementRun
    from gridhook.store import EventStore

__all__ = [
    "CONTROL_ROOM_RESOLUTION",
    "REPORT_RESOLUTION",
    "DeliveryOptions",
    "deliveries_of",
    "nothing_settled",
    "settle_for_view",
]

#: A report settles on hourly intervals, as the ISOs count.
REPORT_RESOLUTION = "1h"
#: The control rooms settle on 15-minute intervals: "delivering X MW" then speaks of the
#: last quarter hour, not of an hour that may have ended 59 minutes ago.
CONTROL_ROOM_RESOLUTION = "15m"


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How a view settles: the baseline method, where the load comes from (``auto``:
    meter data where the feed has any, else DPS samples) and the interval."""

    method: str
    source: str = "auto"
    resolution: str = REPORT_RESOLUTION
    min_coverage: float | None = None  # None: GRIDHOOK_INTERVAL_MIN_COVERAGE

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "source": self.source, "resolution": self.resolution}


def site_of(name: str, zone: tzinfo) -> Site:
    """A site by its name and zone (what a report of one site knows of it)."""
    return Site(name=name, timezone=str(zone))


def deliveries_of(
    run: SettlementRun, site: str, options: DeliveryOptions
) -> dict[str | None, FeedDelivery]:
    """Each feed's :class:`FeedDelivery` of ``site`` from a settlement run, by feed tag:
    every feed settled and every feed with an episode that could not be (listed with the
    reason); :func:`nothing_settled` stands for the others."""
    found = run.sites.get(site)
    not_settled: dict[str | None, dict[str, str]] = {}
    if found is not None:
        for unsettled in found.unsettled:
            not_settled.setdefault(unsettled.feed, {})[unsettled.episode_id] = unsettled.reason
    feeds: list[str | None] = [*([] if found is None else found.feeds), *not_settled]
    deliveries: dict[str | None, FeedDelivery] = {}
    for feed in dict.fromkeys(feeds):
        settled = None if found is None or feed is None else found.feeds.get(feed)
        load = None if settled is None else settled.load
        deliveries[feed] = FeedDelivery(
            site=site,
            feed_tag=feed,
            since=run.since,
            until=run.until,
            method=run.method,
            resolution=run.resolution,
            source=None if load is None else load.source,
            requested_source=options.source,
            settlements=() if settled is None else settled.settlements,
            not_settled=not_settled.get(feed, {}),
        )
    return deliveries


def nothing_settled(
    site: str,
    feed: str | None,
    since: datetime,
    until: datetime,
    options: DeliveryOptions,
    unavailable: str = "",
) -> FeedDelivery:
    """A feed with no curtailment in the range (nothing to settle), or, with
    ``unavailable``, one whose curtailments could not be settled at all, and why."""
    return FeedDelivery(
        site=site,
        feed_tag=feed,
        since=since,
        until=until,
        method=options.method,
        resolution=options.resolution,
        source=None,
        requested_source=options.source,
        unavailable=unavailable,
    )


def settle_for_view(
    store: EventStore,
    *,
    site: str,
    zone: tzinfo,
    since: datetime,
    until: datetime,
    now: datetime,
    ramp_deadline: timedelta,
    options: DeliveryOptions,
    feeds: Sequence[str] | None = None,
) -> dict[str | None, FeedDelivery]:
    """The delivered figures of one site's feeds (``feeds``; None: every feed with an
    episode) over ``[since, until)``, by feed. Raises StoreError, and SettlementInputError
    for what cannot be settled at all (an unknown method or source, a time zone that
    cannot carry the interval grid): :func:`why_not` turns it into the page's words."""
    from gridhook.intervals.settle import settle_range

    run = settle_range(
        store,
        [site_of(site, zone)],
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
    return deliveries_of(run, site, options)
