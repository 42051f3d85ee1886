"""Round trips to Firestore, counted on the wire by a gRPC client interceptor.

The real google-cloud-firestore client talks to the emulator; the interceptor sees every
RPC it makes. A new event must cost exactly one RPC (Commit with an exists=false
precondition), and a redelivery exactly one (answered ALREADY_EXISTS).
"""

from __future__ import annotations

import uuid
from collections import Counter

import grpc
import pytest
from google.cloud import firestore

from gridhook.store.firestore import FirestoreEventStore
from tests.harness import assert_one_round_trip_per_add, assert_receiver_hot_path_is_one_round_trip

pytestmark = pytest.mark.firestore


class CountingInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.calls[client_call_details.method.rsplit("/", 1)[-1]] += 1
        return continuation(client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        self.calls[client_call_details.method.rsplit("/", 1)[-1]] += 1
        return continuation(client_call_details, request)

    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def counted_store(firestore_env) -> tuple[FirestoreEventStore, CountingInterceptor]:
    project = f"rt-{uuid.uuid4().hex[:10]}"
    client = firestore.Client(project=project, database="gridhook")
    counter = CountingInterceptor()
    make_channel = client._emulator_channel
    # Test-only instrumentation: wrap the channel the client builds for the emulator.
    client._emulator_channel = lambda transport: grpc.intercept_channel(
        make_channel(transport), counter
    )
    store = FirestoreEventStore(project, "gridhook", client=client)
    yield store, counter
    store.close()


def test_one_round_trip_per_new_event_and_per_duplicate(counted_store) -> None:
    store, counter = counted_store
    assert_one_round_trip_per_add(store, counter.total)
    assert counter.calls == Counter({"Commit": 10})


def test_receiver_hot_path_is_one_store_round_trip(counted_store) -> None:
    store, counter = counted_store
    assert_receiver_hot_path_is_one_round_trip(store, counter.total)
