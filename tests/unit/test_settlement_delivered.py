"""Delivered figures: partial intervals by overlap, range totals that add up, episodes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridhook.episodes import derive_episodes
from gridhook.events import normalise, rfc3339
from gridhook.settlement import (
    SettlementInputError,
    data_range,
    range_totals,
    settle,
    settle_episode,
)
from tests.unit.settlement_helpers import KW, at, scenario

JUN18 = date(2025, 6, 18)
LATER = datetime(2025, 12, 31, tzinfo=UTC)
# Baseline 1200 kW (pjm-same-day: the event day's other hours), actual 900 kW 14:00-16:00.
LOAD = scenario(JUN18, (14, 15), event_kw=900, other_kw=1200)


def test_partial_intervals_weigh_by_their_overlap_with_the_target_interval() -> None:
    result = settle(
        LOAD, event_start=at(JUN18, 14, 20), event_end=at(JUN18, 15, 40), now=LATER,
        method="pjm-same-day", target_w=1000 * KW,
    )  # fmt: skip
    assert [i.counted_s for i in result.intervals] == [40 * 60, 40 * 60]
    assert result.delivered_mwh == pytest.approx(0.3 * 80 / 60)  # 300 kW for 80 minutes
    assert result.needed_mwh == pytest.approx(0.2 * 80 / 60)
    first = range_totals([result], at(JUN18, 0), at(JUN18, 15))
    second = range_totals([result], at(JUN18, 15), at(JUN18, 23))
    assert first.delivered_mwh == pytest.approx(0.3 * 40 / 60)
    assert second.delivered_mwh == pytest.approx(0.3 * 40 / 60)
    assert first.episodes == second.episodes == 1
    outside = range_totals([result], at(JUN18, 16), at(JUN18, 23))
    assert (outside.episodes, outside.delivered_wh, outside.performance_factor) == (0, 0, None)
    assert first.to_dict()["statuses"] == {"complete": 1}


@settings(max_examples=80)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 20 * 60), st.integers(0, 5 * 60)), min_size=1, max_size=5
    ),
    cuts=st.lists(st.integers(-60, 26 * 60), min_size=3, max_size=3),
)
def test_totals_of_adjacent_ranges_add_up(events: list[tuple[int, int]], cuts: list[int]) -> None:
    """Any events (minutes into 18 June, any length, partial intervals), any two adjacent
    ranges: their totals add up to the total of their union."""
    midnight = at(JUN18, 0)
    results = [
        settle(
            LOAD,
            event_start=midnight + timedelta(minutes=a),
            event_end=midnight + timedelta(minutes=a + length),
            now=LATER,
            method="pjm-same-day",
            target_w=1000 * KW,
        )
        for a, length in events
    ]
    a, b, c = (midnight + timedelta(minutes=m) for m in sorted(cuts))
    whole, left, right = (range_totals(results, x, y) for x, y in ((a, c), (a, b), (b, c)))
    assert left.delivered_wh + right.delivered_wh == pytest.approx(whole.delivered_wh, abs=1e-6)
    assert left.needed_wh + right.needed_wh == pytest.approx(whole.needed_wh, abs=1e-6)


def test_settling_an_episode_derived_from_events() -> None:
    def event(name: str, received: datetime, calc: float, **extra: Any) -> Any:
        payload = {
            "event": name,
            "feed_tag": "f1",
            "start_time": rfc3339(at(JUN18, 14)),
            "end_time": rfc3339(at(JUN18, 16)),
            "strategy": "best_effort",
            "target_load": {"value": 1.0, "unit": "mw"},
            "prev_target_load": {"value": 2.0, "unit": "mw"},
            "calculated_load": {"value": calc, "unit": "mw"},
            "compliant": True,
            "correlation_id": "c1",
            **extra,
        }
        return normalise(payload, received)

    events = [
        event("start_ramp_down", at(JUN18, 13, 55), 1.2),
        event("end_ramp_down", at(JUN18, 13, 58), 0.9),
        event("start_ramp_up", at(JUN18, 16), 0.9),
        event("end_ramp_up", at(JUN18, 16, 3), 1.2),
    ]
    (episode,) = derive_episodes(events, now=LATER, ramp_deadline=600)
    result = settle_episode(
        LOAD, episode, now=LATER, method="meter-before", other_episodes=[episode]
    )
    assert result.episode_id == episode.episode_id and result.target_w == 1e6
    assert result.status == "complete"
    # meter-before: ramp at 13:55 -> the hour [12:00, 13:00) at 1200 kW.
    assert result.delivered_mwh == pytest.approx(0.6) and result.needed_mwh == pytest.approx(0.4)
    assert result.to_dict()["performance_factor"] == 1.0
    with pytest.raises(SettlementInputError, match="feed 'f1'"):
        settle_episode(replace(LOAD, feed="f2"), episode, now=LATER)


def test_bad_inputs_raise_a_settlement_input_error_naming_them() -> None:
    with pytest.raises(SettlementInputError, match="unknown baseline method 'caiso'"):
        settle(LOAD, event_start=at(JUN18, 14), event_end=at(JUN18, 15), now=LATER, method="caiso")
    with pytest.raises(SettlementInputError, match=r"ends .* before it starts"):
        settle(LOAD, event_start=at(JUN18, 14), event_end=at(JUN18, 13), now=LATER)
    with pytest.raises(SettlementInputError, match="no time zone"):
        settle(LOAD, event_start=datetime(2025, 6, 18, 14), event_end=None, now=LATER)


def test_data_range_covers_what_each_method_reads() -> None:
    since, until = data_range(
        method="caiso-10-in-10", event_start=at(JUN18, 14), event_end=at(JUN18, 16), now=LATER
    )
    assert since <= at(JUN18, 10) - timedelta(days=46) and until >= at(JUN18, 19)
    since, until = data_range(
        method="meter-before", event_start=at(JUN18, 14), event_end=None, now=at(JUN18, 15),
        ramp_down_started_at=at(JUN18, 13, 50),
    )  # fmt: skip
    assert since <= at(JUN18, 12) and until >= at(JUN18, 16)
