"""Settlement from the store: the episodes of a range settled against their baselines.

The glue between the store and the pure core (``gridhook.settlement``): the ``gridhook
settlement`` / ``baseline`` commands, power_report's ``/settlement`` and the report's
baseline overlay all call it, so every figure is read and settled one way.

- **Which episodes**: each site's episodes loaded once (``load_episodes``) with the
  report's listing rule — an episode is listed when any part of it falls in
  ``[since, until)`` — plus those of the baselines' look-back, whose target intervals
  make days ineligible.
- **Which load**: each feed's intervals read once, for the union of the
  :func:`~gridhook.settlement.data_range` of its listed episodes (not once per episode);
  ``source="auto"`` takes meter data where the feed has any, samples otherwise, and with
  meter data the samples' series is settled too as the shadow figure.
- **Totals** count only the intervals inside ``[since, until)`` (``range_totals``): per
  feed, per site and for the fleet, so totals of adjacent ranges add up.

An episode that cannot be settled (no feed tag, no target interval, a target above the
load) is listed apart with the reason, never as a zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridhook.episodes import Episode
from gridhook.episodes.load import load_episodes
from gridhook.events import rfc3339
from gridhook.intervals.load import LOAD_SOURCES, FeedLoad, load_intervals
from gridhook.settlement import (
    BaselineParams,
    LoadSeries,
    Settlement,
    SettlementInputError,
    SettlementTotals,
    data_range,
    range_totals,
    settle,
    settle_episodes,
)
from gridhook.sites import Site
from gridhook.store import EventStore

__all__ = [
    "BaselineRun",
    "FeedSettlement",
    "SettlementRun",
    "SiteSettlement",
    "Unsettled",
    "baseline_for",
    "default_method",
    "settle_range",
]

_DEFAULT_PARAMS = BaselineParams()
#: The settings this module falls back on when a caller passes none (the functions pass
#: their own Settings' values; a command reads only these).
_SETTINGS = (
    "GRIDHOOK_BASELINE_METHOD",
    "GRIDHOOK_INTERVAL_MIN_COVERAGE",
    "GRIDHOOK_RAMP_DEADLINE_SECONDS",
)


@dataclass(frozen=True, slots=True)
class Unsettled:
    """An episode listed in the range that has no settlement, and why."""

    site: str
    feed: str | None
    episode_id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed": self.feed,
            "episode_id": self.episode_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FeedSettlement:
    """One feed's episodes of the range, settled, and the load they were settled on.

    ``load`` is None when the feed has no episode to settle (nothing was read).
    ``shadow`` holds the same episodes settled on the samples beside meter data (empty
    without meter data), in the order of ``settlements``.
    """

    site: str
    feed: str
    settlements: tuple[Settlement, ...]
    episodes: tuple[Episode, ...]  # the episode of each settlement, in the same order
    load: FeedLoad | None
    totals: SettlementTotals
    shadow: tuple[Settlement, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "feed": self.feed,
            "load": None if self.load is None else self.load.to_dict(),
            "totals": self.totals.to_dict(),
            "settlements": [s.to_dict() for s in self.settlements],
            "shadow": [s.to_dict() for s in self.shadow],
        }


@dataclass(frozen=True)
class SiteSettlement:
    """One site's feeds (by feed tag, sorted), their totals together and what was not
    settled."""

    site: Site
    feeds: dict[str, FeedSettlement]
    totals: SettlementTotals
    unsettled: tuple[Unsettled, ...] = ()

    @property
    def settlements(self) -> list[Settlement]:
        return [s for f in self.feeds.values() for s in f.settlements]


@dataclass(frozen=True)
class SettlementRun:
    """A settlement over ``[since, until)``: by site (in the order asked), then feed."""

    since: datetime
    until: datetime
    generated_at: datetime
    method: str
    source: str  # what was asked: auto | meter | samples (each figure says what it used)
    resolution: str
    sites: dict[str, SiteSettlement]
    totals: SettlementTotals  # the fleet's: every site's settlements together

    @property
    def settlements(self) -> list[Settlement]:
        return [s for site in self.sites.values() for s in site.settlements]

    @property
    def feeds(self) -> list[FeedSettlement]:
        return [f for site in self.sites.values() for f in site.feeds.values()]

    @property
    def unsettled(self) -> list[Unsettled]:
        return [u for site in self.sites.values() for u in site.unsettled]

    def feed(self, site: str, feed: str) -> FeedSettlement | None:
        """One site's feed, or None when it had nothing in the range."""
        found = self.sites.get(site)
        return None if found is None else found.feeds.get(feed)

    def settlement_of(self, site: str, episode_id: str) -> Settlement | None:
        """The settlement of one episode of a site (what a report's row shows)."""
        found = self.sites.get(site)
        if found is None:
            return None
        return next((s for s in found.settlements if s.episode_id == episode_id), None)


@dataclass(frozen=True)
class BaselineRun:
    """One event's baseline on one feed (``gridhook baseline``): its settlement, the
    episode it matched (None: no episode has that target interval, so no target), the
    load read, and the shadow settlement on samples beside meter data."""

    settlement: Settlement
    episode: Episode | None
    load: FeedLoad
    shadow: Settlement | None = None


@dataclass
class _Defaults:
    method: str
    min_coverage: float
    ramp_deadline: timedelta


def _defaults(
    method: str | None, min_coverage: float | None, ramp_deadline: timedelta | None
) -> _Defaults:
    """What a caller did not give, from the environment's settings (bad settings raise
    ConfigError naming the variable)."""
    if method is not None and min_coverage is not None and ramp_deadline is not None:
        return _Defaults(method, min_coverage, ramp_deadline)
    from gridhook.settings import load_settings

    settings = load_settings({k: os.environ[k] for k in _SETTINGS if k in os.environ})
    return _Defaults(
        method or settings.baseline_method,
        settings.interval_min_coverage if min_coverage is None else min_coverage,
        timedelta(seconds=settings.ramp_deadline_seconds)
        if ramp_deadline is None
        else ramp_deadline,
    )


def default_method() -> str:
    """The default baseline method: ``GRIDHOOK_BASELINE_METHOD`` (``caiso-10-in-10``)."""
    return _defaults(None, 0.0, timedelta(0)).method


def _check(method: str, source: str) -> None:
    from gridhook.settlement import METHODS

    if method not in METHODS:
        raise SettlementInputError(
            f"unknown baseline method {method!r}; use one of {', '.join(METHODS)}"
        )
    if source not in LOAD_SOURCES:
        raise SettlementInputError(
            f"unknown source {source!r}; use one of {', '.join(LOAD_SOURCES)}"
        )


def _why_unsettled(episode: Episode) -> str | None:
    if episode.feed_tag is None:
        return "no feed tag: there is no feed load to settle it on"
    if episode.interval_start is None:
        return "no target interval: no event carried its start_time"
    if episode.kind != "curtailment":
        return "an increase (a target above the load), not a curtailment: nothing to deliver"
    return None


def _union(ranges: Iterable[tuple[datetime, datetime]]) -> tuple[datetime, datetime]:
    pairs = list(ranges)
    return min(a for a, _ in pairs), max(b for _, b in pairs)


def _episode_range(
    episode: Episode, method: str, now: datetime, params: BaselineParams
) -> tuple[datetime, datetime]:
    assert episode.interval_start is not None
    return data_range(
        method=method,
        event_start=episode.interval_start,
        event_end=episode.interval_end,
        now=now,
        ramp_down_started_at=episode.ramp_down_started_at,
        lookback_days=params.lookback_days,
    )


def _lookback(params: BaselineParams) -> timedelta:
    # data_range's look-back for the day-matching methods, and a day's margin.
    return timedelta(days=params.lookback_days + 3)


def _site_episodes(
    store: EventStore,
    site: Site,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    ramp_deadline: timedelta,
    feed: str | None,
    params: BaselineParams,
) -> tuple[list[Episode], list[Episode]]:
    """(listed, every episode read): the listed overlap [since, until); the others lie in
    the baselines' look-back. One load, widened once if a listed episode began long before
    ``since`` (its look-back reaches further)."""
    lo = since - _lookback(params)
    read = load_episodes(
        store,
        since=lo,
        until=until,
        feed_tag=feed,
        now=now,
        ramp_deadline=ramp_deadline,
        site=site.name,
    )
    listed = [e for e in read if e.overlaps(since, until)]
    starts = [e.interval_start for e in listed if e.interval_start is not None]
    earliest = min(starts, default=since) - _lookback(params)
    if earliest < lo:
        more = load_episodes(
            store,
            since=earliest,
            until=lo,
            feed_tag=feed,
            now=now,
            ramp_deadline=ramp_deadline,
            site=site.name,
        )
        known = {e.episode_id for e in read}
        read += [e for e in more if e.episode_id not in known]
    return listed, read


def _settle_feed(
    store: EventStore,
    site: Site,
    feed: str,
    listed: Sequence[Episode],
    others: Sequence[Episode],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    method: str,
    source: str,
    resolution: str,
    min_coverage: float,
    params: BaselineParams,
) -> FeedSettlement:
    load: FeedLoad | None = None
    settlements: list[Settlement] = []
    shadow: list[Settlement] = []
    if listed:
        lo, hi = _union(_episode_range(e, method, now, params) for e in listed)
        load = load_intervals(
            store,
            feed=feed,
            tz=site.zone,
            since=lo,
            until=hi,
            resolution=resolution,
            source=source,
            site=site.name,
            min_coverage=min_coverage,
        )
        settlements = settle_episodes(
            load.series, listed, now=now, method=method, other_episodes=others, params=params
        )
        if load.shadow is not None:
            shadow = settle_episodes(
                load.shadow, listed, now=now, method=method, other_episodes=others, params=params
            )
    return FeedSettlement(
        site=site.name,
        feed=feed,
        settlements=tuple(settlements),
        episodes=tuple(listed),
        load=load,
        totals=range_totals(settlements, since, until),
        shadow=tuple(shadow),
    )


def _feed_order(episode: Episode) -> tuple[datetime, str]:
    assert episode.interval_start is not None
    return episode.interval_start, episode.episode_id


def settle_range(
    store: EventStore,
    sites: Sequence[Site],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    feeds: Sequence[str] | None = None,
    method: str | None = None,
    source: str = "auto",
    resolution: str = "1h",
    params: BaselineParams = _DEFAULT_PARAMS,
    ramp_deadline: timedelta | None = None,
    min_coverage: float | None = None,
) -> SettlementRun:
    """Every episode of ``sites`` listed in ``[since, until)`` settled, with totals.

    ``feeds``: only these feed tags (each gets a section even without an episode); None:
    every feed with an episode listed. ``method`` (None: ``GRIDHOOK_BASELINE_METHOD``),
    ``source`` (``auto`` | ``meter`` | ``samples``) and ``resolution`` (``5m`` | ``15m`` |
    ``1h``) apply to every feed; ``ramp_deadline`` and ``min_coverage`` default to the
    settings too. Each site's episodes are loaded once; each feed's intervals once, for
    the union of its episodes' data ranges. Raises SettlementInputError (a bad method,
    source or resolution), StoreError and ValueError (``until`` not after ``since``).
    """
    if until <= since:
        raise ValueError("until must be after since")
    from gridhook.site_reads import for_each

    chosen = _defaults(method, min_coverage, ramp_deadline)
    _check(chosen.method, source)
    wanted = None if feeds is None else list(dict.fromkeys(feeds))
    only = wanted[0] if wanted is not None and len(wanted) == 1 else None

    def episodes_of(site: Site) -> tuple[list[Episode], list[Episode]]:
        return _site_episodes(
            store,
            site,
            since=since,
            until=until,
            now=now,
            ramp_deadline=chosen.ramp_deadline,
            feed=only,
            params=params,
        )

    # Two rounds of reads, each in parallel (round trips overlap; a flat list of jobs, so
    # no read waits on another for a thread): every site's episodes, then every feed's
    # intervals.
    site_episodes = for_each(episodes_of, list(sites))
    jobs: list[tuple[Site, str, list[Episode], list[Episode]]] = []
    unsettled: dict[str, list[Unsettled]] = {}
    for site, (listed, read) in zip(sites, site_episodes, strict=True):
        by_feed: dict[str, list[Episode]] = {f: [] for f in wanted or ()}
        unsettled[site.name] = []
        for episode in listed:
            if wanted is not None and episode.feed_tag not in wanted:
                continue
            why = _why_unsettled(episode)
            if why is not None:
                unsettled[site.name].append(
                    Unsettled(site.name, episode.feed_tag, episode.episode_id, why)
                )
                continue
            assert episode.feed_tag is not None
            by_feed.setdefault(episode.feed_tag, []).append(episode)
        for feed in sorted(by_feed):
            others = [e for e in read if e.feed_tag == feed and e.interval_start is not None]
            jobs.append((site, feed, sorted(by_feed[feed], key=_feed_order), others))

    def settle_job(job: tuple[Site, str, list[Episode], list[Episode]]) -> FeedSettlement:
        site, feed, listed, others = job
        return _settle_feed(
            store,
            site,
            feed,
            listed,
            others,
            since=since,
            until=until,
            now=now,
            method=chosen.method,
            source=source,
            resolution=resolution,
            min_coverage=chosen.min_coverage,
            params=params,
        )

    settled = for_each(settle_job, jobs)
    results: dict[str, SiteSettlement] = {}
    for site in sites:
        feed_results = {f.feed: f for f in settled if f.site == site.name}
        site_settlements = [s for f in feed_results.values() for s in f.settlements]
        results[site.name] = SiteSettlement(
            site=site,
            feeds=feed_results,
            totals=range_totals(site_settlements, since, until),
            unsettled=tuple(unsettled[site.name]),
        )
    every = [s for r in results.values() for s in r.settlements]
    return SettlementRun(
        since=since,
        until=until,
        generated_at=now,
        method=chosen.method,
        source=source,
        resolution=resolution,
        sites=results,
        totals=range_totals(every, since, until),
    )


def baseline_for(
    store: EventStore,
    site: Site,
    feed: str,
    *,
    event_start: datetime,
    event_end: datetime | None,
    now: datetime,
    method: str | None = None,
    source: str = "auto",
    resolution: str = "1h",
    target_w: float | None = None,
    params: BaselineParams = _DEFAULT_PARAMS,
    ramp_deadline: timedelta | None = None,
    min_coverage: float | None = None,
) -> BaselineRun:
    """One event's baseline and delivered figures on one feed (``gridhook baseline``).

    The feed's episodes of the look-back make days ineligible; an episode whose target
    interval is exactly ``[event_start, event_end)`` gives its target (unless
    ``target_w`` is given), its ramp start (for ``meter-before``) and its id. Raises
    SettlementInputError and StoreError.
    """
    chosen = _defaults(method, min_coverage, ramp_deadline)
    _check(chosen.method, source)
    if event_end is not None and event_end <= event_start:
        raise SettlementInputError(
            f"the event ends ({rfc3339(event_end)}) before it starts ({rfc3339(event_start)})"
        )
    end = event_end or max(now, event_start)
    read = load_episodes(
        store,
        since=event_start - _lookback(params),
        until=end if end > event_start else event_start + timedelta(seconds=1),
        feed_tag=feed,
        now=now,
        ramp_deadline=chosen.ramp_deadline,
        site=site.name,
    )
    others = [e for e in read if e.interval_start is not None]
    episode = next(
        (
            e
            for e in others
            if e.interval_start == event_start
            and e.interval_end == event_end
            and _why_unsettled(e) is None
        ),
        None,
    )
    ramp = None if episode is None else episode.ramp_down_started_at
    if target_w is None and episode is not None:
        target_w = episode.target_w
    lo, hi = data_range(
        method=chosen.method,
        event_start=event_start,
        event_end=event_end,
        now=now,
        ramp_down_started_at=ramp,
        lookback_days=params.lookback_days,
    )
    load = load_intervals(
        store,
        feed=feed,
        tz=site.zone,
        since=lo,
        until=hi,
        resolution=resolution,
        source=source,
        site=site.name,
        min_coverage=chosen.min_coverage,
    )
    windows = [(e.interval_start, e.interval_end) for e in others]

    def settled(series: LoadSeries) -> Settlement:
        return settle(
            series,
            event_start=event_start,
            event_end=event_end,
            now=now,
            method=chosen.method,
            target_w=target_w,
            ramp_down_started_at=ramp,
            other_events=[(a, b) for a, b in windows if a is not None],
            episode_id=None if episode is None else episode.episode_id,
            params=params,
        )

    return BaselineRun(
        settlement=settled(load.series),
        episode=episode,
        load=load,
        shadow=None if load.shadow is None else settled(load.shadow),
    )
