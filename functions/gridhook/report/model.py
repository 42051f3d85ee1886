"""What a curtailment report says, as plain data: no plotting, no templating here.

Three kinds of figure, and the report says which is which:

- **measured by DPS**: the calculated load (in each webhook and in each GetStatus sample)
  and ``compliant`` (DPS's verdict at the end of a ramp down);
- **requested**: targets, the requested reduction (the previous target less the target)
  and the requested energy (that reduction held while constrained): asked for, not metered;
- **timed by gridhook**: phase times and ramp durations, from webhook receipt times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from gridhook.episodes import EPISODE_STATUSES, Episode
from gridhook.events import rfc3339
from gridhook.sites import DEFAULT_SITE

if TYPE_CHECKING:
    from gridhook.report.delivery import DeliveryTotals, FeedDelivery
    from gridhook.report.settled import DeliveryOptions

__all__ = [
    "FIGURE_SOURCES",
    "DayCompliance",
    "DurationStats",
    "FeedReport",
    "FeedSummary",
    "FleetReport",
    "LoadPoint",
    "PhaseSpan",
    "Report",
    "Timeline",
]

#: Where each figure comes from; shown in every report (HTML legend, JSON ``definitions``).
FIGURE_SOURCES: dict[str, dict[str, str]] = {
    "measured": {
        "title": "Measured by DPS",
        "figures": "Calculated load, in each webhook and each GetStatus sample; whether the "
        "target was met, DPS's verdict at the end of each ramp down.",
    },
    "requested": {
        "title": "Requested",
        "figures": "Targets and previous targets; the reduction (the previous target less the "
        "target) and the energy (that reduction held while constrained). Asked for, not metered.",
    },
    "timed": {
        "title": "Timed by gridhook",
        "figures": "When each phase began and ended, and how long ramps took, from when each "
        "webhook was received.",
    },
    "settled": {
        "title": "Settled against a baseline",
        "figures": "Delivered (baseline less the interval load) and needed (baseline less the "
        "target), in MWh, per episode: the load the feed would have drawn, from its past "
        "days by the baseline method named, against the revenue meter's intervals or DPS's "
        "samples (the source named).",
    },
}


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Median and 95th percentile (linear interpolation) of some durations, in seconds."""

    count: int
    median_seconds: float | None
    p95_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median_seconds": self.median_seconds,
            "p95_seconds": self.p95_seconds,
        }


@dataclass(frozen=True, slots=True)
class FeedSummary:
    """One feed's figures over the report's range (or every feed's, for the overall row).

    Counts are of the episodes listed (any part in the range); totals count only the part
    of each inside the range; compliance and ramp times count where the verdict (the end
    of the ramp down) and the ramp's end fall. See ``summary.summarise``.
    """

    episodes: int
    by_status: dict[str, int]  # every status of EPISODE_STATUSES, zero included
    judged: int  # curtailments whose ramp down ended in the range, with DPS's verdict
    compliant: int  # of those, the ones DPS called compliant
    ramp_down: DurationStats  # ramps down that ended in the range
    ramp_up: DurationStats  # ramps up that ended in the range
    hours_constrained: float  # inside the range only
    requested_mwh: float  # inside the range only
    flagged: int  # episodes with late, reordered or repeated events
    increases: int = 0  # episodes that raised the target (not curtailments)
    not_judged: int = 0  # curtailments listed without DPS's verdict (their ramp down never ended)

    @property
    def compliance_rate(self) -> float | None:
        """compliant / judged; None when no ramp down ended in the range."""
        return self.compliant / self.judged if self.judged else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "by_status": dict(self.by_status),
            "judged": self.judged,
            "compliant": self.compliant,
            "compliance_rate": self.compliance_rate,
            "ramp_down": self.ramp_down.to_dict(),
            "ramp_up": self.ramp_up.to_dict(),
            "hours_constrained": self.hours_constrained,
            "requested_mwh": self.requested_mwh,
            "flagged": self.flagged,
            "increases": self.increases,
            "not_judged": self.not_judged,
        }


@dataclass(frozen=True, slots=True)
class LoadPoint:
    """One reading of a feed's load: from a webhook (``event``), a GetStatus ``sample``, or
    a ``rollup``: the mean of the samples of the 5 minutes from ``at`` (an hourly rollup's
    bucket, for hours rolled up; it carries no target)."""

    at: datetime
    source: str  # "event" | "sample" | "rollup"
    calculated_w: float | None  # measured by DPS
    target_w: float | None  # requested; None = the feed's default constraint
    event: str | None = None  # the event type, for event points
    correlation_id: str | None = None
    compliant: bool | None = None  # DPS's verdict, carried by events

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": rfc3339(self.at),
            "source": self.source,
            "calculated_w": self.calculated_w,
            "target_w": self.target_w,
            "event": self.event,
            "correlation_id": self.correlation_id,
            "compliant": self.compliant,
        }


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """A stretch of time a feed spent ramping down, constrained or ramping up."""

    phase: str  # ramping_down | constrained | ramping_up
    start: datetime
    end: datetime
    episode_id: str
    ongoing: bool = False  # the phase had not ended by the report's end
    stalled: bool = False  # a ramp past its deadline

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
            "episode_id": self.episode_id,
            "ongoing": self.ongoing,
            "stalled": self.stalled,
        }


@dataclass(frozen=True, slots=True)
class Timeline:
    """A feed's load over [start, end): readings, the target in force, phases."""

    start: datetime
    end: datetime
    points: tuple[LoadPoint, ...]  # in time order, within [start, end)
    # (time, target in watts from then on; None = default constraint), in time order
    target_steps: tuple[tuple[datetime, float | None], ...]
    phases: tuple[PhaseSpan, ...]
    rollup_hours: int = 0  # hours whose samples were read as an hourly rollup
    step_seconds: int = 300  # DPS's load drawn as means over this (300: each sample too)

    @property
    def step_label(self) -> str:
        """What each mean point stands for: "5-minute", "hourly", "3-hour"…"""
        minutes = self.step_seconds // 60
        if minutes == 60:
            return "hourly"
        return f"{minutes // 60}-hour" if minutes % 60 == 0 else f"{minutes}-minute"

    @property
    def empty(self) -> bool:
        return not self.points and not self.phases

    @property
    def has_default_target(self) -> bool:
        """Whether the feed was on its default constraint (no target) at some point."""
        return any(w is None for _, w in self.target_steps)

    @property
    def event_points(self) -> int:
        return sum(1 for p in self.points if p.source == "event")

    @property
    def sample_points(self) -> int:
        return sum(1 for p in self.points if p.source == "sample")

    @property
    def rollup_points(self) -> int:
        return sum(1 for p in self.points if p.source == "rollup")

    @property
    def load_source(self) -> dict[str, Any]:
        """Where DPS's load on the chart came from: raw samples, 5-minute means of hourly
        rollups (hours rolled up), or both (``drawn``: samples | rollups | rollups+samples
        | none)."""
        drawn = "+".join(
            name
            for name, count in (("rollups", self.rollup_points), ("samples", self.sample_points))
            if count
        )
        return {
            "drawn": drawn or "none",
            "rollup_hours": self.rollup_hours,
            "rollup_points": self.rollup_points,
            "sample_points": self.sample_points,
            "step_seconds": self.step_seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
            "points": [p.to_dict() for p in self.points],
            "target_steps": [{"at": rfc3339(at), "target_w": w} for at, w in self.target_steps],
            "phases": [p.to_dict() for p in self.phases],
            "load_source": self.load_source,
        }


@dataclass(frozen=True, slots=True)
class DayCompliance:
    """Ramp downs that ended on one day (the site's local day), and how many DPS called
    compliant."""

    day: date
    judged: int
    compliant: int

    @property
    def not_compliant(self) -> int:
        return self.judged - self.compliant

    @property
    def rate(self) -> float | None:
        return self.compliant / self.judged if self.judged else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "judged": self.judged,
            "compliant": self.compliant,
            "compliance_rate": self.rate,
        }


@dataclass(frozen=True, slots=True)
class FeedReport:
    feed_tag: str | None  # None: events that carried no feed tag
    summary: FeedSummary
    timeline: Timeline
    compliance_by_day: tuple[DayCompliance, ...]
    episodes: tuple[Episode, ...]  # oldest first
    site: str = DEFAULT_SITE
    # Each curtailment settled against a baseline; None: the report was not asked to settle.
    delivery: FeedDelivery | None = None

    @property
    def label(self) -> str:
        return self.feed_tag if self.feed_tag is not None else "(no feed tag)"

    def to_dict(self, since: datetime, until: datetime) -> dict[str, Any]:
        """As JSON data; each episode with its share of [since, until) (``in_range``) and,
        when settled, its delivered figures (``delivery``)."""
        episodes = [e.to_dict(since, until) for e in self.episodes]
        body = {
            "site": self.site,
            "feed_tag": self.feed_tag,
            "summary": self.summary.to_dict(),
            "compliance_by_day": [d.to_dict() for d in self.compliance_by_day],
            "timeline": self.timeline.to_dict(),
            "episodes": episodes,
        }
        if self.delivery is not None:
            body["delivery"] = self.delivery.to_dict()
            for episode, shown in zip(self.episodes, episodes, strict=True):
                shown["delivery"] = self.delivery.episode_dict(episode.episode_id)
        return body


@dataclass(frozen=True, slots=True)
class Report:
    """One site's curtailment over [since, until) on every feed (or one), as of
    ``generated_at``; its days are local days in ``zone``."""

    since: datetime
    until: datetime
    generated_at: datetime
    feed_filter: str | None
    ramp_deadline_seconds: float
    overall: FeedSummary
    feeds: tuple[FeedReport, ...]
    site: str = DEFAULT_SITE
    zone: tzinfo = UTC
    delivery: DeliveryOptions | None = None  # how its curtailments were settled, if they were

    @property
    def empty(self) -> bool:
        return all(f.timeline.empty and not f.episodes for f in self.feeds)

    @property
    def delivery_totals(self) -> DeliveryTotals | None:
        """Delivered and needed inside [since, until), every feed of the site together."""
        if self.delivery is None:
            return None
        return _delivery_totals(self.feeds, self.since, self.until)

    @property
    def episodes(self) -> tuple[Episode, ...]:
        return tuple(e for f in self.feeds for e in f.episodes)

    @property
    def timezone(self) -> str:
        return str(self.zone)

    def to_dict(self) -> dict[str, Any]:
        return FleetReport.of(self).to_dict()


@dataclass(frozen=True, slots=True)
class FleetReport:
    """Curtailment over [since, until) on the sites asked for: each site's report (its
    feeds, its local days), in the deployment's order, and every site's figures together.

    ``several``: the deployment has more than one site, so what is shown names each row's
    site; a deployment of one site reads as it did before sites.
    """

    since: datetime
    until: datetime
    generated_at: datetime
    feed_filter: str | None
    ramp_deadline_seconds: float
    sites: tuple[Report, ...]
    overall: FeedSummary  # every site's episodes together
    several: bool = False
    delivery: DeliveryOptions | None = None  # how curtailments were settled, if they were

    @classmethod
    def of(cls, report: Report, *, several: bool = False) -> FleetReport:
        """One site's report as a fleet report of that site alone."""
        return cls(
            since=report.since,
            until=report.until,
            generated_at=report.generated_at,
            feed_filter=report.feed_filter,
            ramp_deadline_seconds=report.ramp_deadline_seconds,
            sites=(report,),
            overall=report.overall,
            several=several,
            delivery=report.delivery,
        )

    @property
    def feeds(self) -> tuple[FeedReport, ...]:
        """Every feed, by site (in the deployment's order), then by feed tag."""
        return tuple(f for site in self.sites for f in site.feeds)

    @property
    def episodes(self) -> tuple[Episode, ...]:
        return tuple(e for site in self.sites for e in site.episodes)

    @property
    def empty(self) -> bool:
        return all(site.empty for site in self.sites)

    @property
    def delivery_totals(self) -> DeliveryTotals | None:
        """Delivered and needed inside [since, until), every site's feeds together."""
        if self.delivery is None:
            return None
        return _delivery_totals(self.feeds, self.since, self.until)

    def to_dict(self) -> dict[str, Any]:
        """As JSON data: ``feeds`` lists every site's feeds, each with its ``site``; ``sites``
        each site's time zone and figures; ``delivery`` the baseline method and source and
        the delivered and needed totals inside the range (when settled)."""
        body = self._to_dict()
        if self.delivery is not None:
            totals = self.delivery_totals
            body["delivery"] = {
                **self.delivery.to_dict(),
                "totals": None if totals is None else totals.to_dict(),
            }
            for shown, site in zip(body["sites"], self.sites, strict=True):
                site_totals = site.delivery_totals
                shown["delivery"] = None if site_totals is None else site_totals.to_dict()
        return body

    def _to_dict(self) -> dict[str, Any]:
        return {
            "since": rfc3339(self.since),
            "until": rfc3339(self.until),
            "generated_at": rfc3339(self.generated_at),
            "feed_filter": self.feed_filter,
            "ramp_deadline_seconds": self.ramp_deadline_seconds,
            "statuses": list(EPISODE_STATUSES),
            "definitions": FIGURE_SOURCES,
            "overall": self.overall.to_dict(),
            "sites": [
                {"site": s.site, "timezone": s.timezone, "overall": s.overall.to_dict()}
                for s in self.sites
            ],
            "feeds": [f.to_dict(self.since, self.until) for f in self.feeds],
        }


def _delivery_totals(
    feeds: tuple[FeedReport, ...], since: datetime, until: datetime
) -> DeliveryTotals:
    from gridhook.report.delivery import delivery_totals

    deliveries = [f.delivery for f in feeds if f.delivery is not None]
    return delivery_totals(deliveries, since, until)
