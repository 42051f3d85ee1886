"""Settlement from the store (``gridhook.intervals.settle``) on every backend: each listed
episode settled on its feed's load read once, meter data used where there is some (and
said so, the samples settled beside it), a feed without history says so instead of 0,
and totals over adjacent ranges add up to the union's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from gridhook.intervals.settle import SettlementRun, baseline_for, settle_range
from gridhook.settlement import SettlementInputError
from gridhook.sites import Site
from gridhook.store import EventStore, open_store
from tests.settlement_scenario import (
    CURTAILMENTS,
    METER_FACTOR,
    NOW,
    RANGE_SINCE,
    RANGE_UNTIL,
    TIMEZONE,
    settlement_store_url,
)

__all__ = ["settlement_store_url"]  # the fixture, used by name

SITE = Site(name="default", timezone=TIMEZONE)
DEADLINE = timedelta(minutes=30)


@pytest.fixture
def seeded(settlement_store_url: str) -> Iterator[EventStore]:
    store = open_store(settlement_store_url, timeout_seconds=60.0)
    yield store
    store.close()


def _run(
    store: EventStore,
    since: datetime = RANGE_SINCE,
    until: datetime = RANGE_UNTIL,
    **kw: Any,
) -> SettlementRun:
    return settle_range(
        store,
        [SITE],
        since=since,
        until=until,
        now=NOW,
        method=kw.pop("method", "caiso-10-in-10"),
        ramp_deadline=DEADLINE,
        min_coverage=0.8,
        **kw,
    )


def test_every_listed_episode_is_settled_on_its_feed(seeded: EventStore) -> None:
    run = _run(seeded)
    site = run.sites["default"]
    assert sorted(site.feeds) == ["aux", "main", "young"]
    main = site.feeds["main"]
    assert [s.event_start for s in main.settlements] == [
        c.start for c in CURTAILMENTS if c.feed == "main"
    ]
    assert {s.status for s in main.settlements} == {"complete"}
    assert {s.source for s in main.settlements} == {"samples"} and main.shadow == ()
    # Held at 7 MW against the weekday shape at 14:00 and 15:00 (every weekday alike, so
    # the day-of factor is 1); it needed exactly what it delivered: a factor of 1.
    shape = [10.0 * (1 + 0.05 * math.sin((h - 8) / 24 * 2 * math.pi)) for h in (14, 15)]
    for s in main.settlements:
        assert s.delivered_mwh == pytest.approx(sum(b - 7.0 for b in shape), rel=1e-9)
        assert s.adjustment is not None and s.adjustment.value == pytest.approx(1.0)
        assert s.performance_factor == pytest.approx(1.0, abs=0.01)
        assert s.intervals_at_or_below_target == 2
        # The other curtailments' days are never baseline days.
        others = {c.start.date() for c in CURTAILMENTS if c.feed == "main"}
        assert not others & set(s.selected_days)
    # The feed's intervals were read once for all three episodes.
    assert main.load is not None and main.load.source == "samples"
    assert main.load.rollup_hours > 24 * 14


def test_a_feed_with_meter_data_is_settled_on_it_and_says_so(seeded: EventStore) -> None:
    aux = _run(seeded).sites["default"].feeds["aux"]
    (settled,) = aux.settlements
    assert settled.source == "meter" and aux.load is not None and aux.load.source == "meter"
    (shadow,) = aux.shadow
    assert shadow.source == "samples" and shadow.episode_id == settled.episode_id
    # The meter reads 2 % above the samples: its baseline is 2 % higher.
    assert settled.intervals[0].baseline_w == pytest.approx(
        shadow.intervals[0].baseline_w * METER_FACTOR, rel=1e-6
    )
    samples_only = _run(seeded, source="samples").sites["default"].feeds["aux"]
    assert samples_only.settlements[0].source == "samples" and samples_only.shadow == ()


def test_too_little_history_is_a_status_with_its_reason_not_a_zero(seeded: EventStore) -> None:
    young = _run(seeded).sites["default"].feeds["young"]
    (settled,) = young.settlements
    assert settled.status == "insufficient_history"
    assert "eligible" in settled.reason
    assert settled.delivered_mwh is None and settled.performance_factor is None
    assert young.totals.statuses == {"insufficient_history": 1}
    assert young.totals.delivered_mwh == 0.0  # nothing counted, and the status says why


@pytest.mark.parametrize("cut_hours", [24 + 18.5, 2 * 24 + 18, 3 * 24 + 10])
def test_totals_over_adjacent_ranges_add_up_to_the_union(
    seeded: EventStore, cut_hours: float
) -> None:
    cut = RANGE_SINCE + timedelta(hours=cut_hours)  # mid-curtailment, at an hour, between
    whole, before, after = _run(seeded), _run(seeded, until=cut), _run(seeded, since=cut)
    for key in ("delivered_wh", "needed_wh"):
        parts = getattr(before.totals, key) + getattr(after.totals, key)
        assert parts == pytest.approx(getattr(whole.totals, key), rel=1e-9)
        for feed in ("main", "aux"):
            sides = [r.feed("default", feed) for r in (before, after)]
            summed = sum(getattr(f.totals, key) for f in sides if f is not None)
            whole_feed = whole.feed("default", feed)
            assert whole_feed is not None
            assert summed == pytest.approx(getattr(whole_feed.totals, key), rel=1e-9)
    assert whole.totals.delivered_mwh > 0


def test_only_the_feeds_asked_for(seeded: EventStore) -> None:
    run = _run(seeded, feeds=["aux", "nothing"])
    assert sorted(run.sites["default"].feeds) == ["aux", "nothing"]
    nothing = run.sites["default"].feeds["nothing"]
    assert nothing.settlements == () and nothing.load is None and nothing.totals.episodes == 0


def test_one_events_baseline_takes_its_episodes_target(seeded: EventStore) -> None:
    c = CURTAILMENTS[1]
    run = baseline_for(
        seeded,
        SITE,
        "main",
        event_start=c.start,
        event_end=c.end,
        now=NOW,
        method="pjm-high-4-of-5",
        ramp_deadline=DEADLINE,
        min_coverage=0.8,
    )
    s = run.settlement
    assert run.episode is not None and s.episode_id == run.episode.episode_id
    assert s.target_w == c.target_w and s.status == "complete" and s.method == "pjm-high-4-of-5"
    assert len(s.selected_days) == 4
    assert any(e.reason == "event" for e in s.excluded_days)  # the day before held one
    assert len(s.intervals) == 2


def test_a_bad_method_or_source_is_refused(seeded: EventStore) -> None:
    with pytest.raises(SettlementInputError, match="method"):
        _run(seeded, method="guess")
    with pytest.raises(SettlementInputError, match="source"):
        _run(seeded, source="both")
