"""A feed's interval load over a range, read at the cost of its intervals, not its samples.

The loader settlement, baselines and their pages call (the settlement core is pure; this
is the one module that feeds it from a store):

- **samples**: rollups for the hours that have one (``read_rollups``: day rollups for
  whole days, hourly ones for the rest), raw
  samples only for the others — the open hour, or hours not rolled up yet — as
  ``sample_ranges_needed`` says (one query per run of such hours); joined by
  ``load_from_rollups``, which gives exactly what the raw samples would.
- **meter**: the current revision of each stored meter interval of the range (one
  listing), as ``load_from_meter`` reads it.
- ``source="auto"`` (the default): meter data where the feed has any in the range — the
  settlement source — with the samples' series as the shadow figure; samples otherwise.
  Every series says which it is (``LoadSeries.source``).

A 30-day range of one feed at 1-minute sampling is 30 day records, at most 48 hourly ones
at its edges and at most an hour of raw samples (60), instead of 43,200 samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gridhook.intervals.rollups import floor_to, hourly_rollup, read_rollups
from gridhook.intervals.samples import site_samples
from gridhook.settlement import (
    DEFAULT_MIN_COVERAGE,
    DEFAULT_SAMPLE_CADENCE_S,
    LoadSeries,
    MeterInterval,
    load_from_meter,
    load_from_rollups,
    sample_ranges_needed,
)
from gridhook.settlement.errors import SettlementInputError
from gridhook.settlement.intervals import grid_bounds, resolution_seconds
from gridhook.settlement.samples import epoch
from gridhook.sites import DEFAULT_SITE
from gridhook.store import EventStore, MeterQuery, RollupQuery, current_meter

__all__ = ["LOAD_SOURCES", "FeedLoad", "load_feeds", "load_intervals"]

#: What ``source=`` takes: meter data where there is some, else samples; or one of them.
LOAD_SOURCES = ("auto", "meter", "samples")


@dataclass(frozen=True)
class FeedLoad:
    """One feed's interval load over a range, and what it was read from.

    ``series`` is the figure settlement uses (``series.source``: ``meter`` or
    ``samples``); ``shadow`` the samples' series beside meter data (None otherwise, or
    when not asked for).
    """

    series: LoadSeries
    shadow: LoadSeries | None
    rollup_hours: int  # hours read from rollups
    raw_samples: int  # raw samples read, for hours without a rollup
    meter_intervals: int  # current meter intervals read

    @property
    def source(self) -> str:
        return self.series.source

    def to_dict(self) -> dict[str, Any]:
        """What was read (not the series itself: ``series.intervals()`` has it)."""
        return {
            "site": self.series.site,
            "feed": self.series.feed,
            "source": self.source,
            "resolution": self.series.resolution,
            "shadow_source": None if self.shadow is None else self.shadow.source,
            "rollup_hours": self.rollup_hours,
            "raw_samples": self.raw_samples,
            "meter_intervals": self.meter_intervals,
        }


def _bounds(
    tz: ZoneInfo, since: datetime, until: datetime, resolution: str
) -> tuple[datetime, datetime]:
    """The range rounded out to the local interval grid, as UTC datetimes."""
    step = resolution_seconds(resolution)
    first, count = grid_bounds(tz, epoch(since), epoch(until), step)
    return (
        datetime.fromtimestamp(first, UTC),
        datetime.fromtimestamp(first + count * step, UTC),
    )


def _samples_series(
    store: EventStore,
    *,
    site: str,
    feed: str,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str,
    cadence_s: float,
    min_coverage: float,
) -> tuple[LoadSeries, int, int]:
    lo, hi = _bounds(tz, since, until, resolution)
    hour_lo = floor_to(lo, timedelta(hours=1))
    records = read_rollups(store, RollupQuery(since=hour_lo, until=hi, feed=feed, site=site))
    rollups = [hourly_rollup(r) for r in records]
    needed = sample_ranges_needed(
        rollups, tz=tz, since=since, until=until, resolution=resolution, cadence_s=cadence_s
    )
    samples = [s for a, b in needed for s in site_samples(store, site, since=a, until=b, feed=feed)]
    series = load_from_rollups(
        rollups,
        samples,
        site=site,
        feed=feed,
        tz=tz,
        since=since,
        until=until,
        resolution=resolution,
        cadence_s=cadence_s,
        min_coverage=min_coverage,
    )
    return series, len(rollups), len(samples)


def _meter_series(
    store: EventStore,
    *,
    site: str,
    feed: str,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str,
    min_coverage: float,
) -> tuple[LoadSeries, int]:
    lo, hi = _bounds(tz, since, until, resolution)
    query = MeterQuery(feed=feed, since=lo, until=hi, site=site)
    current = current_meter(store.meter_records(query))
    readings = [
        MeterInterval(r.interval_start, r.interval_end, r.mean_w)
        for r in current
        if r.mean_w is not None
    ]
    series = load_from_meter(
        readings,
        site=site,
        feed=feed,
        tz=tz,
        since=since,
        until=until,
        resolution=resolution,
        min_coverage=min_coverage,
    )
    return series, len(readings)


def load_intervals(
    store: EventStore,
    *,
    feed: str,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str = "1h",
    source: str = "auto",
    site: str = DEFAULT_SITE,
    shadow: bool = True,
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> FeedLoad:
    """One feed's interval load over ``[since, until)`` on the site's local grid.

    ``source``: ``auto`` (meter data where the feed has any in the range, else samples),
    ``meter`` or ``samples``. ``shadow``: with meter data, also the samples' series.
    Raises SettlementInputError (a bad source, resolution or time zone) and StoreError.
    """
    if source not in LOAD_SOURCES:
        names = ", ".join(LOAD_SOURCES)
        raise SettlementInputError(f"unknown source {source!r}; use one of {names}")
    common: dict[str, Any] = {
        "site": site,
        "feed": feed,
        "tz": tz,
        "since": since,
        "until": until,
        "resolution": resolution,
        "min_coverage": min_coverage,
    }
    meter: LoadSeries | None = None
    meter_count = 0
    if source in ("auto", "meter"):
        meter, meter_count = _meter_series(store, **common)
        if source == "auto" and meter_count == 0:
            meter = None
    samples: LoadSeries | None = None
    rollup_hours = raw = 0
    if meter is None or shadow:
        samples, rollup_hours, raw = _samples_series(store, cadence_s=cadence_s, **common)
    if meter is not None:
        return FeedLoad(meter, samples, rollup_hours, raw, meter_count)
    assert samples is not None
    return FeedLoad(samples, None, rollup_hours, raw, meter_count)


def load_feeds(
    store: EventStore,
    feeds: Iterable[str],
    *,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    resolution: str = "1h",
    source: str = "auto",
    site: str = DEFAULT_SITE,
    shadow: bool = True,
    cadence_s: float = DEFAULT_SAMPLE_CADENCE_S,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> dict[str, FeedLoad]:
    """:func:`load_intervals` of each feed of one site, by feed."""
    return {
        feed: load_intervals(
            store,
            feed=feed,
            tz=tz,
            since=since,
            until=until,
            resolution=resolution,
            source=source,
            site=site,
            shadow=shadow,
            cadence_s=cadence_s,
            min_coverage=min_coverage,
        )
        for feed in feeds
    }
