"""The scale benchmark's history is real data: payloads that pass the schema, four events
per curtailment, episodes gridhook derives as complete, samples between them. (The bench
measures on it; these check that what it measures is what gridhook would store.)"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from gridhook.episodes import derive_episodes
from gridhook.schema import violations
from tests.bench.scale_data import (
    DATA_NOW,
    FEEDS,
    RECENT_DAYS,
    RECENT_PER_FEED_PER_DAY,
    history,
    recent_event_count,
    samples,
)


def test_a_history_has_the_size_asked_for_and_the_same_recent_period() -> None:
    recent = recent_event_count()
    assert recent == len(FEEDS) * RECENT_PER_FEED_PER_DAY * RECENT_DAYS * 4
    for total in (recent, recent + 400, recent + 402):  # not a multiple of 4 either
        events = list(history(total))
        assert len(events) == total == len({e.event_id for e in events})
        assert [e.event_id for e in events[-recent:]] == [
            e.event_id for e in history(recent)
        ]  # the last RECENT_DAYS are the same whatever the size


def test_events_are_valid_payloads_in_receipt_order_four_per_curtailment() -> None:
    events = list(history(recent_event_count() + 4000))
    assert all(violations(e.payload) == [] for e in events)
    assert events[-1].received_at < DATA_NOW
    for feed in FEEDS:
        mine = [e for e in events if e.feed_tag == feed]
        assert [e.received_at for e in mine] == sorted(e.received_at for e in mine)
    per_curtailment = Counter(e.correlation_id for e in events)
    assert set(per_curtailment.values()) == {4}
    # Older curtailments are denser than recent ones: one per feed every 30 minutes.
    older = events[0].received_at
    assert DATA_NOW - timedelta(days=RECENT_DAYS) - older < timedelta(days=21)


def test_gridhook_derives_complete_episodes_some_targets_not_met() -> None:
    week = [e for e in history(recent_event_count()) if e.received_at >= DATA_NOW - timedelta(7)]
    episodes = derive_episodes(week, now=DATA_NOW, ramp_deadline=timedelta(minutes=30))
    assert len(episodes) == len(FEEDS) * RECENT_PER_FEED_PER_DAY * 7
    assert {e.status for e in episodes} == {"complete"} and not any(e.flags for e in episodes)
    verdicts = Counter(e.compliant for e in episodes)
    assert verdicts[True] > verdicts[False] > 0


def test_samples_every_five_minutes_follow_the_load() -> None:
    since = DATA_NOW - timedelta(days=2)
    found = list(samples(since))
    assert len(found) == len(FEEDS) * 2 * 24 * 12
    for feed, default_mw in FEEDS.items():
        mine = [s for s in found if s.feed_tag == feed]
        loads = {round(s.calculated_w / 1e6, 3) for s in mine}
        assert default_mw in loads and min(loads) < default_mw * 0.85  # curtailed at times
        assert all(s.expires_at > DATA_NOW + timedelta(days=365) for s in mine)
