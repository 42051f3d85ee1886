"""Round trips to Firestore, counted on the wire by a gRPC client interceptor.

The real google-cloud-firestore client talks to the emulator; the interceptor sees every
RPC it makes. A new event must cost exactly one RPC (Commit with an exists=false
precondition), and a redelivery exactly one (answered ALREADY_EXISTS).
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from datetime import UTC, datetime

import flask
import grpc
import pytest
from google.cloud import firestore

from gridhook.events import normalise
from gridhook.receiver import Receiver
from gridhook.settings import Settings
from gridhook.store import AddOutcome
from gridhook.store.firestore import FirestoreEventStore
from tests.harness import SEED_PAYLOAD, TEST_TOKEN

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
    for i in range(5):
        payload = {**copy.deepcopy(SEED_PAYLOAD), "seq": i}
        event = normalise(payload, datetime.now(UTC))
        before = counter.total()
        assert store.add_event(event) is AddOutcome.ACCEPTED
        assert counter.total() - before == 1
        before = counter.total()
        assert store.add_event(event) is AddOutcome.DUPLICATE
        assert counter.total() - before == 1
    assert counter.calls == Counter({"Commit": 10})


def test_receiver_hot_path_is_one_store_round_trip(counted_store) -> None:
    store, counter = counted_store
    receiver = Receiver(Settings(webhook_tokens=(TEST_TOKEN,)), store=store)
    app = flask.Flask(__name__)
    payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": "hot-path"}
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    statuses = []
    for _ in range(2):
        with app.test_request_context(
            "/nvgrid/webhook", method="POST", json=payload, headers=headers
        ):
            before = counter.total()
            response = receiver.handle(flask.request)
            statuses.append((response.status_code, response.get_json()["status"]))
            assert counter.total() - before == 1
    assert statuses == [(200, "accepted"), (200, "duplicate")]
