"""Round trips to Firestore, counted on the wire by a gRPC client interceptor.

The real google-cloud-firestore client talks to the emulator; the interceptor sees every
RPC it makes. A new event must cost exactly one RPC (Commit with an exists=false
precondition), and a redelivery exactly one (answered ALREADY_EXISTS).
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gridhook.events import normalise
from tests.harness import (
    SEED_PAYLOAD,
    assert_one_round_trip_per_add,
    assert_receiver_hot_path_is_one_round_trip,
    counted_firestore_store,
)

pytestmark = pytest.mark.firestore


@pytest.fixture
def counted_store(firestore_env):
    store, counter = counted_firestore_store(f"rt-{uuid.uuid4().hex[:10]}")
    yield store, counter
    store.close()


def test_one_round_trip_per_new_event_and_per_duplicate(counted_store) -> None:
    store, counter = counted_store
    assert_one_round_trip_per_add(store, counter.total)
    assert counter.calls == Counter({"Commit": 10})


@pytest.mark.parametrize("site", ["default", "phx1"])
def test_receiver_hot_path_is_one_store_round_trip(counted_store, site: str) -> None:
    store, counter = counted_store
    assert_receiver_hot_path_is_one_round_trip(store, counter.total, site)


def test_latest_by_feed_costs_two_queries_per_feed(counted_store) -> None:
    store, counter = counted_store
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(30):
        payload = {**copy.deepcopy(SEED_PAYLOAD), "feed_tag": f"feed_{i % 3}", "seq": i}
        store.add_event(normalise(payload, t0 + timedelta(seconds=i)))
    counter.calls.clear()
    latest = store.latest_by_feed()
    assert {tag: e.payload["seq"] for tag, e in latest.items()} == {
        "feed_0": 27,
        "feed_1": 28,
        "feed_2": 29,
    }
    # Skip to the next feed tag, then that feed's newest event; one more finds no feed.
    assert counter.calls == Counter({"RunQuery": 2 * 3 + 1})
