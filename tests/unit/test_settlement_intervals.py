"""Interval load: the local-time grid, the coverage rule, hourly rollups, meter readings."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridhook.settlement import (
    HourlyRollup,
    MeterInterval,
    SettlementInputError,
    hour_complete,
    load_from_meter,
    load_from_rollups,
    load_from_samples,
    nerc_holidays,
    rollup_hours,
    sample_ranges_needed,
)
from gridhook.settlement.days import NERC_HOLIDAY_WINDOWS, NercHolidays, day_type
from tests.harness import FUNCTIONS
from tests.unit.settlement_helpers import NY, at

T0 = datetime(2025, 6, 18, 12, tzinfo=UTC)


def minutes(*offsets: float, watts: float = 1000.0) -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(minutes=m), watts) for m in offsets]


def five_minute(samples: object, **kwargs: object) -> list[tuple[float | None, float]]:
    load = load_from_samples(
        samples,  # type: ignore[arg-type]
        site="s1",
        feed="f1",
        tz=ZoneInfo("UTC"),
        since=T0,
        until=T0 + timedelta(minutes=10),
        resolution="5m",
        **kwargs,  # type: ignore[arg-type]
    )
    return [(i.mean_w, i.coverage) for i in load.intervals()]


# -- the grid --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "resolution", "count"),
    [
        (date(2025, 3, 9), "1h", 23),
        (date(2025, 11, 2), "1h", 25),
        (date(2025, 3, 9), "15m", 92),
        (date(2025, 11, 2), "5m", 300),
        (date(2025, 6, 18), "1h", 24),
    ],
)
def test_a_local_day_has_23_24_or_25_hours_of_intervals(
    day: date, resolution: str, count: int
) -> None:
    load = load_from_samples(
        [], site="s", feed="f", tz=NY, since=at(day, 0), until=at(day + timedelta(days=1), 0),
        resolution=resolution,
    )  # fmt: skip
    assert load.size == count
    assert load.intervals()[0].interval_start == at(day, 0)
    assert load.intervals()[-1].interval_end == at(day + timedelta(days=1), 0)
    assert all(i.missing and i.coverage == 0 for i in load.intervals())


def test_intervals_align_to_the_local_hour_in_a_half_hour_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+5:30: local hours start at :30 UTC
    load = load_from_samples(
        [], site="s", feed="f", tz=kolkata, since=T0, until=T0 + timedelta(hours=2),
        resolution="1h",
    )  # fmt: skip
    starts = [i.interval_start for i in load.intervals()]
    assert starts == [T0 - timedelta(minutes=30) + timedelta(hours=k) for k in range(3)]


def test_a_zone_off_the_five_minute_grid_is_refused() -> None:
    monrovia = ZoneInfo("Africa/Monrovia")  # UTC-0:44:30 until 1972
    then = datetime(1960, 1, 1, tzinfo=UTC)
    with pytest.raises(SettlementInputError, match="5 minutes"):
        load_from_samples(
            [], site="s", feed="f", tz=monrovia, since=then, until=then + timedelta(hours=1),
            resolution="1h",
        )  # fmt: skip


def test_bad_parameters_are_named() -> None:
    with pytest.raises(SettlementInputError, match="unknown interval '2h'"):
        load_from_samples([], site="s", feed="f", tz=NY, since=T0, until=T0, resolution="2h")
    with pytest.raises(SettlementInputError, match="min_coverage"):
        five_minute([], min_coverage=1.5)
    with pytest.raises(SettlementInputError, match="no time zone"):
        five_minute([(datetime(2025, 6, 18, 12), 1.0)])


# -- the coverage rule ---------------------------------------------------------------------


def test_samples_every_minute_cover_their_intervals_whatever_the_phase() -> None:
    # Read at :05 past each minute from 11:59:05: 12:00-12:05 holds 5 readings and the one
    # at 11:59:05 covers its first 5 seconds.
    samples = [(T0 + timedelta(seconds=5 + 60 * m), 1000.0 + m) for m in range(-1, 10)]
    assert five_minute(samples) == [(1000 + 2, 1.0), (1000 + 7, 1.0)]  # means of 0..4, 5..9


def test_coverage_below_the_minimum_is_missing_and_at_it_present() -> None:
    # 12:00-12:05 read at 0, 1, 2, 3 (4 minutes: 0.8); 12:05-12:10 at 5, 6, 9 (3 minutes).
    samples = minutes(0, 1, 2, 3) + minutes(5, 6, 9)
    assert five_minute(samples) == [(1000.0, 0.8), (None, 0.6)]
    assert five_minute(samples, min_coverage=0.6) == [(1000.0, 0.8), (1000.0, 0.6)]


def test_a_reading_without_a_value_is_no_reading_and_duplicates_add_no_coverage() -> None:
    samples = [*minutes(0, 1, 2), (T0 + timedelta(minutes=3), None), *minutes(4, 4, 4)]
    # Covered: 0-3 (three minutes) and 4-5: 0.8; the mean is over the 6 readings.
    assert five_minute(samples) == [(1000.0, 0.8), (None, 0.0)]


def test_samples_as_objects_tuples_or_arrays_are_the_same() -> None:
    @dataclass
    class Sample:  # the shape of gridhook.store.base.LoadSample
        sampled_at: datetime
        calculated_w: float | None

    pairs = [(T0 + timedelta(minutes=m), 500.0 + 10 * m) for m in range(10)]
    objects = [Sample(t, w) for t, w in pairs]
    arrays = (np.array([t.timestamp() for t, _ in pairs]), np.array([w for _, w in pairs]))
    assert five_minute(pairs) == five_minute(objects) == five_minute(arrays)
    assert five_minute(list(reversed(pairs))) == five_minute(pairs)
    assert five_minute(pairs) == [(520.0, 1.0), (570.0, 1.0)]


def test_a_slower_cadence_is_a_parameter() -> None:
    samples = minutes(0, 2.5, 5, 7.5)  # every 150 s
    assert five_minute(samples) == [(None, 0.4), (None, 0.4)]
    assert five_minute(samples, cadence_s=150) == [(1000.0, 1.0), (1000.0, 1.0)]


# -- rollups ---------------------------------------------------------------------------------


def test_a_rollup_holds_five_minute_means_minima_maxima_counts_and_coverage() -> None:
    samples = [(T0 + timedelta(minutes=m), 100.0 * (m % 5)) for m in range(0, 60) if m != 7]
    (rollup,) = rollup_hours(samples, site="s1", feed="f1", since=T0, until=T0 + timedelta(hours=1))
    assert rollup.hour_start == T0 and rollup.rollup_id == "s1|f1|2025-06-18T12:00:00Z"
    assert rollup.counts == (5, 4) + (5,) * 10
    assert rollup.means[0] == 200.0 and rollup.means[1] == (0 + 100 + 300 + 400) / 4
    assert rollup.minima[1] == 0.0 and rollup.maxima[1] == 400.0
    assert rollup.covered_s[:2] == (300.0, 240.0)
    assert HourlyRollup.from_dict(rollup.to_dict()) == rollup
    (empty,) = rollup_hours([], site="s1", feed="f1", since=T0, until=T0 + timedelta(minutes=1))
    assert empty.sample_count == 0 and empty.means == (None,) * 12


def test_an_hour_is_complete_one_cadence_after_it_ends() -> None:
    assert not hour_complete(T0, T0 + timedelta(minutes=60, seconds=59))
    assert hour_complete(T0, T0 + timedelta(minutes=61))


def test_raw_samples_are_needed_only_for_hours_without_a_rollup() -> None:
    samples = minutes(*range(0, 120))
    rollups = rollup_hours(samples, site="s", feed="f", since=T0, until=T0 + timedelta(hours=1))
    ranges = sample_ranges_needed(
        rollups, tz=NY, since=T0, until=T0 + timedelta(hours=3), resolution="1h"
    )
    assert ranges == [(T0 + timedelta(minutes=59), T0 + timedelta(hours=3))]


@settings(max_examples=60)
@given(
    gaps=st.lists(st.tuples(st.integers(0, 239), st.integers(1, 40)), max_size=6),
    phase=st.integers(0, 59),
    rolled=st.integers(0, 4),
    resolution=st.sampled_from(["5m", "15m", "1h"]),
)
def test_rollups_plus_the_open_hour_give_exactly_what_raw_samples_give(
    gaps: list[tuple[int, int]], phase: int, rolled: int, resolution: str
) -> None:
    """Any gaps, any sampling phase, any number of rolled-up hours: the same intervals."""
    missing = {m for start, length in gaps for m in range(start, start + length)}
    samples = [
        (T0 + timedelta(minutes=m, seconds=phase), 1e6 + 1000 * math.sin(m))
        for m in range(-1, 240)
        if m not in missing
    ]
    since, until = T0, T0 + timedelta(hours=4)
    kwargs = {"site": "s", "feed": "f", "tz": NY, "since": since, "until": until}
    raw = load_from_samples(samples, resolution=resolution, **kwargs)  # type: ignore[arg-type]
    rollups = rollup_hours(
        [s for s in samples if s[0] < T0 + timedelta(hours=rolled)],
        site="s", feed="f", since=since, until=since + timedelta(hours=rolled),
    )  # fmt: skip
    needed = sample_ranges_needed(rollups, tz=NY, since=since, until=until, resolution=resolution)
    open_samples = [s for s in samples if any(a <= s[0] < b for a, b in needed)]
    joined = load_from_rollups(rollups, open_samples, resolution=resolution, **kwargs)  # type: ignore[arg-type]
    np.testing.assert_allclose(joined.coverage, raw.coverage, atol=1e-9)
    np.testing.assert_allclose(joined.mean_w, raw.mean_w, rtol=1e-12, equal_nan=True)


# -- meter readings --------------------------------------------------------------------------


def reading(minute: float, length: float, watts: float) -> MeterInterval:
    start = T0 + timedelta(minutes=minute)
    return MeterInterval(start, start + timedelta(minutes=length), watts)


def test_meter_readings_make_intervals_with_the_same_coverage_rule() -> None:
    quarters = [reading(m, 15, 1000.0 + m) for m in (0, 15, 30, 45, 60, 75, 90)]  # no 13:45
    load = load_from_meter(
        quarters, site="s", feed="f", tz=NY, since=T0, until=T0 + timedelta(hours=2),
        resolution="1h",
    )  # fmt: skip
    first, second = load.intervals()
    assert first.mean_w == pytest.approx(1000 + (0 + 15 + 30 + 45) / 4) and first.coverage == 1
    assert second.mean_w is None and second.coverage == 0.75
    assert first.source == "meter"
    # Hourly readings on a 15-minute grid fill nothing: the shape inside the hour is unknown.
    load = load_from_meter(
        [reading(0, 60, 1000.0)], site="s", feed="f", tz=NY, since=T0,
        until=T0 + timedelta(hours=1), resolution="15m",
    )  # fmt: skip
    assert all(i.missing for i in load.intervals())


# -- days ------------------------------------------------------------------------------------


def test_nerc_holidays_move_a_sunday_to_monday_and_leave_a_saturday() -> None:
    assert nerc_holidays(2027) == {
        date(2027, 1, 1),  # Friday
        date(2027, 5, 31),
        date(2027, 7, 5),  # the 4th is a Sunday
        date(2027, 9, 6),
        date(2027, 11, 25),
        date(2027, 12, 25),  # Saturday: stays
    }
    assert day_type(date(2027, 7, 5), NercHolidays()) == "weekend_holiday"
    assert day_type(date(2025, 6, 19), NercHolidays()) == "weekday"  # Juneteenth: not NERC's
    assert day_type(date(2025, 6, 19), {date(2025, 6, 19)}) == "weekend_holiday"


def test_a_day_outside_the_holiday_windows_never_imports_holidays() -> None:
    probe = (
        "import sys; from datetime import date; from gridhook.settlement import NercHolidays; "
        "print(date(2025, 6, 18) in NercHolidays(), 'holidays' in sys.modules, "
        "date(2025, 7, 4) in NercHolidays(), 'holidays' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(FUNCTIONS), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.stdout.split() == ["False", "False", "True", "True"]


def test_every_nerc_holiday_falls_in_the_windows_that_spare_the_import() -> None:
    for year in range(2000, 2061):
        for day in nerc_holidays(year):
            assert any(m == day.month and a <= day.day <= b for m, a, b in NERC_HOLIDAY_WINDOWS)
