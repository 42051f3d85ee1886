"""The simulator's meter after the fact (`--meter-out`): the load each feed *served* — the
load model held under the caps of its targets — per interval, in the files `--history`
writes, read back with gridhook's own parser. The ramp model runs on a clock the test moves,
no threads; the expected figures are computed here from the load model, minute by minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridhook.settlement import parse_meter_csv
from simulator.clock import SimClock
from simulator.config import FeedConfig
from simulator.engine import RampEngine
from simulator.history import INTERVALS, history_window, meter_window, write_meter
from simulator.load import LoadModel, LoadShape
from simulator.schedule import Schedule
from simulator.units import parse_unit

PHOENIX = ZoneInfo("America/Phoenix")  # UTC-7 all year
MW = parse_unit("mw")
HOUR = timedelta(hours=1)
# 16:00 local: the day's peak is behind, the load still about 8.5 MW on the main feed.
START = datetime(2026, 12, 1, 16, 0, tzinfo=PHOENIX).astimezone(UTC)
FEEDS = [
    FeedConfig("main_power_feed", 2.0, 12.0, 10.0, MW, min_achievable=4.0),
    FeedConfig("backup_power_feed", 1.0, 10.0, 8.0, MW, min_achievable=3.0),
]


class Site:
    """A site's ramp engine on the load model (seed 7), at 0.4 MW per simulated minute, on a
    stopped clock moved by `run`."""

    def __init__(self) -> None:
        self.clock = SimClock(speed=1e-9, start=START)
        self.schedule = Schedule()
        self.model = LoadModel(
            7, "phx1", PHOENIX, [(f.tag, f.default_watts, LoadShape()) for f in FEEDS]
        )
        self.engine = RampEngine(
            FEEDS, self.schedule, self.clock, 0.4, lambda _, __: None, natural=self.model.watts
        )

    def target(self, feed: str, mw: float, start: datetime, end: datetime) -> None:
        self.schedule.add([_target(feed, mw, start, end)])

    def run(self, until: datetime, step: timedelta = timedelta(seconds=30)) -> None:
        while self.clock.now() < until:
            self.clock.advance(step)
            self.engine.tick()

    def meter(self, out: Path, since: datetime, until: datetime) -> dict[tuple[str, str], Any]:
        feeds = {
            f.tag: (lambda tag: lambda a, b: self.engine.mean_served_watts(tag, a, b))(f.tag)
            for f in FEEDS
        }
        files = write_meter("phx1", PHOENIX, feeds, since, until, out, INTERVALS["1h"])
        return {
            (f.feed, f.format): parse_meter_csv(f.path.read_text(), PHOENIX).intervals
            for f in files
        }

    def expected(self, feed: str, start: datetime, cap_mw: float | None = None) -> float:
        """The hour's mean of the model by the minute, held under `cap_mw` if given."""
        minutes = [start + timedelta(minutes=m + 0.5) for m in range(60)]
        loads = [self.model.watts(feed, t) for t in minutes]
        if cap_mw is not None:
            loads = [min(load, cap_mw * 1e6) for load in loads]
        return sum(loads) / len(loads)


def _target(feed: str, mw: float, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "start": start,
        "end": end,
        "value_watts": mw * 1e6,
        "requested_value": mw,
        "requested_unit": MW,
        "best_effort": False,
        "feed_tags": (feed,),
        "correlation_id": f"{feed}-evening",
    }


def local(hour: int) -> datetime:
    return datetime(2026, 12, 1, hour, 0, tzinfo=PHOENIX).astimezone(UTC)


def test_the_meter_shows_the_load_served_a_target_below_the_floor_held_at_the_floor(
    tmp_path: Path,
) -> None:
    site = Site()
    # Main: 3 MW asked, 4 MW is as low as it goes. Backup: 4 MW asked, reachable.
    site.target("main_power_feed", 3.0, local(17), local(20))
    site.target("backup_power_feed", 4.0, local(17), local(20))
    site.run(local(22))
    meter = site.meter(tmp_path, local(16), local(22))
    for fmt in ("csv", "green-button"):  # both formats say the same, to the Wh
        main = {i.interval_start: i.mean_w for i in meter[("main_power_feed", fmt)]}
        backup = {i.interval_start: i.mean_w for i in meter[("backup_power_feed", fmt)]}
        assert sorted(main) == [local(h) for h in range(16, 22)]
        # Before the curtailment: the natural load, as --history writes it.
        assert main[local(16)] == pytest.approx(site.expected("main_power_feed", local(16)), abs=1)
        # Whole hours after the ramp down: held at the floor, 1 MW above the 3 MW target.
        for hour in (18, 19):
            held = site.expected("main_power_feed", local(hour), cap_mw=4.0)
            assert main[local(hour)] == pytest.approx(held, abs=1)
            assert main[local(hour)] == pytest.approx(4e6, abs=1)
            assert backup[local(hour)] == pytest.approx(4e6, abs=1)  # the target met
        # The first hour includes the ramp down (8.5 -> 4 MW at 0.4 MW a minute): above the
        # floor, below the natural load.
        assert 4e6 < main[local(17)] < site.expected("main_power_feed", local(17))
        # Back up by 20:30 (4 -> ~8 MW in 10 minutes): the last hour is the natural load.
        assert main[local(21)] == pytest.approx(site.expected("main_power_feed", local(21)), abs=1)


def test_before_the_engine_started_the_meter_shows_the_natural_load(tmp_path: Path) -> None:
    site = Site()
    site.run(local(17))
    meter = site.meter(tmp_path, local(14), local(17))
    intervals = meter[("backup_power_feed", "csv")]
    assert [i.interval_start for i in intervals] == [local(14), local(15), local(16)]
    for interval in intervals:
        natural = site.expected("backup_power_feed", interval.interval_start)
        assert interval.mean_w == pytest.approx(natural, abs=1)


def test_the_meter_window_joins_the_history_and_ends_at_the_last_whole_interval() -> None:
    clock_start = datetime(2026, 12, 1, 5, 17, tzinfo=PHOENIX)
    stopped = datetime(2026, 12, 2, 22, 40, tzinfo=PHOENIX)
    for interval in INTERVALS.values():
        since, until = meter_window(clock_start, stopped, PHOENIX, interval)
        assert since == history_window(45, clock_start, PHOENIX, interval)[1]
        assert until <= stopped < until + interval
    since, until = meter_window(clock_start, stopped, PHOENIX, INTERVALS["1h"])
    assert (since, until) == (local(5), local(22) + timedelta(days=1))
    # Stopped inside the first interval: nothing whole to report.
    early = meter_window(clock_start, clock_start + timedelta(minutes=10), PHOENIX, HOUR)
    assert early == (local(5), local(5))
