"""The day `make demo` simulates: two feeds, five curtailments at plausible times, placed on
the most recent complete demo day, and the fast clock that plays it in about a minute.

Times are local (the machine's time zone): a morning peak on both feeds (overlapping), a short
afternoon one, an evening peak on both feeds. The main feed's evening target is below what the
datacenter can shed to (its floor), so the simulator stops there and reports the target as not
met; the simulator drops the `end_ramp_up` of the day's last curtailment, so gridhook sees that
ramp stall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from gridhook.clock import DevClock
from gridhook.events import rfc3339
from simulator.faults import DropRule

__all__ = ["FEEDS", "SCENARIO", "Curtailment", "DayPlan", "PlannedCurtailment", "plan_day"]

DAY_START = time(5, 0)  # the simulated day runs 05:00-22:00 local: the part with curtailments
DAY_END = time(22, 0)
# Every ramp of the day (15 simulated minutes at most) ends well inside the 30-minute stall
# deadline, even with a webhook's real milliseconds in flight at a fast clock.
RAMP_RATE_MW_PER_MINUTE = 0.4

# The simulator's feeds file. `min_achievable` is the floor a ramp down really reaches.
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
    """One load target of the scenario, in local clock times of the demo day."""

    label: str
    slug: str  # for the correlation id
    feed_tag: str
    start: time
    end: time
    target_mw: float


SCENARIO: tuple[Curtailment, ...] = (
    Curtailment("morning peak", "morning", "main_power_feed", time(6, 45), time(9, 30), 6.0),
    Curtailment("morning peak", "morning", "backup_power_feed", time(7, 15), time(9, 0), 5.0),
    Curtailment("afternoon spike", "afternoon", "main_power_feed", time(13, 30), time(14, 15), 7.5),
    Curtailment("evening peak", "evening", "main_power_feed", time(17, 0), time(20, 0), 3.0),
    Curtailment("evening peak", "evening", "backup_power_feed", time(17, 30), time(20, 30), 4.5),
)


@dataclass(frozen=True)
class PlannedCurtailment:
    """A curtailment placed on the demo day: what is scheduled and what should come of it."""

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
            return f"target not met: the feed cannot shed below {self.floor_mw:g} MW"
        return "target met"

    def to_dict(self) -> dict[str, Any]:
        return {
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
    day: date
    start: datetime  # aware, UTC: when the simulated day begins
    end: datetime  # when it ends (at or before the real now the plan was made at)
    clock: DevClock  # GRIDHOOK_DEV_CLOCK / gridhook-sim --clock for both processes
    curtailments: tuple[PlannedCurtailment, ...]

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
) -> DayPlan:
    """Place `scenario` on the most recent local day whose 05:00-22:00 has fully passed at
    `now` (so every receipt time lands in the past and within `--since 2d`), with a clock that
    shows the day's 05:00 `startup_seconds` after `now` and runs `speed` times as fast."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_now = now.astimezone()
    day = local_now.date()
    if _local(day, DAY_END) > now:
        day -= timedelta(days=1)
    start, end = _local(day, DAY_START), _local(day, DAY_END)
    clock = DevClock(speed, start, now + timedelta(seconds=startup_seconds))
    last = max(scenario, key=lambda c: c.start)
    curtailments = tuple(
        PlannedCurtailment(
            label=c.label,
            feed_tag=c.feed_tag,
            start=_local(day, c.start),
            end=_local(day, c.end),
            target_mw=c.target_mw,
            default_mw=_DEFAULT_MW[c.feed_tag],
            floor_mw=_FLOOR_MW[c.feed_tag],
            correlation_id=f"demo-{day:%Y%m%d}-{c.slug}-{c.feed_tag.split('_')[0]}",
            webhook_dropped=c is last,
        )
        for c in sorted(scenario, key=lambda c: c.start)
    )
    return DayPlan(day, start, end, clock, curtailments)


def _local(day: date, at: time) -> datetime:
    """`at` on `day` in the machine's time zone, as an aware UTC datetime."""
    return datetime.combine(day, at).astimezone().astimezone(UTC)
