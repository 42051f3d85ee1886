"""Golden baselines: every expected figure is worked out by hand here, from the load shape
in settlement_helpers (weekdays 1000 kW + day of month, weekend days and holidays 500 kW +
day of month, plus 10 kW per wall-clock hour), never by the code under test.

Site: America/New_York. Event days: Wed 2025-06-18 (a plain weekday), Fri 2025-07-04 (a
NERC holiday), Sat 2025-06-21 (a weekend day), Sun 2025-03-09 (23 hours) and Sun
2025-11-02 (25 hours).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gridhook.settlement import METHODS, LoadSeries, Settlement, load_from_samples, settle
from tests.unit.settlement_helpers import KW, NY, at, hourly, scenario, standard_kw

JUN18 = date(2025, 6, 18)
LATER = datetime(2025, 12, 31, tzinfo=UTC)  # everything is over


def kw(value: float | None) -> float | None:
    return None if value is None else value / KW


def run(
    load: LoadSeries, start: datetime, end: datetime | None, method: str, **kwargs: Any
) -> Settlement:
    kwargs.setdefault("now", LATER)
    return settle(load, event_start=start, event_end=end, method=method, **kwargs)


def baselines_kw(result: Settlement) -> list[float | None]:
    return [kw(i.baseline_w) for i in result.intervals]


def days(*pairs: tuple[int, int]) -> tuple[date, ...]:
    return tuple(date(2025, m, d) for m, d in pairs)


# -- caiso-10-in-10 -------------------------------------------------------------------------

# The 10 most recent weekdays before Wed 18 June: 17, 16, 13, 12, 11, 10, 9, 6, 5, 4.
# Their mean base: 1000 + (17+16+13+12+11+10+9+6+5+4)/10 = 1010.3 kW.
CAISO_JUN18_BASE = 1000 + (17 + 16 + 13 + 12 + 11 + 10 + 9 + 6 + 5 + 4) / 10
# Adjustment window [10:00, 13:00): unadjusted mean 1010.3 + 10*(10+11+12)/3 = 1120.3.
CAISO_JUN18_WINDOW = CAISO_JUN18_BASE + 110


def test_caiso_weekday_event_golden() -> None:
    window_kw = 1.1 * CAISO_JUN18_WINDOW  # the event day ran 10 % above its baseline
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=window_kw)
    result = run(load, at(JUN18, 14), at(JUN18, 16), "caiso-10-in-10", target_w=1000 * KW)

    assert result.status == "complete" and result.reason == ""
    assert result.selected_days == days(
        (6, 17), (6, 16), (6, 13), (6, 12), (6, 11), (6, 10), (6, 9), (6, 6), (6, 5), (6, 4)
    )
    assert [(e.day, e.reason) for e in result.excluded_days] == [
        (date(2025, 6, d), "day_type") for d in (15, 14, 8, 7)
    ]
    assert result.adjustment is not None and result.adjustment.kind == "factor"
    assert result.adjustment.value == pytest.approx(1.1) and not result.adjustment.clipped
    assert result.adjustment.window_start == at(JUN18, 10)
    assert result.adjustment.window_end == at(JUN18, 13)
    b14, b15 = 1.1 * (CAISO_JUN18_BASE + 140), 1.1 * (CAISO_JUN18_BASE + 150)  # 1265.33, 1276.33
    assert baselines_kw(result) == pytest.approx([b14, b15])
    assert [kw(i.actual_w) for i in result.intervals] == [900, 900]
    assert [kw(i.delivered_w) for i in result.intervals] == pytest.approx([b14 - 900, b15 - 900])
    assert [kw(i.needed_w) for i in result.intervals] == pytest.approx([b14 - 1000, b15 - 1000])
    # Delivered (365.33 + 376.33) kWh over two whole hours; needed (265.33 + 276.33) kWh.
    assert result.delivered_mwh == pytest.approx((b14 - 900 + b15 - 900) / 1000)
    assert result.needed_mwh == pytest.approx((b14 - 1000 + b15 - 1000) / 1000)
    assert result.performance_factor_uncapped == pytest.approx(741.66 / 541.66)
    assert result.performance_factor == 1.0
    assert result.intervals_at_or_below_target == 2
    assert (result.intervals_counted, result.intervals_missing) == (2, 0)
    assert (result.method, result.source, result.resolution) == ("caiso-10-in-10", "samples", "1h")


@pytest.mark.parametrize(
    ("window_kw", "factor"),
    [(2000.0, 1.2), (500.0, 0.8)],
    ids=["cap-up", "cap-down"],
)
def test_caiso_factor_is_clipped_to_20_percent_both_ways(window_kw: float, factor: float) -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=window_kw)
    result = run(load, at(JUN18, 14), at(JUN18, 16), "caiso-10-in-10")
    assert result.adjustment is not None
    assert result.adjustment.unclipped == pytest.approx(window_kw / CAISO_JUN18_WINDOW)
    assert result.adjustment.value == factor and result.adjustment.clipped
    expected = [factor * (CAISO_JUN18_BASE + 140), factor * (CAISO_JUN18_BASE + 150)]
    assert baselines_kw(result) == pytest.approx(expected)


def test_caiso_skips_a_day_with_an_episode_and_reaches_one_day_further() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=CAISO_JUN18_WINDOW)
    june12 = (at(date(2025, 6, 12), 10), at(date(2025, 6, 12), 11))
    result = run(load, at(JUN18, 14), at(JUN18, 16), "caiso-10-in-10", other_events=[june12])
    assert date(2025, 6, 12) not in result.selected_days
    assert date(2025, 6, 3) in result.selected_days and len(result.selected_days) == 10
    assert "event" in {e.reason for e in result.excluded_days if e.day == date(2025, 6, 12)}
    base = 1000 + (17 + 16 + 13 + 11 + 10 + 9 + 6 + 5 + 4 + 3) / 10  # 1009.4
    factor = CAISO_JUN18_WINDOW / (base + 110)
    assert baselines_kw(result) == pytest.approx([factor * (base + 140), factor * (base + 150)])


def test_caiso_skips_a_day_with_a_missing_interval() -> None:
    load = scenario(
        JUN18, (14, 15), event_kw=900, other_kw=CAISO_JUN18_WINDOW, missing=[(date(2025, 6, 16), 3)]
    )
    result = run(load, at(JUN18, 14), at(JUN18, 16), "caiso-10-in-10")
    excluded = {e.day: e for e in result.excluded_days}
    assert excluded[date(2025, 6, 16)].reason == "missing_data"
    assert "1 of 24 intervals missing" in excluded[date(2025, 6, 16)].detail
    base = 1000 + (17 + 13 + 12 + 11 + 10 + 9 + 6 + 5 + 4 + 3) / 10  # 1009.0
    factor = CAISO_JUN18_WINDOW / (base + 110)
    assert baselines_kw(result) == pytest.approx([factor * (base + 140), factor * (base + 150)])


def test_caiso_with_too_few_days_says_so_and_invents_nothing() -> None:
    # Data from Thu 12 June only: weekdays 17, 16, 13, 12 — four, and caiso needs five.
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1100, first=date(2025, 6, 12))
    result = run(load, at(JUN18, 14), at(JUN18, 16), "caiso-10-in-10", target_w=1000 * KW)
    assert result.status == "insufficient_history"
    assert "4 eligible weekday days in the 45 days before 2025-06-18" in result.reason
    assert "at least 5" in result.reason
    assert result.delivered_wh is None and result.needed_wh is None
    assert result.performance_factor is None
    assert baselines_kw(result) == [None, None]
    assert result.selected_days == ()
    assert {e.reason for e in result.excluded_days} == {"day_type", "missing_data"}
    # One more day of history (Wed 11 June) is enough.
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1100, first=date(2025, 6, 11))
    result = run(load, at(JUN18, 14), at(JUN18, 16), "caiso-10-in-10")
    assert result.status == "complete" and len(result.selected_days) == 5


def test_caiso_weekday_event_skips_the_holiday_in_its_lookback() -> None:
    jul9 = date(2025, 7, 9)
    load = scenario(jul9, (14, 15), event_kw=900, other_kw=None)
    result = run(load, at(jul9, 14), at(jul9, 16), "caiso-10-in-10")
    assert result.selected_days == days(
        (7, 8), (7, 7), (7, 3), (7, 2), (7, 1), (6, 30), (6, 27), (6, 26), (6, 25), (6, 24)
    )
    assert (date(2025, 7, 4), "day_type") in {(e.day, e.reason) for e in result.excluded_days}


def test_caiso_holiday_event_uses_four_weekend_and_holiday_days() -> None:
    jul4 = date(2025, 7, 4)  # a Friday, NERC's Independence Day
    # Weekend/holiday days before it: 29, 28, 22, 21 June: base 500 + (29+28+22+21)/4 = 525.
    load = scenario(jul4, (14, 15), event_kw=600, other_kw=525 + 110)  # factor exactly 1
    result = run(load, at(jul4, 14), at(jul4, 16), "caiso-10-in-10", target_w=620 * KW)
    assert result.selected_days == days((6, 29), (6, 28), (6, 22), (6, 21))
    assert result.adjustment is not None and result.adjustment.value == pytest.approx(1.0)
    assert baselines_kw(result) == pytest.approx([665, 675])
    assert result.delivered_mwh == pytest.approx((65 + 75) / 1000)
    assert result.needed_mwh == pytest.approx((45 + 55) / 1000)
    assert result.performance_factor_uncapped == pytest.approx(1.4)
    assert result.intervals_at_or_below_target == 2


def test_caiso_weekend_event_golden() -> None:
    jun21 = date(2025, 6, 21)  # Saturday: weekend days 15, 14, 8, 7 -> base 511
    load = scenario(jun21, (14,), event_kw=400, other_kw=511 + 110)
    result = run(load, at(jun21, 14), at(jun21, 15), "caiso-10-in-10")
    assert result.selected_days == days((6, 15), (6, 14), (6, 8), (6, 7))
    assert baselines_kw(result) == pytest.approx([651])
    assert result.delivered_mwh == pytest.approx(0.251)


def test_caiso_on_the_spring_forward_day() -> None:
    mar9 = date(2025, 3, 9)  # Sunday, 23 hours: 02:00 does not exist
    # Weekend days before: 8 Mar, 2 Mar, 1 Mar, 23 Feb: base 500 + (8+2+1+23)/4 = 508.5.
    load = scenario(mar9, (14, 15), event_kw=500, other_kw=508.5 + 110)
    day = load.values(at(mar9, 0).timestamp(), at(date(2025, 3, 10), 0).timestamp())
    assert day.size == 23
    result = run(load, at(mar9, 14), at(mar9, 16), "caiso-10-in-10")
    assert result.selected_days == days((3, 8), (3, 2), (3, 1), (2, 23))
    assert [i.interval_start for i in result.intervals] == [
        datetime(2025, 3, 9, 18, tzinfo=UTC),  # 14:00 EDT
        datetime(2025, 3, 9, 19, tzinfo=UTC),
    ]
    # Matched by wall clock: 14:00 EDT against 14:00 EST on the days before.
    assert baselines_kw(result) == pytest.approx([648.5, 658.5])


def test_caiso_on_the_fall_back_day_across_the_repeated_hour() -> None:
    nov2 = date(2025, 11, 2)  # Sunday, 25 hours: 01:00 twice
    load = scenario(nov2, (1,), event_kw=300, other_kw=None)
    day = load.values(at(nov2, 0).timestamp(), at(date(2025, 11, 3), 0).timestamp())
    assert day.size == 25
    start, end = at(nov2, 1), at(nov2, 1, fold=1) + timedelta(hours=1)  # 01:00 EDT - 02:00 EST
    result = run(load, start, end, "caiso-10-in-10", target_w=350 * KW)
    # Weekend days before: 1 Nov, 26 Oct, 25 Oct, 19 Oct; at wall hour 1, both folds:
    # 500 + (1+26+25+19)/4 + 10 = 527.75 kW.
    assert result.selected_days == days((11, 1), (10, 26), (10, 25), (10, 19))
    assert [i.interval_start for i in result.intervals] == [
        datetime(2025, 11, 2, 5, tzinfo=UTC),  # 01:00 EDT
        datetime(2025, 11, 2, 6, tzinfo=UTC),  # 01:00 EST
    ]
    # The window [start - 4 h, start - 1 h) is 21:00-24:00 EDT on Sat 1 Nov (501 + 10h kW:
    # mean 721); on each chosen day it is read on the day before: Fri 31 Oct (1031+220),
    # Sat 25 Oct (525+220), Fri 24 Oct (1024+220), Sat 18 Oct (518+220) -> mean 994.5.
    raw = 721 / ((1251 + 745 + 1244 + 738) / 4)
    assert result.adjustment is not None
    assert result.adjustment.unclipped == pytest.approx(raw)  # 0.725: clipped to 0.8
    assert result.adjustment.value == 0.8
    assert baselines_kw(result) == pytest.approx([0.8 * 527.75, 0.8 * 527.75])
    assert result.delivered_mwh == pytest.approx(2 * (422.2 - 300) / 1000)
    assert result.needed_mwh == pytest.approx(2 * (422.2 - 350) / 1000)


def test_caiso_reads_the_spring_forward_day_in_its_lookback_an_hour_later_on_the_wall() -> None:
    mar16 = date(2025, 3, 16)  # Sunday; event 02:00-03:00 EDT
    load = scenario(mar16, (2,), event_kw=400, other_kw=515)
    result = run(load, at(mar16, 2), at(mar16, 3), "caiso-10-in-10")
    assert result.selected_days == days((3, 15), (3, 9), (3, 8), (3, 2))
    # At 02:00: 15 Mar 515+20; 9 Mar has no 02:00, so its 03:00 EDT: 509+30; 8 Mar 508+20;
    # 2 Mar 502+20 -> mean 531.
    unadjusted = (535 + 539 + 528 + 522) / 4
    # Window 22:00, 23:00 (the day before) and 00:00: on the chosen days 1234, 1244, 515 /
    # 728, 738, 509 / 1227, 1237, 508 / 721, 731, 502; on the event day 735, 745, 515.
    window = (1234 + 1244 + 515 + 728 + 738 + 509 + 1227 + 1237 + 508 + 721 + 731 + 502) / 12
    factor = ((735 + 745 + 515) / 3) / window
    assert 0.8 < factor < 1.2
    assert baselines_kw(result) == pytest.approx([factor * unadjusted])


@pytest.mark.parametrize("method", ["caiso-10-in-10", "pjm-high-4-of-5"])
@pytest.mark.parametrize(
    ("event_day", "chosen", "base"),
    [
        # Weekend days before Sun 16 Mar: 15, 9 (23 hours), 8, 2 March.
        (date(2025, 3, 16), days((3, 15), (3, 9), (3, 8), (3, 2)), (15 + 9 + 8 + 2) / 4),
        # Weekend days before Sun 9 Nov: 8, 2 (25 hours), 1 Nov, 26 Oct.
        (date(2025, 11, 9), days((11, 8), (11, 2), (11, 1), (10, 26)), (8 + 2 + 1 + 26) / 4),
    ],
    ids=["spring-forward-day-in-lookback", "fall-back-day-in-lookback"],
)
def test_a_dst_day_in_the_lookback_is_read_at_the_same_wall_clock_time(
    method: str, event_day: date, chosen: tuple[date, ...], base: float
) -> None:
    # At 14:00 on the wall a DST day is 15:00 (or 13:00) hours after its midnight.
    load = scenario(event_day, (14,), event_kw=400, other_kw=None)
    result = run(load, at(event_day, 14), at(event_day, 15), method)
    if method == "caiso-10-in-10":
        assert result.selected_days == chosen
        # Window [10:00, 13:00) on the event day: its standard load, 500 + day + 110.
        factor = (500 + event_day.day + 110) / (500 + base + 110)
        assert baselines_kw(result) == pytest.approx([factor * (500 + base + 140)])
    else:  # the 3 most recent, the lowest (the oldest of them here) dropped
        kept = chosen[:2]
        mean = 500 + sum(d.day for d in kept) / 2
        offset = (500 + event_day.day + 110) - (mean + 110)
        assert result.selected_days == kept
        assert baselines_kw(result) == pytest.approx([mean + 140 + offset])


# -- pjm-high-4-of-5 ------------------------------------------------------------------------


def test_pjm_weekday_event_golden() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1232.33)
    result = run(load, at(JUN18, 14), at(JUN18, 16), "pjm-high-4-of-5", target_w=1000 * KW)
    # The 5 most recent weekdays: 17, 16, 13, 12, 11; the 11th is the lowest: dropped.
    assert result.selected_days == days((6, 17), (6, 16), (6, 13), (6, 12))
    dropped = [e for e in result.excluded_days if e.reason == "dropped_lowest"]
    assert [e.day for e in dropped] == [date(2025, 6, 11)]
    base = 1000 + (17 + 16 + 13 + 12) / 4  # 1014.5
    offset = 1232.33 - (base + 110)  # +107.83 kW over the window
    assert result.adjustment is not None and result.adjustment.kind == "offset"
    assert kw(result.adjustment.value) == pytest.approx(offset)
    assert baselines_kw(result) == pytest.approx([base + 140 + offset, base + 150 + offset])
    assert result.status == "complete"


def test_pjm_keeps_the_more_recent_day_on_a_tie() -> None:
    flat = hourly(lambda d, h, f: 1000.0, date(2025, 5, 1), date(2025, 6, 19))
    result = run(flat, at(JUN18, 14), at(JUN18, 16), "pjm-high-4-of-5")
    assert result.selected_days == days((6, 17), (6, 16), (6, 13), (6, 12))
    assert [e.day for e in result.excluded_days if e.reason == "dropped_lowest"] == [
        date(2025, 6, 11)
    ]


def test_pjm_weekend_and_holiday_events_keep_the_highest_two_of_three() -> None:
    jun21 = date(2025, 6, 21)
    result = run(
        scenario(jun21, (14,), event_kw=400, other_kw=None),
        at(jun21, 14),
        at(jun21, 15),
        "pjm-high-4-of-5",
    )
    assert result.selected_days == days((6, 15), (6, 14))  # 8 June dropped
    # Offset: the window on 21 June is the standard 521 + 110 against (514.5 + 110).
    assert baselines_kw(result) == pytest.approx([514.5 + 140 + (521 - 514.5)])
    jul4 = date(2025, 7, 4)
    result = run(
        scenario(jul4, (14,), event_kw=400, other_kw=None),
        at(jul4, 14),
        at(jul4, 15),
        "pjm-high-4-of-5",
    )
    assert result.selected_days == days((6, 29), (6, 28))  # 22 June dropped


def test_pjm_too_few_days_and_an_event_day_in_the_lookback() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1100, first=date(2025, 6, 12))
    result = run(load, at(JUN18, 14), at(JUN18, 16), "pjm-high-4-of-5")
    assert result.status == "insufficient_history" and "at least 5" in result.reason
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1100, missing=[(date(2025, 6, 13), 0)])
    june16 = (at(date(2025, 6, 16), 14), at(date(2025, 6, 16), 16))
    result = run(load, at(JUN18, 14), at(JUN18, 16), "pjm-high-4-of-5", other_events=[june16])
    reasons = {e.day: e.reason for e in result.excluded_days}
    assert reasons[date(2025, 6, 16)] == "event"
    assert reasons[date(2025, 6, 13)] == "missing_data"
    # Looked at: 17, 12, 11, 10, 9; the 9th is the lowest.
    assert result.selected_days == days((6, 17), (6, 12), (6, 11), (6, 10))


def test_pjm_on_the_fall_back_day_with_a_negative_offset() -> None:
    nov2 = date(2025, 11, 2)
    load = scenario(nov2, (1,), event_kw=300, other_kw=None)
    start, end = at(nov2, 1), at(nov2, 1, fold=1) + timedelta(hours=1)
    result = run(load, start, end, "pjm-high-4-of-5", target_w=350 * KW)
    # 1 Nov, 26 Oct, 25 Oct at wall hour 1: 511, 536, 535 -> 1 Nov dropped.
    assert result.selected_days == days((10, 26), (10, 25))
    # Window on the days before them: 25 Oct (525+10h), 24 Oct (1024+10h), h = 21..23:
    # mean 994.5; on the event day (1 Nov 21:00-24:00) 721 -> offset -273.5 kW.
    baseline = (536 + 535) / 2 - 273.5  # 262 kW, below the target
    assert baselines_kw(result) == pytest.approx([baseline, baseline])
    assert result.delivered_mwh == pytest.approx(2 * (262 - 300) / 1000)  # negative
    assert result.needed_mwh == 0
    assert result.performance_factor is None  # nothing was needed


# -- pjm-same-day ---------------------------------------------------------------------------


def test_same_day_golden_and_pending_until_its_after_window_is_over() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1200)
    result = run(load, at(JUN18, 14), at(JUN18, 16), "pjm-same-day", target_w=1000 * KW)
    # [10:00, 13:00) and [17:00, 19:00) on the event day: all 1200 kW.
    assert baselines_kw(result) == pytest.approx([1200, 1200])
    assert result.delivered_mwh == pytest.approx(0.6)
    assert result.needed_mwh == pytest.approx(0.4)
    assert result.performance_factor_uncapped == pytest.approx(1.5)
    assert result.selected_days == () and result.adjustment is None
    pending = run(load, at(JUN18, 14), at(JUN18, 16), "pjm-same-day", now=at(JUN18, 18, 30))
    assert pending.status == "pending" and "after" in pending.reason
    assert pending.delivered_wh is None


def test_same_day_with_a_missing_interval_has_gaps() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1200, missing=[(JUN18, 18)])
    result = run(load, at(JUN18, 14), at(JUN18, 16), "pjm-same-day")
    assert result.status == "gaps" and "1 of 2 intervals missing" in result.reason
    assert baselines_kw(result) == [None, None] and result.delivered_wh is None


def test_same_day_across_both_dst_changes() -> None:
    # Fall back: event 01:00 EDT - 02:00 EST; before: 21:00-24:00 EDT on 1 Nov (711, 721,
    # 731); after: [03:00, 05:00) EST on 2 Nov, the event day's other hours (450 kW).
    nov2 = date(2025, 11, 2)
    load = scenario(nov2, (1,), event_kw=300, other_kw=450)
    start, end = at(nov2, 1), at(nov2, 1, fold=1) + timedelta(hours=1)
    result = run(load, start, end, "pjm-same-day")
    assert baselines_kw(result) == pytest.approx([(711 + 721 + 731 + 450 + 450) / 5] * 2)
    # Spring forward: event 03:00-04:00 EDT; before: 22:00, 23:00 EST on 8 Mar (728, 738)
    # and 00:00 on 9 Mar (450); after: 05:00, 06:00 EDT (450, 450). Hours are absolute.
    mar9 = date(2025, 3, 9)
    load = scenario(mar9, (3,), event_kw=300, other_kw=450)
    result = run(load, at(mar9, 3), at(mar9, 4), "pjm-same-day")
    assert baselines_kw(result) == pytest.approx([(728 + 738 + 450 + 450 + 450) / 5])


def test_same_day_on_a_weekend_and_a_holiday() -> None:
    for day in (date(2025, 6, 21), date(2025, 7, 4)):
        load = scenario(day, (14,), event_kw=300, other_kw=450)
        result = run(load, at(day, 14), at(day, 15), "pjm-same-day")
        assert baselines_kw(result) == pytest.approx([450])


# -- meter-before ---------------------------------------------------------------------------


def test_meter_before_golden_live_during_the_event() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1200)
    ramp = at(JUN18, 13, 50)  # the hour of whole intervals before it: [12:00, 13:00)
    result = run(
        load, at(JUN18, 14), at(JUN18, 16), "meter-before",
        ramp_down_started_at=ramp, target_w=1000 * KW,
    )  # fmt: skip
    assert baselines_kw(result) == pytest.approx([1200, 1200])
    assert result.delivered_mwh == pytest.approx(0.6)
    live = run(
        load, at(JUN18, 14), at(JUN18, 16), "meter-before",
        ramp_down_started_at=ramp, now=at(JUN18, 15, 30),
    )  # fmt: skip
    assert live.status == "pending" and live.intervals_counted == 1
    assert live.delivered_mwh == pytest.approx(0.3)  # the 14:00 hour, over
    assert [kw(i.actual_w) for i in live.intervals] == [900, None]


def test_meter_before_without_a_ramp_or_with_a_gap() -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1200, missing=[(JUN18, 13)])
    result = run(load, at(JUN18, 14), at(JUN18, 16), "meter-before")
    assert result.status == "gaps" and "start_ramp_down" in result.reason
    result = run(
        load, at(JUN18, 14), at(JUN18, 16), "meter-before", ramp_down_started_at=at(JUN18, 14)
    )
    assert result.status == "gaps" and "1 of 1 intervals missing" in result.reason


def test_meter_before_across_both_dst_changes_and_on_a_holiday() -> None:
    nov2 = date(2025, 11, 2)
    load = scenario(nov2, (1,), event_kw=300, other_kw=None)
    # Ramp at 01:10 EST (the second 01:00): the hour before is the first 01:00 (EDT), which
    # the scenario makes the event's 300 kW — an hour before is an hour, whatever the wall.
    ramp = at(nov2, 1, 10, fold=1)
    start, end = at(nov2, 1, fold=1) + timedelta(minutes=10), at(nov2, 3)
    result = run(load, start, end, "meter-before", ramp_down_started_at=ramp)
    assert baselines_kw(result) == pytest.approx([300, 300, 300])
    mar9 = date(2025, 3, 9)  # ramp at 03:05 EDT: the hour before is 01:00 EST (509 + 10)
    load = scenario(mar9, (3,), event_kw=300, other_kw=None)
    result = run(
        load, at(mar9, 3, 5), at(mar9, 4), "meter-before", ramp_down_started_at=at(mar9, 3, 5)
    )
    assert baselines_kw(result) == pytest.approx([519])
    jul4 = date(2025, 7, 4)
    load = scenario(jul4, (14,), event_kw=300, other_kw=450)
    result = run(
        load, at(jul4, 14), at(jul4, 15), "meter-before", ramp_down_started_at=at(jul4, 14)
    )
    assert baselines_kw(result) == pytest.approx([450])


# -- every method ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_a_flat_load_with_no_curtailment_delivers_nothing(method: str) -> None:
    """From raw 1-minute samples through intervals: 1 MW every minute of 50 days."""
    since = at(date(2025, 5, 1), 0)
    until = at(date(2025, 6, 20), 0)
    samples = []
    t = since
    while t < until:
        samples.append((t, 1e6))
        t += timedelta(minutes=1)
    load = load_from_samples(
        samples, site="s1", feed="f1", tz=NY, since=since, until=until, resolution="1h"
    )
    result = run(
        load, at(JUN18, 14, 20), at(JUN18, 15, 40), method,
        target_w=0.8e6, ramp_down_started_at=at(JUN18, 14, 15),
    )  # fmt: skip
    assert result.status == "complete", result.reason
    assert baselines_kw(result) == pytest.approx([1000, 1000])
    assert result.delivered_wh == pytest.approx(0, abs=1e-6)
    # Needed: 200 kW over the 80 minutes of the target interval (partial hours by overlap).
    assert result.needed_mwh == pytest.approx(0.2 * 80 / 60)
    assert result.performance_factor == pytest.approx(0, abs=1e-9)
    assert result.intervals_at_or_below_target == 0


@pytest.mark.parametrize("method", METHODS)
def test_an_event_not_yet_over_is_pending_and_a_missing_event_interval_is_a_gap(
    method: str,
) -> None:
    load = scenario(JUN18, (14, 15), event_kw=900, other_kw=1200, missing=[(JUN18, 15)])
    kwargs = {"ramp_down_started_at": at(JUN18, 14)}
    result = run(load, at(JUN18, 14), at(JUN18, 16), method, **kwargs)
    assert result.status == "gaps", result.reason
    assert result.intervals_missing == 1 and result.intervals_counted == 1
    assert "1 of 2 event intervals have no actual load" in result.reason
    result = run(load, at(JUN18, 14), None, method, now=at(JUN18, 14, 30), **kwargs)
    assert result.status == "pending" and result.event_end is None


def test_standard_load_is_what_the_helpers_say() -> None:
    """The shape the hand computations use (guards the helper, not the code)."""
    assert standard_kw(date(2025, 6, 18), 14) == 1000 + 18 + 140
    assert standard_kw(date(2025, 7, 4), 0) == 504
