"""Raw DPS samples of one site, read for the hours no rollup covers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from gridhook.store import EventStore, LoadSample, SampleQuery, iter_samples

__all__ = ["site_samples"]

#: Samples a query asks for at a time.
PAGE = 1000


def site_samples(
    store: EventStore, site: str, *, since: datetime, until: datetime, feed: str | None = None
) -> Iterator[LoadSample]:
    """One site's samples of ``[since, until)``, oldest first, page by page."""
    return iter_samples(
        store, SampleQuery(feed_tag=feed, since=since, until=until, limit=PAGE, site=site)
    )
