"""The demo's day: which day it is at two sites in two zones, the clock that plays it, and
the scenario's promises (both sites, both feeds of each, overlaps, every target below the
load drawn, one below the floor, the day's last ramp-up dropped)."""

from __future__ import annotations

import time as time_module
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from demo.plan import FEEDS, LOAD_SEED, RAMP_RATE_MW_PER_MINUTE, SITES, plan_day
from gridhook.clock import parse_dev_clock
from simulator.config import parse_feeds
from simulator.server import load_model

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
        # phx1's 22:00 (UTC-7) is 05:00Z the next day: the last of the two sites to end.
        ("2026-11-30T05:00:00Z", "2026-11-29"),
        ("2026-11-30T04:59:59Z", "2026-11-28"),
        ("2026-11-30T23:00:00Z", "2026-11-29"),  # ams1's day has ended, phx1's not
        ("2026-07-01T12:00:00Z", "2026-06-30"),  # summer: Amsterdam on CEST, Phoenix as ever
    ],
)
def test_the_day_is_the_most_recent_one_that_has_ended_at_every_site(
    local_zone: None, now: str, day: str
) -> None:
    moment = datetime.fromisoformat(now)
    plan = plan_day(moment, speed=1440, startup_seconds=3)
    assert plan.day.isoformat() == day
    phx1, ams1 = (site.zone for site in SITES)
    assert [s.name for s in plan.sites] == ["phx1", "ams1"]
    # From ams1's 05:00 (the easternmost site's) to phx1's 22:00 (the westernmost's).
    assert plan.start.astimezone(ams1).time() == time(5, 0)
    assert plan.end.astimezone(phx1).time() == time(22, 0)
    assert plan.start.astimezone(ams1).date() == plan.end.astimezone(phx1).date() == plan.day
    assert plan.end <= moment  # receipt times never lie in the future
    assert plan.start >= moment - timedelta(days=3)  # so `--since 3d` holds the whole day


def test_the_clock_shows_the_days_start_after_the_startup_allowance() -> None:
    now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    plan = plan_day(now, speed=1440, startup_seconds=3)
    clock = parse_dev_clock(str(plan.clock))  # what the processes are given
    assert clock.speed == 1440
    assert clock.real_origin == now + timedelta(seconds=3)
    assert clock.sim_origin == plan.start
    # 05:00 CET to 22:00 MST: 25 hours.
    assert plan.real_seconds_until(plan.end) == pytest.approx(25 * 3600 / 1440)
    later = now + timedelta(seconds=20)  # after the history was imported
    restarted = plan.starting_at(later)
    assert restarted.clock.real_origin == later and restarted.clock.sim_origin == plan.start
    assert restarted.curtailments == plan.curtailments


def test_curtailments_keep_their_sites_local_clock_times(local_zone: None) -> None:
    plan = plan_day(datetime(2026, 11, 30, 6, 0, tzinfo=UTC), speed=1440, startup_seconds=3)
    [phx_morning] = [c for c in plan.of_site("phx1") if c.correlation_id.endswith("morning-main")]
    assert phx_morning.start.astimezone(ZoneInfo("America/Phoenix")).time() == time(7, 0)
    assert phx_morning.start.utcoffset() == timedelta(0)  # kept in UTC
    assert phx_morning.correlation_id == "demo-20261129-phx1-morning-main"
    [ams_morning] = [c for c in plan.of_site("ams1") if c.correlation_id.endswith("morning-main")]
    assert ams_morning.start.astimezone(ZoneInfo("Europe/Amsterdam")).time() == time(7, 0)
    assert ams_morning.start == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert [c.start for c in plan.curtailments] == sorted(c.start for c in plan.curtailments)


def test_the_scenario_shows_what_it_promises() -> None:
    plan = plan_day(datetime(2026, 11, 30, 6, 0, tzinfo=UTC), speed=1440, startup_seconds=3)
    curtailments = plan.curtailments
    for site in SITES:  # events flow on both sites, on both feeds of each
        tags = {c.feed_tag for c in plan.of_site(site.name)}
        assert tags == {f["tag"] for f in FEEDS["feeds"]}
    assert len({c.correlation_id for c in curtailments}) == len(curtailments)
    # Overlapping curtailments on the two feeds of one site (morning and evening peaks).
    overlaps = [
        (a.label, b.label)
        for a in curtailments
        for b in curtailments
        if a.site == b.site and a.feed_tag < b.feed_tag and a.start < b.end and b.start < a.end
    ]
    assert len(overlaps) >= 3
    # One curtailment delivers less than needed: its target is below the feed's floor.
    [below] = [c for c in curtailments if c.below_floor]
    assert below.target_mw < below.floor_mw and "less than needed" in below.expectation
    [dropped] = [c for c in curtailments if c.webhook_dropped]
    assert dropped is max(curtailments, key=lambda c: c.start)
    assert "end_ramp_up" not in dropped.expected_events
    assert [str(rule) for rule in plan.drop_rules] == [f"end_ramp_up:{dropped.correlation_id}"]


@pytest.mark.parametrize("weekday", [True, False])
def test_every_target_is_below_the_load_the_model_draws_then(weekday: bool) -> None:
    """Each curtailment really ramps down (a target above the load drawn is met at once),
    on a weekday and on a weekend day, by the simulator's own load model and seed."""
    day = datetime(2026, 12, 2 if weekday else 5, 12, tzinfo=UTC)  # a Wednesday, a Saturday
    plan = plan_day(day + timedelta(days=1), speed=1440, startup_seconds=3)
    assert plan.day.weekday() < 5 if weekday else plan.day.weekday() >= 5
    for site in plan.sites:
        model = load_model(parse_feeds(FEEDS), site.name, site.zone, LOAD_SEED)
        assert model is not None
        for c in plan.of_site(site.name):
            drawn_mw = model.watts(c.feed_tag, c.start) / 1e6
            assert drawn_mw > c.target_mw + 0.5, (c.correlation_id, drawn_mw)


def test_every_ramp_fits_the_day_and_the_stall_deadline() -> None:
    plan = plan_day(datetime(2026, 11, 30, 6, 0, tzinfo=UTC), speed=1440, startup_seconds=3)
    for c in plan.curtailments:
        # Down to the target (or the floor) and back up again: the same distance.
        megawatts = c.default_mw - max(c.target_mw, c.floor_mw)
        ramp = timedelta(minutes=megawatts / RAMP_RATE_MW_PER_MINUTE)
        assert ramp <= STALL_DEADLINE / 2  # a slow ramp or webhook must not look stalled
        assert plan.start < c.start < c.end
        # The dropped end_ramp_up is reported stalled before the day ends.
        assert c.end + STALL_DEADLINE + timedelta(minutes=30) < plan.end
