"""SQLiteEventStore.add_events: many events in one transaction, insert-if-absent like
add_event (the contract suite's rules, on the one backend that loads history in bulk)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.events import StoredEvent, normalise
from gridhook.store import AddOutcome, EventQuery, StoreUnavailable, iter_events
from gridhook.store.sqlite import SQLiteEventStore
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_event(i: int, feed: str = "feed_a", corr: str = "c1") -> StoredEvent:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload.update(feed_tag=feed, correlation_id=corr, seq=i)
    return normalise(payload, T0 + timedelta(seconds=i))


@pytest.fixture
def store(tmp_path: Path):
    opened = SQLiteEventStore(tmp_path / "events.db")
    yield opened
    opened.close()


def test_bulk_insert_counts_the_new_and_reads_back_like_single_inserts(
    store: SQLiteEventStore,
) -> None:
    events = [make_event(i, feed=f"feed_{i % 2}") for i in range(250)]
    assert store.add_events(iter(events)) == 250  # any iterable: a generator streams
    assert list(iter_events(store, EventQuery(limit=100))) == events
    for e in events[:3]:
        assert store.get_event(e.event_id) == e
    assert {t: e.event_id for t, e in store.latest_by_feed().items()} == {
        "feed_0": events[248].event_id,
        "feed_1": events[249].event_id,
    }


def test_bulk_insert_skips_what_is_stored_and_keeps_the_first_receipt(
    store: SQLiteEventStore,
) -> None:
    first = make_event(1)
    assert store.add_event(first) is AddOutcome.ACCEPTED
    redelivered = normalise(copy.deepcopy(first.payload), T0 + timedelta(hours=1))
    fresh = [make_event(i) for i in range(2, 6)]
    # A stored event, a new one twice in the same batch, then the others.
    assert store.add_events([redelivered, fresh[0], fresh[0], *fresh[1:]]) == 4
    assert store.add_events(fresh) == 0
    assert store.add_events([]) == 0
    stored = list(iter_events(store, EventQuery()))
    assert [e.event_id for e in stored] == [first.event_id, *(e.event_id for e in fresh)]
    assert stored[0].received_at == first.received_at
    assert store.add_event(fresh[2]) is AddOutcome.DUPLICATE


def test_a_failing_batch_keeps_nothing_and_the_store_goes_on(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    good = [make_event(i) for i in range(3)]
    # A payload that cannot be stored (NaN is not JSON) after two good events.
    bad = dataclasses.replace(make_event(3), payload={"seq": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        store.add_events([*good[:2], bad])
    assert list(iter_events(store, EventQuery())) == []
    assert store.add_events(good) == 3
    # A store that cannot be written raises the store's one error, not sqlite3's.
    other = SQLiteEventStore(tmp_path / "events.db", timeout_seconds=0.1)
    try:
        store._connection().execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with pytest.raises(StoreUnavailable):
            other.add_events([make_event(9)])
    finally:
        store._connection().execute("ROLLBACK")
        other.close()
    assert len(list(iter_events(store, EventQuery()))) == 3
