"""A feed's achievable floor in the ramp model, drop rules, and the clock that follows
GRIDHOOK_DEV_CLOCK. The ramp model runs on a clock the test moves (`advance`), no threads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridhook.clock import parse_dev_clock
from gridhook.schema import violations
from simulator.clock import SimClock
from simulator.config import FeedConfig, parse_feeds
from simulator.engine import RampEngine
from simulator.faults import POWER_EVENT_NAMES, DropRule, FaultKnobs
from simulator.schedule import Schedule
from simulator.units import parse_unit
from simulator.webhooks import EVENT_NAMES

MW = parse_unit("mw")
START = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def feed(min_achievable: float | None = 4.0) -> FeedConfig:
    return FeedConfig("main_power_feed", 2.0, 12.0, 10.0, MW, min_achievable=min_achievable)


class Ramp:
    """A ramp engine at 1 MW per simulated minute, on a stopped clock moved by `run`."""

    def __init__(self, config: FeedConfig) -> None:
        self.clock = SimClock(speed=1e-9, start=START)  # effectively stopped: the test moves it
        self.schedule = Schedule()
        self.events: list[dict[str, Any]] = []
        self.engine = RampEngine(
            [config], self.schedule, self.clock, 1.0, lambda _, payload: self.events.append(payload)
        )

    def target(self, mw: float, minutes: float, correlation_id: str) -> None:
        now = self.clock.now()
        self.schedule.add(
            [
                {
                    "start": now,
                    "end": now + timedelta(minutes=minutes),
                    "value_watts": mw * 1e6,
                    "requested_value": mw,
                    "requested_unit": MW,
                    "best_effort": False,
                    "feed_tags": ("main_power_feed",),
                    "correlation_id": correlation_id,
                }
            ]
        )
        self.engine.tick()

    def run(self, minutes: float, step: float = 0.5) -> None:
        for _ in range(int(minutes / step)):
            self.clock.advance(timedelta(minutes=step))
            self.engine.tick()

    def summary(self) -> list[tuple[str, float, float, bool]]:
        return [
            (e["event"], e["target_load"]["value"], e["calculated_load"]["value"], e["compliant"])
            for e in self.events
        ]


def test_a_target_below_the_floor_stops_there_and_is_not_met() -> None:
    ramp = Ramp(feed(min_achievable=4.0))
    ramp.target(3.0, minutes=30, correlation_id="evening-peak")
    ramp.run(20)  # 10 -> 4 MW takes 6 minutes; the load then stays at the floor
    assert ramp.engine.calculated_watts("main_power_feed") == pytest.approx(4e6)
    ramp.run(30)  # the target ends: back up to the default
    assert ramp.summary() == [
        ("start_ramp_down", 3.0, 10.0, False),
        ("end_ramp_down", 3.0, 4.0, False),  # calculated load > target: not met
        ("start_ramp_up", 10.0, 4.0, True),
        ("end_ramp_up", 10.0, 10.0, True),
    ]
    assert {e["correlation_id"] for e in ramp.events} == {"evening-peak"}
    for event in ramp.events:
        assert violations(event) == []


@pytest.mark.parametrize(("target", "compliant"), [(4.0, True), (6.0, True), (3.99, False)])
def test_only_targets_below_the_floor_are_missed(target: float, compliant: bool) -> None:
    ramp = Ramp(feed(min_achievable=4.0))
    ramp.target(target, minutes=60, correlation_id="c")
    ramp.run(10)
    [end] = [e for e in ramp.events if e["event"] == "end_ramp_down"]
    assert end["compliant"] is compliant
    assert end["calculated_load"]["value"] == max(target, 4.0)


def test_without_min_achievable_the_floor_is_min_cap() -> None:
    assert feed(min_achievable=None).floor_watts == 2e6
    ramp = Ramp(feed(min_achievable=None))
    ramp.target(2.0, minutes=60, correlation_id="c")
    ramp.run(10)
    assert ramp.summary()[-1] == ("end_ramp_down", 2.0, 2.0, True)


def test_a_lower_target_while_at_the_floor_still_reports_its_ramp() -> None:
    ramp = Ramp(feed(min_achievable=4.0))
    ramp.target(3.0, minutes=60, correlation_id="first")
    ramp.run(10)
    ramp.target(2.5, minutes=30, correlation_id="second")  # DPS cannot go lower either
    ramp.run(1)
    assert [(e["event"], e["correlation_id"], e["compliant"]) for e in ramp.events[2:]] == [
        ("start_ramp_down", "second", False),
        ("end_ramp_down", "second", False),
    ]
    assert ramp.events[-1]["calculated_load"]["value"] == 4.0


def test_feeds_file_takes_min_achievable() -> None:
    [parsed] = parse_feeds(
        {
            "feeds": [
                {
                    "tag": "f",
                    "min_cap": 1000,
                    "max_cap": 9000,
                    "default_constraint": 8000,
                    "unit": "kw",
                    "min_achievable": 3500,
                }
            ]
        }
    )
    assert (parsed.min_achievable, parsed.floor_watts) == (3500.0, 3.5e6)


@pytest.mark.parametrize("floor", [0.5, 8.5, "lots"])
def test_min_achievable_must_lie_between_min_cap_and_the_default(floor: object) -> None:
    entry = {"tag": "f", "min_cap": 1, "max_cap": 10, "default_constraint": 8}
    with pytest.raises(ValueError, match=r"feeds\[0\]"):
        parse_feeds([{**entry, "min_achievable": floor}])


# --- drop rules ------------------------------------------------------------------------------


def test_drop_rule_names_the_same_events_as_the_dispatcher() -> None:
    assert set(POWER_EVENT_NAMES) == set(EVENT_NAMES.values())


@pytest.mark.parametrize(
    ("text", "event", "correlation_id"),
    [
        ("end_ramp_up", "end_ramp_up", None),
        ("end_ramp_up:curtail-7", "end_ramp_up", "curtail-7"),
        (":curtail-7", None, "curtail-7"),
        ("start_ramp_down:urn:dps:42", "start_ramp_down", "urn:dps:42"),  # first colon splits
    ],
)
def test_drop_rule_parse(text: str, event: str | None, correlation_id: str | None) -> None:
    rule = DropRule.parse(text)
    assert (rule.event, rule.correlation_id) == (event, correlation_id)
    assert str(rule) == text


@pytest.mark.parametrize(("text", "message"), [("", "needs"), (":", "needs"), ("end", "unknown")])
def test_bad_drop_rules_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DropRule.parse(text)


def test_drop_rules_match_by_event_and_correlation_id() -> None:
    knobs = FaultKnobs(drop_events=[DropRule("end_ramp_up", "b"), DropRule(correlation_id="c")])
    cases = {
        ("end_ramp_up", "a"): None,
        ("end_ramp_up", "b"): "end_ramp_up:b",
        ("start_ramp_up", "b"): None,
        ("start_ramp_down", "c"): ":c",
    }
    for (event, correlation_id), expected in cases.items():
        rule = knobs.drop_rule_for({"event": event, "correlation_id": correlation_id})
        assert (None if rule is None else str(rule)) == expected
    # Rules are not consumed; reset removes them.
    assert knobs.drop_rule_for({"event": "end_ramp_up", "correlation_id": "b"}) is not None
    knobs.reset()
    assert knobs.drop_events == []


# --- the clock that follows GRIDHOOK_DEV_CLOCK -----------------------------------------------


def test_following_a_dev_clock_shows_exactly_its_time() -> None:
    dev = parse_dev_clock("1440@2026-11-29T05:00:00Z@2026-11-30T02:00:00Z")
    clock = SimClock.following(dev)
    assert clock.speed == 1440
    for _ in range(100):
        before = dev.now()
        shown = clock.now()
        after = dev.now()
        assert before <= shown <= after


def test_following_clock_can_still_be_advanced() -> None:
    dev = parse_dev_clock("1@2020-01-01T00:00:00Z@2020-01-01T00:00:00Z")
    clock = SimClock.following(dev)
    clock.advance(timedelta(days=1))
    assert clock.now() - dev.now() >= timedelta(days=1) - timedelta(seconds=1)
