"""The EventStore contract: every backend (SQLite, Firestore emulator) must pass it all."""

from __future__ import annotations

import concurrent.futures
import copy
from datetime import UTC, datetime, timedelta

import pytest

from gridhook.events import normalise
from gridhook.store import (
    AddOutcome,
    DriftRecord,
    EventQuery,
    EventStore,
    InvalidCursor,
    QuarantinedPayload,
    SubscriptionRecord,
    iter_events,
)
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_event(i: int, feed: str = "feed_a", corr: str = "c1", at: datetime | None = None):
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload.update(feed_tag=feed, correlation_id=corr, seq=i)
    return normalise(payload, at or T0 + timedelta(seconds=i))


def test_add_then_duplicate(store: EventStore) -> None:
    event = make_event(1)
    assert store.add_event(event) is AddOutcome.ACCEPTED
    # A redelivery arrives later: it is the same event and is not stored again.
    again = normalise(copy.deepcopy(event.payload), T0 + timedelta(hours=1))
    assert again.event_id == event.event_id
    assert store.add_event(again) is AddOutcome.DUPLICATE
    page = store.events(EventQuery())
    assert [e.event_id for e in page.events] == [event.event_id]
    # The first receipt is kept.
    assert page.events[0].received_at == event.received_at


def test_round_trip_keeps_payload_and_derived_fields(store: EventStore) -> None:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["future_field"] = {"nested": [[1, 2], {"": "empty key"}], "n": None}
    event = normalise(payload, T0)
    store.add_event(event)
    got = store.get_event(event.event_id)
    assert got == event
    assert got.payload["future_field"]["nested"][0] == [1, 2]
    assert got.target_w == 6.5e6
    assert got.start_time == datetime(2025, 10, 24, 17, tzinfo=UTC)
    assert store.get_event("0" * 32) is None


def test_concurrent_deliveries_of_one_event_store_it_once(store: EventStore) -> None:
    event = make_event(7)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: store.add_event(event), range(16)))
    assert outcomes.count(AddOutcome.ACCEPTED) == 1
    assert outcomes.count(AddOutcome.DUPLICATE) == 15
    assert len(store.events(EventQuery()).events) == 1


def test_filters_by_feed_correlation_and_time(store: EventStore) -> None:
    events = [
        make_event(0, "feed_a", "c1"),
        make_event(1, "feed_b", "c1"),
        make_event(2, "feed_a", "c2"),
        make_event(3, "feed_b", "c2"),
        make_event(4, "feed_a", "c1"),
    ]
    for e in events:
        store.add_event(e)

    def ids(**kwargs) -> list[int]:
        return [e.payload["seq"] for e in store.events(EventQuery(**kwargs)).events]

    assert ids() == [0, 1, 2, 3, 4]
    assert ids(feed_tag="feed_a") == [0, 2, 4]
    assert ids(correlation_id="c2") == [2, 3]
    assert ids(feed_tag="feed_a", correlation_id="c1") == [0, 4]
    assert ids(since=T0 + timedelta(seconds=2)) == [2, 3, 4]  # inclusive
    assert ids(until=T0 + timedelta(seconds=2)) == [0, 1]  # exclusive
    assert ids(
        feed_tag="feed_b", since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3)
    ) == [1]
    assert ids(feed_tag="nope") == []


def test_paging_visits_every_event_once_in_order(store: EventStore) -> None:
    # Several events share a receipt time: the event id breaks the tie.
    events = [make_event(i, at=T0 + timedelta(seconds=i // 3)) for i in range(11)]
    for e in events:
        store.add_event(e)
    expected = sorted(events, key=lambda e: (e.received_at, e.event_id))
    first = store.events(EventQuery(limit=4))
    assert len(first.events) == 4 and first.next_cursor
    seen = list(iter_events(store, EventQuery(limit=4)))
    assert [e.event_id for e in seen] == [e.event_id for e in expected]
    # Paging composes with filters.
    feed_pages = list(
        iter_events(store, EventQuery(feed_tag="feed_a", limit=2, since=T0 + timedelta(seconds=1)))
    )
    assert [e.event_id for e in feed_pages] == [
        e.event_id for e in expected if e.received_at >= T0 + timedelta(seconds=1)
    ]


def test_last_page_has_no_cursor_and_bad_cursor_is_rejected(store: EventStore) -> None:
    for i in range(3):
        store.add_event(make_event(i))
    assert store.events(EventQuery(limit=3)).next_cursor is None
    with pytest.raises(InvalidCursor):
        store.events(EventQuery(cursor="not-a-cursor"))


def test_latest_by_feed(store: EventStore) -> None:
    assert store.latest_by_feed() == {}
    for e in [make_event(0, "feed_a"), make_event(5, "feed_b"), make_event(3, "feed_a")]:
        store.add_event(e)
    # An event without a feed tag belongs to no feed.
    no_feed = dict(SEED_PAYLOAD)
    del no_feed["feed_tag"]
    store.add_event(normalise(no_feed, T0 + timedelta(seconds=9)))
    latest = store.latest_by_feed()
    assert sorted(latest) == ["feed_a", "feed_b"]
    assert latest["feed_a"].payload["seq"] == 3
    assert latest["feed_b"].payload["seq"] == 5


def _quarantined(now: datetime, body: str, days: float) -> QuarantinedPayload:
    return QuarantinedPayload(
        quarantine_id=f"q{abs(hash(body)) % 10**8}",
        received_at=now,
        expires_at=now + timedelta(days=days),
        reason="schema_violation",
        errors=[{"path": "/event", "message": "'x' is required"}],
        body=body,
        body_bytes=len(body),
        body_sha256="0" * 64,
    )


def test_quarantine_keeps_unexpired_newest_first(store: EventStore) -> None:
    now = datetime.now(UTC)
    store.quarantine(_quarantined(now - timedelta(minutes=2), '{"a":1}', 7))
    store.quarantine(_quarantined(now - timedelta(minutes=1), '{"b":2}', 7))
    store.quarantine(_quarantined(now - timedelta(days=9), '{"old":1}', -2))  # expired
    items = store.quarantined().items
    assert [q.body for q in items] == ['{"b":2}', '{"a":1}']
    assert items[0].errors == [{"path": "/event", "message": "'x' is required"}]
    # Quarantine is not the event log.
    assert store.events(EventQuery()).events == []


def test_subscription_records_upsert_and_delete(store: EventStore) -> None:
    record = SubscriptionRecord(
        subscription_id="s1",
        url="https://example.test/nvgrid/webhook?token=REDACTED",
        events=("start_ramp_down", "end_ramp_down"),
        token_fingerprint="abc123",
        desired=True,
        registered=True,
        last_success=T0,
    )
    store.put_subscription(record)
    failed = SubscriptionRecord(
        **{
            **record.to_dict(),
            "events": record.events,
            "last_attempt": T0,
            "last_success": T0,
            "last_error": "boom",
            "consecutive_failures": 2,
        }
    )
    store.put_subscription(failed)
    assert store.subscriptions() == [failed]
    store.delete_subscription("s1")
    assert store.subscriptions() == []


def test_drift_records_newest_first(store: EventStore) -> None:
    for i in range(3):
        store.add_drift(
            DriftRecord(
                drift_id=f"d{i}",
                feed_tag="feed_a",
                detected_at=T0 + timedelta(minutes=i),
                message=f"drift {i}",
                dps_view={"target_w": 5e6},
                our_view={"phase": "steady"},
            )
        )
    assert [d.drift_id for d in store.drift()] == ["d2", "d1", "d0"]
    assert store.drift(limit=1)[0].dps_view == {"target_w": 5e6}


def test_event_query_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        EventQuery(limit=0)
    with pytest.raises(ValueError, match="timezone"):
        EventQuery(since=datetime(2026, 1, 1))
