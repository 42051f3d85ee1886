"""Schedule semantics, without gRPC: most recent wins, null target, open end, all feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.schedule import Schedule

T0 = datetime(2025, 10, 24, 17, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def target(
    start: datetime,
    end: datetime | None = None,
    mw: float | None = 6.5,
    feeds: tuple[str, ...] = (),
    correlation_id: str = "c",
) -> dict[str, Any]:
    return {
        "start": start,
        "end": end,
        "value_watts": None if mw is None else mw * 1e6,
        "requested_value": mw,
        "requested_unit": 3,
        "best_effort": True,
        "feed_tags": feeds,
        "correlation_id": correlation_id,
    }


def test_nothing_scheduled_means_no_winner() -> None:
    assert Schedule().winner("main", T0) is None


def test_interval_is_half_open_and_open_end_lasts_until_replaced() -> None:
    schedule = Schedule()
    schedule.add([target(T0, T0 + 10 * MINUTE, correlation_id="bounded")])
    schedule.add([target(T0 + 20 * MINUTE, correlation_id="open")])
    assert schedule.winner("main", T0 - timedelta(seconds=1)) is None
    assert schedule.winner("main", T0).correlation_id == "bounded"
    assert schedule.winner("main", T0 + 10 * MINUTE) is None
    assert schedule.winner("main", T0 + 1000 * MINUTE).correlation_id == "open"


def test_most_recently_scheduled_wins_even_if_it_starts_earlier() -> None:
    schedule = Schedule()
    schedule.add([target(T0 + 5 * MINUTE, T0 + 10 * MINUTE, correlation_id="first")])
    schedule.add([target(T0, T0 + 7 * MINUTE, correlation_id="second")])
    assert schedule.winner("main", T0 + 6 * MINUTE).correlation_id == "second"
    # Where the later one no longer covers, the earlier one shows through again.
    assert schedule.winner("main", T0 + 8 * MINUTE).correlation_id == "first"


def test_within_one_request_later_entries_win() -> None:
    schedule = Schedule()
    schedule.add([target(T0, correlation_id="a"), target(T0, correlation_id="b")])
    assert schedule.winner("main", T0).correlation_id == "b"


def test_null_target_wins_and_means_default() -> None:
    schedule = Schedule()
    schedule.add([target(T0, correlation_id="curtail")])
    schedule.add([target(T0 + MINUTE, T0 + 2 * MINUTE, mw=None, correlation_id="reset")])
    winner = schedule.winner("main", T0 + MINUTE)
    assert winner.correlation_id == "reset"
    assert winner.value_watts is None
    assert schedule.winner("main", T0 + 3 * MINUTE).correlation_id == "curtail"


def test_feed_tags_limit_a_target_and_none_means_all() -> None:
    schedule = Schedule()
    schedule.add([target(T0, correlation_id="all")])
    schedule.add([target(T0, feeds=("backup",), correlation_id="backup-only")])
    assert schedule.winner("main", T0).correlation_id == "all"
    assert schedule.winner("backup", T0).correlation_id == "backup-only"


def test_segments_resolve_overlaps_clip_and_merge() -> None:
    schedule = Schedule()
    schedule.add([target(T0, T0 + 60 * MINUTE, correlation_id="long")])
    schedule.add([target(T0 + 10 * MINUTE, T0 + 20 * MINUTE, correlation_id="short")])
    schedule.add([target(T0 + 90 * MINUTE, correlation_id="open")])
    segments = schedule.segments("main", T0 + 5 * MINUTE, None)
    assert [(s.start, s.end, s.target.correlation_id) for s in segments] == [
        (T0 + 5 * MINUTE, T0 + 10 * MINUTE, "long"),  # clipped to the requested start
        (T0 + 10 * MINUTE, T0 + 20 * MINUTE, "short"),
        (T0 + 20 * MINUTE, T0 + 60 * MINUTE, "long"),
        # 60..90 min: nothing scheduled, left out
        (T0 + 90 * MINUTE, None, "open"),
    ]
    clipped = schedule.segments("main", T0, T0 + 15 * MINUTE)
    assert [(s.start, s.end) for s in clipped] == [
        (T0, T0 + 10 * MINUTE),
        (T0 + 10 * MINUTE, T0 + 15 * MINUTE),
    ]


def test_segments_of_one_target_split_by_nothing_are_one() -> None:
    schedule = Schedule()
    schedule.add([target(T0, T0 + 10 * MINUTE, feeds=("backup",))])
    schedule.add([target(T0 + 2 * MINUTE, T0 + 3 * MINUTE, feeds=("main",))])
    assert len(schedule.segments("backup", T0 - MINUTE, T0 + 20 * MINUTE)) == 1
