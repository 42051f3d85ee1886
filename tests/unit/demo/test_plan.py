"""The demo's day: which day it is, the clock that plays it, and the scenario's promises
(both feeds, overlaps, one target below the floor, the day's last ramp-up dropped)."""

from __future__ import annotations

import time as time_module
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest

from demo.plan import FEEDS, RAMP_RATE_MW_PER_MINUTE, plan_day
from gridhook.clock import parse_dev_clock

STALL_DEADLINE = timedelta(seconds=1800)  # GRIDHOOK_RAMP_DEADLINE_SECONDS' default


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in a zone far from UTC, so "local" and "UTC" cannot be confused."""
    monkeypatch.setenv("TZ", "JST-9")  # POSIX spelling: needs no time-zone database
    time_module.tzset()
    yield
    monkeypatch.undo()
    time_module.tzset()


@pytest.mark.parametrize(
    ("now", "day"),
    [
        ("2026-11-30T01:57:00Z", "2026-11-29"),  # 10:57 in Tokyo: today's 22:00 is ahead
        ("2026-11-30T13:00:00Z", "2026-11-30"),  # 22:00 in Tokyo: today's day just ended
        ("2026-11-30T12:59:59Z", "2026-11-29"),
    ],
)
def test_the_day_is_the_most_recent_one_that_has_ended(
    local_zone: None, now: str, day: str
) -> None:
    moment = datetime.fromisoformat(now)
    plan = plan_day(moment, speed=1440, startup_seconds=3)
    assert plan.day.isoformat() == day
    assert plan.start.astimezone().time() == time(5, 0)
    assert plan.end.astimezone().time() == time(22, 0)
    assert plan.end <= moment  # receipt times never lie in the future
    assert plan.start >= moment - timedelta(days=2)  # so `--since 2d` holds the whole day


def test_the_clock_shows_the_days_start_after_the_startup_allowance() -> None:
    now = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    plan = plan_day(now, speed=1440, startup_seconds=3)
    clock = parse_dev_clock(str(plan.clock))  # what the processes are given
    assert clock.speed == 1440
    assert clock.real_origin == now + timedelta(seconds=3)
    assert clock.sim_origin == plan.start
    assert plan.real_seconds_until(plan.end) == pytest.approx(17 * 3600 / 1440)


def test_curtailments_keep_local_clock_times(local_zone: None) -> None:
    plan = plan_day(datetime(2026, 11, 30, 2, 0, tzinfo=UTC), speed=1440, startup_seconds=3)
    first = plan.curtailments[0]
    assert first.start.astimezone().time() == time(6, 45)
    assert first.start.utcoffset() == timedelta(0)  # kept in UTC
    assert first.correlation_id == "demo-20261129-morning-main"


def test_the_scenario_shows_what_it_promises() -> None:
    plan = plan_day(datetime(2026, 11, 30, 2, 0, tzinfo=UTC), speed=1440, startup_seconds=3)
    curtailments = plan.curtailments
    assert {c.feed_tag for c in curtailments} == {f["tag"] for f in FEEDS["feeds"]}
    assert len({c.correlation_id for c in curtailments}) == len(curtailments)
    # Overlapping curtailments on the two feeds (morning and evening peaks).
    overlaps = [
        (a.label, b.label)
        for a in curtailments
        for b in curtailments
        if a.feed_tag < b.feed_tag and a.start < b.end and b.start < a.end
    ]
    assert len(overlaps) >= 2
    [below] = [c for c in curtailments if c.below_floor]
    assert below.target_mw < below.floor_mw and "not met" in below.expectation
    [dropped] = [c for c in curtailments if c.webhook_dropped]
    assert dropped is max(curtailments, key=lambda c: c.start)
    assert "end_ramp_up" not in dropped.expected_events
    assert [str(rule) for rule in plan.drop_rules] == [f"end_ramp_up:{dropped.correlation_id}"]


def test_every_ramp_fits_the_day_and_the_stall_deadline() -> None:
    plan = plan_day(datetime(2026, 11, 30, 2, 0, tzinfo=UTC), speed=1440, startup_seconds=3)
    for c in plan.curtailments:
        # Down to the target (or the floor) and back up again: the same distance.
        megawatts = c.default_mw - max(c.target_mw, c.floor_mw)
        ramp = timedelta(minutes=megawatts / RAMP_RATE_MW_PER_MINUTE)
        assert ramp <= STALL_DEADLINE / 2  # a slow ramp or webhook must not look stalled
        assert plan.start < c.start < c.end
        # The dropped end_ramp_up is reported stalled before the day ends.
        assert c.end + STALL_DEADLINE + timedelta(minutes=30) < plan.end
