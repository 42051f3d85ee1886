"""The day `make demo` simulates: two sites in two time zones (`phx1` in Phoenix, `ams1` in
Amsterdam), two feeds each, eight curtailments at plausible local times, placed on the most
recent day that has ended at both sites, and the fast clock that plays it in about a minute.

Each site's times are its own local times: phx1 has a morning peak on both feeds
(overlapping), a short afternoon one and an evening peak on both feeds; ams1 a morning peak
and an evening peak. phx1's main feed's evening target is below what the datacenter can shed
to (its floor), so the simulator stops there and reports the target as not met: the one
curtailment that delivers less than it needed. The simulator drops the `end_ramp_up` of the
day's last curtailment (phx1's, the westernmost site), so gridhook sees that ramp stall.

Every target lies well below the load the feed draws at that hour by the simulator's load
model (weekend days included), so each curtailment really ramps down. Every curtailment
starts and ends on the hour, as demand response is dispatched: the settlement's hourly
intervals then hold curtailed load only, and a curtailment that meets its target delivers
nearly all it needed (all but its ramp down's minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from gridhook.clock import DevClock
from gridhook.events import rfc3339
from simulator.faults import DropRule

__all__ = [
    "FEEDS",
    "LOAD_SEED",
    "SCENARIO",
    "SITES",
    "Curtailment",
    "DayPlan",
    "DemoSite",
    "PlannedCurtailment",
    "plan_day",
]

DAY_START = time(5, 0)  # each site's day runs 05:00-22:00 local: the part with curtailments
DAY_END = time(22, 0)
# Every ramp of the day (15 simulated minutes at most) ends well inside the 30-minute stall
# deadline, even with a webhook's real milliseconds in flight at a fast clock.
RAMP_RATE_MW_PER_MINUTE = 0.4

# The simulator's load model: every site's and feed's load (and its meter history) from it.
LOAD_SEED = 7


@dataclass(frozen=True)
class DemoSite:
    """One site of the demo's fleet: a gridhook site and a DPS of the simulator's."""

    name: str
    timezone: str

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# Two zones eight hours apart (nine in summer; Phoenix keeps no daylight saving time), so
# the sites' days, local times and report days visibly differ.
SITES: tuple[DemoSite, ...] = (
    DemoSite("phx1", "America/Phoenix"),
    DemoSite("ams1", "Europe/Amsterdam"),
)

# The simulator's feeds file (both sites'). `min_achievable` is the floor a ramp down
# really reaches.
FEEDS: dict[str, Any] = {
    "feeds": [
        {
            "tag": "main_power_feed",
            "min_cap": 2,
            "max_cap": 12,
            "default_constraint": 10,
            "min_achievable": 4,
            "unit": "mw",
        },
        {
            "tag": "backup_power_feed",
            "min_cap": 1,
            "max_cap": 10,
            "default_constraint": 8,
            "min_achievable": 3,
            "unit": "mw",
        },
    ]
}
_FLOOR_MW = {feed["tag"]: float(feed["min_achievable"]) for feed in FEEDS["feeds"]}
_DEFAULT_MW = {feed["tag"]: float(feed["default_constraint"]) for feed in FEEDS["feeds"]}


@dataclass(frozen=True)
class Curtailment:
    """One load target of the scenario, in its site's local clock times of the demo day."""

    site: str
    label: str
    slug: str  # for the correlation id
    feed_tag: str
    start: time
    end: time
    target_mw: float


_MAIN, _BACKUP = "main_power_feed", "backup_power_feed"
SCENARIO: tuple[Curtailment, ...] = (
    Curtailment("phx1", "morning peak", "morning", _MAIN, time(7, 0), time(10, 0), 5.0),
    Curtailment("phx1", "morning peak", "morning", _BACKUP, time(8, 0), time(10, 0), 4.0),
    Curtailment("phx1", "afternoon spike", "afternoon", _MAIN, time(13, 0), time(14, 0), 6.0),
    Curtailment("phx1", "evening peak", "evening", _MAIN, time(17, 0), time(20, 0), 3.0),
    Curtailment("phx1", "evening peak", "evening", _BACKUP, time(18, 0), time(20, 0), 4.0),
    Curtailment("ams1", "morning peak", "morning", _MAIN, time(7, 0), time(9, 0), 5.5),
    Curtailment("ams1", "evening peak", "evening", _MAIN, time(17, 0), time(20, 0), 5.5),
    Curtailment("ams1", "evening peak", "evening", _BACKUP, time(18, 0), time(19, 0), 4.5),
)


@dataclass(frozen=True)
class PlannedCurtailment:
    """A curtailment placed on the demo day: what is scheduled and what should come of it."""

    site: str
    zone: ZoneInfo  # the site's: its local times
    label: str
    feed_tag: str
    start: datetime  # aware, UTC
    end: datetime
    target_mw: float
    default_mw: float
    floor_mw: float
    correlation_id: str
    webhook_dropped: bool  # the simulator drops its end_ramp_up

    @property
    def below_floor(self) -> bool:
        """The datacenter cannot shed this far: its end_ramp_down will say compliant: false."""
        return self.target_mw < self.floor_mw

    @property
    def expected_events(self) -> tuple[str, ...]:
        """The events gridhook should store for it."""
        events = ("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up")
        return events[:-1] if self.webhook_dropped else events

    @property
    def expectation(self) -> str:
        if self.webhook_dropped:
            return "stalled: its end_ramp_up webhook is dropped"
        if self.below_floor:
            return (
                f"target not met: the feed cannot shed below {self.floor_mw:g} MW, so it "
                "delivers less than needed"
            )
        return "target met"

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "label": self.label,
            "feed_tag": self.feed_tag,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
            "target_mw": self.target_mw,
            "default_mw": self.default_mw,
            "floor_mw": self.floor_mw,
            "correlation_id": self.correlation_id,
            "webhook_dropped": self.webhook_dropped,
            "expected_events": list(self.expected_events),
            "expectation": self.expectation,
        }


@dataclass(frozen=True)
class DayPlan:
    day: date  # the same date at every site
    start: datetime  # aware, UTC: when the simulated day begins (the first site's 05:00)
    end: datetime  # when it ends (the last site's 22:00, before the real now of the plan)
    clock: DevClock  # GRIDHOOK_DEV_CLOCK / gridhook-sim --clock for both processes
    curtailments: tuple[PlannedCurtailment, ...]
    sites: tuple[DemoSite, ...] = SITES

    def starting_at(self, real_start: datetime) -> DayPlan:
        """The same day on a clock that shows its start at `real_start` (after the
        preparations the day waits for, such as importing its history)."""
        clock = DevClock(self.clock.speed, self.clock.sim_origin, real_start)
        return replace(self, clock=clock)

    def of_site(self, site: str) -> tuple[PlannedCurtailment, ...]:
        return tuple(c for c in self.curtailments if c.site == site)

    @property
    def drop_rules(self) -> list[DropRule]:
        return [
            DropRule("end_ramp_up", c.correlation_id)
            for c in self.curtailments
            if c.webhook_dropped
        ]

    def real_seconds_until(self, moment: datetime) -> float:
        """Real seconds from the clock's real origin until it shows `moment`."""
        return (moment - self.clock.sim_origin).total_seconds() / self.clock.speed

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "sites": [{"name": s.name, "timezone": s.timezone} for s in self.sites],
            "load_seed": LOAD_SEED,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
            "clock": str(self.clock),
            "ramp_rate_mw_per_minute": RAMP_RATE_MW_PER_MINUTE,
            "feeds": FEEDS["feeds"],
            "curtailments": [c.to_dict() for c in self.curtailments],
        }


def plan_day(
    now: datetime,
    speed: float,
    startup_seconds: float,
    scenario: Sequence[Curtailment] = SCENARIO,
    sites: Sequence[DemoSite] = SITES,
) -> DayPlan:
    """Place `scenario` on the most recent date whose 05:00-22:00 has fully passed at `now`
    at every site (so every receipt time lands in the past and within `--since 3d`), each
    curtailment at its site's local times, with a clock that shows the first site's 05:00
    `startup_seconds` after `now` and runs `speed` times as fast."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zones = {site.name: site.zone for site in sites}
    day = now.astimezone(UTC).date() + timedelta(days=1)
    while any(_local(day, DAY_END, zone) > now for zone in zones.values()):
        day -= timedelta(days=1)
    start = min(_local(day, DAY_START, zone) for zone in zones.values())
    end = max(_local(day, DAY_END, zone) for zone in zones.values())
    clock = DevClock(speed, start, now + timedelta(seconds=startup_seconds))
    placed = sorted(scenario, key=lambda c: _local(day, c.start, zones[c.site]))
    last = placed[-1]
    curtailments = tuple(
        PlannedCurtailment(
            site=c.site,
            zone=zones[c.site],
            label=c.label,
            feed_tag=c.feed_tag,
            start=_local(day, c.start, zones[c.site]),
            end=_local(day, c.end, zones[c.site]),
            target_mw=c.target_mw,
            default_mw=_DEFAULT_MW[c.feed_tag],
            floor_mw=_FLOOR_MW[c.feed_tag],
            correlation_id=f"demo-{day:%Y%m%d}-{c.site}-{c.slug}-{c.feed_tag.split('_')[0]}",
            webhook_dropped=c is last,
        )
        for c in placed
    )
    return DayPlan(day, start, end, clock, curtailments, tuple(sites))


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` on `day` in `zone`, as an aware UTC datetime."""
    return datetime.combine(day, at, zone).astimezone(UTC)
