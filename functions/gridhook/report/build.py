"""Build a report: load the range's episodes and DPS's load readings, then aggregate them
per feed.

Cost follows the range asked for: one episode load, one rollup listing and a sample query
for the hours without a rollup (``gridhook.intervals.readings``), never the whole history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from gridhook.episodes import Episode
from gridhook.intervals.readings import load_readings
from gridhook.report.model import FeedReport, Report
from gridhook.report.summary import compliance_by_day, summarise
from gridhook.report.timeline import chart_step, feed_timeline
from gridhook.sites import DEFAULT_SITE
from gridhook.store import (
    EventQuery,
    EventStore,
    LoadSample,
    RollupRecord,
    SampleQuery,
    iter_samples,
)

if TYPE_CHECKING:
    from gridhook.report.delivery import FeedDelivery
    from gridhook.report.settled import DeliveryOptions

__all__ = ["assemble_report", "build_report", "feeds_seen_before", "load_samples"]


def _feed_key(tag: str | None) -> tuple[bool, str]:
    return (tag is None, tag or "")


def assemble_report(
    episodes: Sequence[Episode],
    samples: Sequence[LoadSample],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    feed_filter: str | None = None,
    ramp_deadline_seconds: float,
    include_feeds: Iterable[str | None] = (),
    feeds_seen_before: Collection[str | None] = (),
    rollups: Sequence[RollupRecord] = (),
    site: str = DEFAULT_SITE,
    zone: tzinfo = UTC,
    delivery: DeliveryOptions | None = None,
    deliveries: Mapping[str | None, FeedDelivery] | None = None,
    unsettled: str = "",
) -> Report:
    """``site``'s report for [since, until) from already-loaded episodes and samples of it
    (pure): raw ``samples``, and ``rollups`` for the hours rolled up (their 5-minute
    means); its days are local days in ``zone``. ``delivery``: how its curtailments were
    settled, ``deliveries`` each feed's settlements (a feed missing there had nothing to
    settle); ``unsettled``: why none could be settled at all.

    Feeds with an episode, a sample or a rollup in the range get a section;
    ``include_feeds`` (and the feed filter) get one even when nothing happened on them.
    ``feeds_seen_before``: the feeds with events before ``since`` (the others' charts draw
    no target before their first event).
    """
    # Charts stop at now: nothing after it has happened yet.
    end = min(until, now) if now > since else until
    in_range = [e for e in episodes if e.overlaps(since, until)]
    if feed_filter is not None:
        in_range = [e for e in in_range if e.feed_tag == feed_filter]
        samples = [s for s in samples if s.feed_tag == feed_filter]
        rollups = [r for r in rollups if r.feed == feed_filter]
    tags = {e.feed_tag for e in in_range} | {s.feed_tag for s in samples}
    tags |= {r.feed for r in rollups if r.sample_count}
    if feed_filter is not None:
        tags.add(feed_filter)
    else:
        tags.update(include_feeds)
    step = chart_step(since, end)
    feeds = []
    for tag in sorted(tags, key=_feed_key):
        feed_episodes = sorted(
            (e for e in in_range if e.feed_tag == tag), key=lambda e: (e.started_at, e.episode_id)
        )
        feed_samples = [s for s in samples if s.feed_tag == tag]
        feeds.append(
            FeedReport(
                feed_tag=tag,
                summary=summarise(feed_episodes, since, until),
                timeline=feed_timeline(
                    feed_episodes,
                    feed_samples,
                    start=since,
                    end=end,
                    now=now,
                    seen_before=tag in feeds_seen_before,
                    rollups=[r for r in rollups if r.feed == tag],
                    step=step,
                ),
                compliance_by_day=compliance_by_day(feed_episodes, since, until, zone),
                episodes=tuple(feed_episodes),
                site=site,
                delivery=_feed_delivery(tag, deliveries, site, since, until, delivery, unsettled),
            )
        )
    return Report(
        since=since,
        until=until,
        generated_at=now,
        feed_filter=feed_filter,
        ramp_deadline_seconds=ramp_deadline_seconds,
        overall=summarise(in_range, since, until),
        feeds=tuple(feeds),
        site=site,
        zone=zone,
        delivery=delivery,
    )


def _feed_delivery(
    tag: str | None,
    deliveries: Mapping[str | None, FeedDelivery] | None,
    site: str,
    since: datetime,
    until: datetime,
    options: DeliveryOptions | None,
    unsettled: str,
) -> FeedDelivery | None:
    if options is None:
        return None
    found = None if deliveries is None else deliveries.get(tag)
    if found is not None:
        return found
    from gridhook.report.settled import nothing_settled

    return nothing_settled(site, tag, since, until, options, unsettled)


def load_samples(
    store: EventStore,
    *,
    since: datetime,
    until: datetime,
    feed_tag: str | None = None,
    site: str = DEFAULT_SITE,
) -> list[LoadSample]:
    """One site's DPS GetStatus samples over [since, until), oldest first."""
    query = SampleQuery(site=site, feed_tag=feed_tag, since=since, until=until, limit=1000)
    return list(iter_samples(store, query))


def feeds_seen_before(
    store: EventStore,
    episodes: Iterable[Episode],
    moment: datetime,
    site: str = DEFAULT_SITE,
) -> set[str | None]:
    """The feeds of ``episodes`` (one site's) with an event stored before ``moment``: their
    own events when they have one, else one single-event query per feed (events without a
    feed tag cannot be asked for apart, so they count as unseen)."""
    seen: set[str | None] = set()
    unknown: set[str] = set()
    for episode in episodes:
        if episode.opened_at < moment:
            seen.add(episode.feed_tag)
        elif episode.feed_tag is not None:
            unknown.add(episode.feed_tag)
    for feed in sorted(unknown - seen):
        query = EventQuery(site=site, feed_tag=feed, until=moment, newest_first=True, limit=1)
        if store.events(query).events:
            seen.add(feed)
    return seen


def build_report(
    store: EventStore,
    *,
    since: datetime,
    until: datetime,
    feed_tag: str | None = None,
    now: datetime,
    ramp_deadline: timedelta,
    site: str = DEFAULT_SITE,
    zone: tzinfo = UTC,
    delivery: DeliveryOptions | None = None,
) -> Report:
    """One site's curtailment report for [since, until), on one feed or all, its days local
    days in ``zone``; with ``delivery``, each curtailment settled against that baseline
    method (each feed's interval load read once). Raises StoreError and, for a method or
    source it does not know, SettlementInputError."""
    from gridhook.episodes.load import load_episodes

    episodes = load_episodes(
        store,
        since=since,
        until=until,
        feed_tag=feed_tag,
        now=now,
        ramp_deadline=ramp_deadline,
        site=site,
    )
    readings = load_readings(store, since=since, until=until, feed=feed_tag, site=site)
    deliveries, unsettled = None, ""
    if delivery is not None:
        from gridhook.report.settled import settle_for_view
        from gridhook.settlement import SettlementInputError

        try:
            deliveries = settle_for_view(
                store,
                site=site,
                zone=zone,
                since=since,
                until=until,
                now=now,
                ramp_deadline=ramp_deadline,
                options=delivery,
                feeds=None if feed_tag is None else [feed_tag],
            )
        except SettlementInputError as exc:  # the report stands; its figures say why not
            unsettled = str(exc)
    return assemble_report(
        episodes,
        readings.samples,
        since=since,
        until=until,
        now=now,
        feed_filter=feed_tag,
        ramp_deadline_seconds=ramp_deadline.total_seconds(),
        feeds_seen_before=feeds_seen_before(store, episodes, since, site),
        rollups=readings.rollups,
        site=site,
        zone=zone,
        delivery=delivery,
        deliveries=deliveries,
        unsettled=unsettled,
    )
