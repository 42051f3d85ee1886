"""What a timeline draws of DPS's load: 5-minute means from hourly rollups for the hours
that have one, raw samples for the others (the open hour, hours not rolled up yet).

A 30-day chart of one feed is then at most 8,640 points (30 x 24 x 12) whatever the
sampling cadence, read as 720 rollups, instead of 43,200 samples at one a minute. No numpy
here: a report reads records, the chart draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gridhook.intervals.rollups import floor_to, read_rollups
from gridhook.intervals.samples import site_samples
from gridhook.sites import DEFAULT_SITE
from gridhook.store import EventStore, LoadSample, RollupQuery, RollupRecord

__all__ = ["BUCKET", "Readings", "bucket_means", "load_readings"]

HOUR = timedelta(hours=1)
#: The span of each of a rollup's buckets.
BUCKET = timedelta(minutes=5)


@dataclass(frozen=True)
class Readings:
    """DPS's load over a range: ``rollups`` for the hours that have one, ``samples`` (raw)
    for the others."""

    rollups: tuple[RollupRecord, ...]
    samples: tuple[LoadSample, ...]

    def of_feed(self, feed: str | None) -> Readings:
        return Readings(
            tuple(r for r in self.rollups if r.feed == feed),
            tuple(s for s in self.samples if s.feed_tag == feed),
        )

    @property
    def feeds(self) -> set[str]:
        return {r.feed for r in self.rollups} | {s.feed_tag for s in self.samples}


def bucket_means(
    rollup: RollupRecord, since: datetime, until: datetime
) -> list[tuple[datetime, float, float | None, float | None]]:
    """(bucket start, mean, minimum, maximum) of each bucket of ``rollup`` that has samples
    and starts in ``[since, until)``."""
    out = []
    for k, mean in enumerate(rollup.means):
        at = rollup.hour_start + k * BUCKET
        if mean is not None and rollup.counts[k] > 0 and since <= at < until:
            out.append((at, mean, rollup.minima[k], rollup.maxima[k]))
    return out


def _uncovered_runs(
    first: datetime, until: datetime, covered: set[datetime]
) -> list[tuple[datetime, datetime]]:
    runs: list[tuple[datetime, datetime]] = []
    hour = first
    while hour < until:
        if hour not in covered:
            if runs and runs[-1][1] == hour:
                runs[-1] = (runs[-1][0], hour + HOUR)
            else:
                runs.append((hour, hour + HOUR))
        hour += HOUR
    return runs


def load_readings(
    store: EventStore,
    *,
    since: datetime,
    until: datetime,
    feed: str | None = None,
    site: str = DEFAULT_SITE,
) -> Readings:
    """One site's readings over ``[since, until)``, of one feed or all: its rollups
    (``read_rollups``), then one sample query per run of hours without a rollup (of that
    feed; of any feed when reading all: a sampling run rolls up an hour's feeds
    together). Raises StoreError."""
    first = floor_to(since, HOUR)
    rollups = read_rollups(store, RollupQuery(since=first, until=until, feed=feed, site=site))
    covered = {r.hour_start for r in rollups}
    samples: list[LoadSample] = []
    for start, end in _uncovered_runs(first, until, covered):
        samples += site_samples(
            store, site, since=max(start, since), until=min(end, until), feed=feed
        )
    return Readings(tuple(rollups), tuple(samples))
