"""Aggregates over episodes: a feed's summary figures and its compliance per day."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo

from gridhook.episodes import EPISODE_STATUSES, Episode
from gridhook.report.model import DayCompliance, DurationStats, FeedSummary

__all__ = ["compliance_by_day", "duration_stats", "judged_at", "percentile", "summarise"]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile by linear interpolation between closest ranks (numpy's
    default), so one value is its own p95; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_stats(values: Iterable[float | None]) -> DurationStats:
    known = [v for v in values if v is not None]
    return DurationStats(len(known), percentile(known, 0.5), percentile(known, 0.95))


def summarise(episodes: Sequence[Episode], since: datetime, until: datetime) -> FeedSummary:
    """The figures of one range [since, until) over the episodes listed in it.

    Counts (episodes, statuses, flags) are of the episodes listed. Totals count only what
    lies inside the range: time constrained and energy are each episode's share of the
    range (``Episode.share``), so totals over adjacent ranges add up to the total over
    their union. Compliance counts a curtailment in the range its verdict came in
    (``judged_at``); ramp times count a ramp in the range it ended in. Compliance, time
    constrained and energy are over curtailments only (a load increase is not one).
    """
    by_status = dict.fromkeys(EPISODE_STATUSES, 0)
    for episode in episodes:
        by_status[episode.status] = by_status.get(episode.status, 0) + 1
    curtailments = [e for e in episodes if e.kind == "curtailment"]
    judged = [e for e in curtailments if e.compliant is not None and since <= judged_at(e) < until]
    shares = [e.share(since, until) for e in curtailments]

    def ended_inside(moment: datetime | None) -> bool:
        return moment is not None and since <= moment < until

    return FeedSummary(
        episodes=len(episodes),
        by_status=by_status,
        judged=len(judged),
        compliant=sum(1 for e in judged if e.compliant),
        ramp_down=duration_stats(
            e.ramp_down_seconds for e in episodes if ended_inside(e.ramp_down_ended_at)
        ),
        ramp_up=duration_stats(
            e.ramp_up_seconds for e in episodes if ended_inside(e.ramp_up_ended_at)
        ),
        hours_constrained=sum(s.constrained_seconds or 0.0 for s in shares) / 3600.0,
        requested_mwh=sum(s.requested_energy_wh or 0.0 for s in shares) / 1e6,
        flagged=sum(1 for e in episodes if e.flags),
        increases=len(episodes) - len(curtailments),
        not_judged=sum(1 for e in curtailments if e.compliant is None),
    )


def _local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def judged_at(episode: Episode) -> datetime:
    """When DPS's verdict on an episode was known: the end of its ramp down, else when a
    newer target cut the ramp short (the episode's end), else its start."""
    return episode.ramp_down_ended_at or episode.ended_at or episode.started_at


def compliance_by_day(
    episodes: Sequence[Episode], since: datetime, until: datetime, zone: tzinfo = UTC
) -> tuple[DayCompliance, ...]:
    """Every day of [since, until) as the site counts its days (local days in ``zone``:
    a day of a clock change has 23 or 25 hours), with the curtailments DPS judged that day
    (the same ones the summary counts as judged)."""
    judged: dict[date, list[bool]] = {}
    for episode in episodes:
        if episode.kind != "curtailment" or episode.compliant is None:
            continue
        moment = judged_at(episode)
        if since <= moment < until:
            judged.setdefault(_local_day(moment, zone), []).append(episode.compliant)
    first = _local_day(since, zone)
    last = _local_day(until - timedelta(microseconds=1), zone)
    days = []
    day = first
    while day <= last:
        verdicts = judged.get(day, [])
        days.append(DayCompliance(day, len(verdicts), sum(verdicts)))
        day += timedelta(days=1)
    return tuple(days)
