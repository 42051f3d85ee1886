"""The report's and the control rooms' delivered figures, read through the one settlement
glue (``gridhook.intervals.settle.settle_range``): each site's episodes settled against the
baseline method asked for, each feed's interval load read once (not once per episode).

This module only turns a :class:`~gridhook.intervals.settle.SettlementRun` into what the
pages show (``gridhook.report.delivery``); it settles nothing itself.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
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
    "QuarterHourCache",
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


class QuarterHourCache:
    """The control rooms' settlements, each kept until the 15-minute interval it was
    settled in ends (at most ``size`` of them, the least recently used dropped first).

    A control room refreshes every 30 seconds, and settling reads 45 days of a feed's
    load; what it shows changes only when a 15-minute interval completes (its figures are
    per complete interval: the clock's quarter hour is in the key) or a feed's episode or
    phase changes (the caller puts them in the key). So one refresh in 30 settles; the
    others reuse it. Two requests settling the same key at once both settle (no lock is
    held while reading the store); either result is right.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: datetime, settle: Callable[[], Any]) -> Any:
        """The value kept for ``key`` in ``now``'s quarter hour, or ``settle()`` kept."""
        full = (key, math.floor(now.timestamp() / CONTROL_ROOM_INTERVAL_S))
        with self._lock:
            if full in self._items:
                self._items.move_to_end(full)
                return self._items[full]
        value = settle()
        with self._lock:
            self._items[full] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


#: The control rooms' interval, in seconds (``CONTROL_ROOM_RESOLUTION``).
CONTROL_ROOM_INTERVAL_S = 900


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
    cache: QuarterHourCache | None = None,
    cache_key: Hashable = (),
) -> dict[str | None, FeedDelivery]:
    """The delivered figures of one site's feeds (``feeds``; None: every feed with an
    episode) over ``[since, until)``, by feed. Raises StoreError, and SettlementInputError
    for what cannot be settled at all (an unknown method or source, a time zone that
    cannot carry the interval grid). With ``cache`` (the control rooms'), a result of the
    same quarter hour and the same ``cache_key`` (what the page's feeds are doing) is
    reused."""
    from gridhook.intervals.settle import settle_range

    def settle() -> dict[str | None, FeedDelivery]:
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

    if cache is None:
        return settle()
    key = (site, str(zone), None if feeds is None else tuple(feeds), options, cache_key)
    found: dict[str | None, FeedDelivery] = cache.get(key, now, settle)
    return found
