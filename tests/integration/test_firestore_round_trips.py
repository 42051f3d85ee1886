"""Round trips to Firestore, counted on the wire by a gRPC client interceptor.

The real google-cloud-firestore client talks to the emulator; the interceptor sees every
RPC it makes. A new event must cost exactly one RPC (Commit with an exists=false
precondition), and a redelivery exactly one (answered ALREADY_EXISTS).
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from tests.harness import (
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


def test_receiver_hot_path_is_one_store_round_trip(counted_store) -> None:
    store, counter = counted_store
    assert_receiver_hot_path_is_one_round_trip(store, counter.total)
