"""The seeded load model: deterministic, bounded, shaped by the site's local day and the
weekend, and held under the cap by the ramp model while a feed is constrained."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridhook.schema import violations
from simulator.clock import SimClock
from simulator.config import FeedConfig, parse_feeds
from simulator.engine import RampEngine
from simulator.load import LoadModel, LoadShape, _z
from simulator.schedule import Schedule
from simulator.units import parse_unit

MW = parse_unit("mw")
UTC_ZONE = ZoneInfo("UTC")
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, midnight UTC


def model(
    seed: int = 1, site: str = "phx1", zone: str = "UTC", shape: LoadShape | None = None
) -> LoadModel:
    return LoadModel(seed, site, ZoneInfo(zone), [("main", 10e6, shape or LoadShape())])


def minutes(start: datetime, days: float, step: int = 5) -> list[datetime]:
    return [start + timedelta(minutes=m) for m in range(0, int(days * 1440), step)]


def test_the_same_seed_and_site_give_the_same_load_whatever_was_asked_before() -> None:
    instants = minutes(MONDAY, 2, step=7)
    first = [model().watts("main", t) for t in instants]
    _z.cache_clear()  # values are computed afresh, in the opposite order
    second = [model().watts("main", t) for t in reversed(instants)][::-1]
    assert first == second


def test_another_seed_or_another_site_draws_another_load() -> None:
    instants = minutes(MONDAY, 1)
    base = [model().watts("main", t) for t in instants]
    assert base != [model(seed=2).watts("main", t) for t in instants]
    assert base != [model(site="nyc1").watts("main", t) for t in instants]


def test_the_load_stays_between_zero_and_the_default_constraint() -> None:
    loud = LoadShape(base=0.9, daily_amplitude=0.3, noise=0.2, day_to_day=0.2)
    values = [model(shape=loud).watts("main", t) for t in minutes(MONDAY, 14, step=11)]
    assert min(values) >= 0 and max(values) == 10e6  # capped at the default, never above


def test_the_daily_shape_peaks_at_the_peak_hour_of_the_sites_local_day() -> None:
    for zone in ("America/Phoenix", "Asia/Tokyo"):
        site = model(zone=zone, shape=LoadShape(peak_hour=15.0))
        by_hour: dict[int, list[float]] = {}
        for t in minutes(MONDAY, 5):  # Monday to Friday, UTC; each zone's weekdays overlap
            local = t.astimezone(ZoneInfo(zone))
            if local.weekday() < 5:
                by_hour.setdefault(local.hour, []).append(site.watts("main", t))
        means = {hour: statistics.fmean(values) for hour, values in by_hour.items()}
        assert max(means, key=means.__getitem__) in (14, 15), zone
        assert min(means, key=means.__getitem__) in (2, 3), zone
        # the amplitude: 20 % of the default constraint between trough and peak (±noise)
        assert means[15] - means[3] == pytest.approx(0.20 * 10e6, rel=0.25)


def test_weekends_draw_less_than_weekdays() -> None:
    site = model(shape=LoadShape(weekend=0.8))
    week = minutes(MONDAY, 7)
    weekday = statistics.fmean(site.watts("main", t) for t in week if t.weekday() < 5)
    weekend = statistics.fmean(site.watts("main", t) for t in week if t.weekday() >= 5)
    assert weekend / weekday == pytest.approx(0.8, abs=0.04)


def test_the_mean_over_an_interval_is_the_midpoint_mean() -> None:
    site = model()
    start = MONDAY + timedelta(hours=9)
    expected = statistics.fmean(
        site.watts("main", start + timedelta(seconds=30 + 60 * i)) for i in range(15)
    )
    assert site.mean_watts("main", start, start + timedelta(minutes=15)) == pytest.approx(expected)


def test_a_feeds_file_gives_each_feed_its_shape() -> None:
    feeds = parse_feeds(
        {
            "feeds": [
                {"tag": "a", "min_cap": 1, "max_cap": 10, "default_constraint": 8},
                {
                    "tag": "b",
                    "min_cap": 1,
                    "max_cap": 10,
                    "default_constraint": 8,
                    "load": {"base": 0.5, "weekend": 1, "peak_hour": 20},
                },
            ]
        }
    )
    assert feeds[0].load_shape == LoadShape()
    assert feeds[1].load_shape == LoadShape(base=0.5, weekend=1.0, peak_hour=20.0)


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"bass": 0.5}, "unknown load key(s) bass"),
        ({"base": -0.1}, "load base must be a finite number >= 0"),
        ({"noise": "loud"}, "load noise must be a number"),
        ({"peak_hour": 24}, "load peak_hour must be in [0, 24)"),
        ([0.5], "load must be an object"),
    ],
)
def test_a_bad_load_shape_is_refused_naming_the_feed_and_key(load: Any, message: str) -> None:
    entry = {"tag": "a", "min_cap": 1, "max_cap": 10, "default_constraint": 8, "load": load}
    with pytest.raises(ValueError, match=r"feeds\[0\]") as refused:
        parse_feeds({"feeds": [entry]})
    assert message in str(refused.value)


# --- the ramp model on top of the load model ------------------------------------------------


class ModelRamp:
    """One 10 MW feed (floor 2 MW) following a model, on a clock the test moves."""

    def __init__(self, start: datetime) -> None:
        self.clock = SimClock(speed=1e-9, start=start)
        self.schedule = Schedule()
        self.model = model(shape=LoadShape(base=0.6, daily_amplitude=0.2, noise=0.01))
        self.events: list[dict[str, Any]] = []
        self.engine = RampEngine(
            [FeedConfig("main", 2.0, 12.0, 10.0, MW)],
            self.schedule,
            self.clock,
            1.0,  # MW per simulated minute
            lambda _, payload: self.events.append(payload),
            natural=self.model.watts,
        )

    def natural(self) -> float:
        return self.model.watts("main", self.clock.now())

    def load(self) -> float:
        return self.engine.calculated_watts("main")

    def target(self, mw: float, minutes: float) -> None:
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
                    "feed_tags": ("main",),
                    "correlation_id": "peak",
                }
            ]
        )
        self.engine.tick()

    def run(self, minutes: float, step: float = 0.5) -> None:
        for _ in range(int(minutes / step)):
            self.clock.advance(timedelta(minutes=step))
            self.engine.tick()


def test_unconstrained_the_calculated_load_is_the_model() -> None:
    ramp = ModelRamp(MONDAY + timedelta(hours=10))
    for _ in range(6):
        assert ramp.load() == ramp.natural()
        assert ramp.load() < 10e6  # the model, not the default constraint
        ramp.run(17)
    assert ramp.events == []


def test_constrained_the_load_is_held_under_the_target_then_follows_the_model_again() -> None:
    ramp = ModelRamp(MONDAY + timedelta(hours=14))
    natural = ramp.natural()
    assert 7e6 < natural < 9e6
    ramp.target(5.0, minutes=60)
    # The cap comes down from the load drawn (not from the 10 MW default): 5 MW lower at
    # 1 MW a minute takes about (natural - 5) minutes.
    ramp.run((natural - 5e6) / 1e6 + 1)
    assert ramp.load() == pytest.approx(5e6)
    ramp.run(30)
    assert ramp.load() == pytest.approx(5e6)  # held while constrained
    ramp.run(60)  # the target ended 30 minutes ago; 10 MW is reached again after 5
    assert ramp.load() == ramp.natural()
    summary = [(e["event"], e["calculated_load"]["value"], e["compliant"]) for e in ramp.events]
    assert [name for name, _, _ in summary] == [
        "start_ramp_down",
        "end_ramp_down",
        "start_ramp_up",
        "end_ramp_up",
    ]
    assert summary[0][1] == pytest.approx(natural / 1e6, abs=1e-6) and not summary[0][2]
    assert summary[1][1:] == (5.0, True)
    assert summary[3][1] < 10.0  # back at the model's load, under the 10 MW default
    assert all(violations(event) == [] for event in ramp.events)


def test_a_target_above_the_load_drawn_is_met_at_once() -> None:
    ramp = ModelRamp(MONDAY + timedelta(hours=3))  # night: about 6 MW
    assert ramp.natural() < 7e6
    ramp.target(9.0, minutes=60)
    ramp.run(1)
    assert [(e["event"], e["compliant"]) for e in ramp.events] == [
        ("start_ramp_down", True),
        ("end_ramp_down", True),
    ]
    assert ramp.load() == ramp.natural()  # under the 9 MW cap the model is untouched
