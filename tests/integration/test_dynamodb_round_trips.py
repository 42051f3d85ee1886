"""The DynamoDB store on the wire: round trips, key ranges, errors and the real receiver.

moto runs in server mode, so the real boto3 client sends real HTTP; a botocore
``before-send`` hook sees every request it makes (retries included). A new event must
cost exactly one request (PutItem with attribute_not_exists) and a redelivery exactly
one (answered ConditionalCheckFailedException).
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber

from gridhook.events import normalise
from gridhook.store import AddOutcome, EventQuery, StoreUnavailable, iter_events, open_store
from gridhook.store.dynamodb import DynamoDBEventStore
from tests.harness import (
    SEED_PAYLOAD,
    TEST_TOKEN,
    assert_one_round_trip_per_add,
    assert_receiver_hot_path_is_one_round_trip,
    free_port,
    function_app,
)

pytestmark = pytest.mark.dynamodb

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class RequestCounter:
    """Counts the HTTP requests a botocore client sends, by operation."""

    def __init__(self, store: DynamoDBEventStore) -> None:
        self.calls: Counter[str] = Counter()
        self.indexes: Counter[str] = Counter()  # IndexName of each Query
        store.client.meta.events.register("before-send.dynamodb.*", self._count)
        store.client.meta.events.register("provide-client-params.dynamodb.Query", self._index)

    def _count(self, event_name: str, **_: object) -> None:
        self.calls[event_name.rsplit(".", 1)[-1]] += 1  # returning None lets it be sent

    def _index(self, params: dict, **_: object) -> None:
        self.indexes[params.get("IndexName", "(table)")] += 1

    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def counted_store(dynamodb_env) -> Iterator[tuple[DynamoDBEventStore, RequestCounter]]:
    store = open_store(dynamodb_env["GRIDHOOK_STORE"], timeout_seconds=5.0)
    assert isinstance(store, DynamoDBEventStore)
    yield store, RequestCounter(store)
    store.close()


def test_one_round_trip_per_new_event_and_per_duplicate(counted_store) -> None:
    store, counter = counted_store
    assert_one_round_trip_per_add(store, counter.total)
    assert counter.calls == Counter({"PutItem": 10})


@pytest.mark.parametrize("site", ["default", "phx1"])
def test_receiver_hot_path_is_one_store_round_trip(counted_store, site: str) -> None:
    store, counter = counted_store
    assert_receiver_hot_path_is_one_round_trip(store, counter.total, site)


def _event(i: int, feed: str, corr: str, at: datetime):
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload.update(feed_tag=feed, correlation_id=corr, seq=i)
    return normalise(payload, at)


def test_key_ranges_and_filters_match_sqlite(counted_store, tmp_path: Path) -> None:
    """Every combination of filters, ranges and page sizes lists what SQLite lists."""
    store, counter = counted_store
    oracle = open_store(f"sqlite:///{tmp_path}/oracle.db")
    # Shared receipt times (ties broken by event id), two feeds, three episodes.
    for i in range(18):
        event = _event(i, f"feed_{i % 2}", f"c{i % 3}", T0 + timedelta(seconds=i // 3))
        store.add_event(event)
        oracle.add_event(event)
    times = [None, T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)]
    for feed, corr, since, until, limit in itertools.product(
        [None, "feed_1"], [None, "c2"], times, times, [1, 4, 100]
    ):
        query = EventQuery(
            feed_tag=feed, correlation_id=corr, since=since, until=until, limit=limit
        )
        want = [e.event_id for e in iter_events(oracle, query)]
        assert [e.event_id for e in iter_events(store, query)] == want, query
    oracle.close()
    # An unfiltered page is one Query, however the range is bounded.
    before = counter.total()
    page = store.events(EventQuery(feed_tag="feed_0", since=T0, until=T0 + timedelta(seconds=4)))
    assert len(page.events) == 6 and counter.total() - before == 1


def test_latest_by_feed_costs_two_queries_per_feed(counted_store) -> None:
    store, counter = counted_store
    for i in range(30):
        store.add_event(_event(i, f"feed_{i % 3}", "c", T0 + timedelta(seconds=i)))
    counter.calls.clear()
    latest = store.latest_by_feed()
    assert {tag: e.payload["seq"] for tag, e in latest.items()} == {
        "feed_0": 27,
        "feed_1": 28,
        "feed_2": 29,
    }
    # No Scan: the keys-only feed_tags index skips from one feed to the next, then each
    # feed's newest event is the first item of its by_feed partition read backwards.
    assert counter.calls == Counter({"Query": 2 * 3 + 1})
    assert counter.indexes == Counter({"feed_tags": 3 + 1, "by_feed": 3})


def test_create_table_adds_the_indexes_an_older_table_lacks(
    dynamodb_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridhook.store import LoadSample, SampleQuery
    from gridhook.store.dynamodb import table as backend

    table = f"older-{uuid.uuid4().hex[:8]}"
    store = open_store(f"dynamodb://{table}", timeout_seconds=5.0)
    older = {k: v for k, v in backend.INDEXES.items() if k != "samples_by_feed"}
    monkeypatch.setattr(backend, "INDEXES", older)
    store.create_table()  # as an earlier release made it
    monkeypatch.undo()
    sample = LoadSample("feed_a", T0, 4e6, 5e6, "c1", datetime.now(UTC) + timedelta(days=1))
    assert store.add_sample(sample) is AddOutcome.ACCEPTED
    with pytest.raises(StoreUnavailable, match="lacks gridhook's indexes"):
        store.samples(SampleQuery(feed_tag="feed_a"))
    store.create_table()
    described = store.client.describe_table(TableName=table)["Table"]
    assert {i["IndexName"] for i in described["GlobalSecondaryIndexes"]} == set(backend.INDEXES)
    ttl = store.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at_epoch")
    assert store.samples(SampleQuery(feed_tag="feed_a")).samples == [sample]
    store.delete_table()
    store.close()


def test_loads_dynamodb_numbers_cannot_hold_round_trip(counted_store) -> None:
    store, _ = counted_store
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["target_load"] = {"value": 1e308, "unit": "mw"}  # inf watts
    payload["prev_target_load"] = {"value": 1e-200, "unit": "w"}  # below 1e-130
    payload["calculated_load"] = {"value": 0.1, "unit": "kw"}  # binary fraction, exact repr
    event = normalise(payload, T0)
    assert store.add_event(event) is AddOutcome.ACCEPTED
    got = store.get_event(event.event_id)
    assert got == event
    assert got.target_w == float("inf") and got.prev_target_w == 1e-200
    assert got.calculated_w == 0.1 * 1000


def test_missing_table_says_to_create_it(dynamodb_env) -> None:
    table = f"missing-{uuid.uuid4().hex[:8]}"
    store = open_store(f"dynamodb://{table}", timeout_seconds=5.0)
    with pytest.raises(StoreUnavailable, match=rf"'{table}'.*does not exist: create it"):
        store.add_event(_event(0, "f", "c", T0))
    # The local workflow the message points to; creating it again is a no-op.
    store.create_table()
    store.create_table()
    assert store.add_event(_event(0, "f", "c", T0)) is AddOutcome.ACCEPTED
    store.delete_table()
    store.close()


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("ProvisionedThroughputExceededException", "throttled after 3 attempts: retry later"),
        ("AccessDeniedException", "check the AWS credentials and that their IAM policy"),
        ("InternalServerError", "add event failed: InternalServerError"),
    ],
)
def test_service_errors_are_store_unavailable(code: str, says: str) -> None:
    store = open_store("dynamodb://gridhook?region=eu-west-1&endpoint_url=http://127.0.0.1:9")
    with Stubber(store.client) as stub:
        stub.add_client_error("put_item", service_error_code=code, service_message="nope")
        with pytest.raises(StoreUnavailable, match=rf"'gridhook'.*{says}"):
            store.add_event(_event(0, "f", "c", T0))
    store.close()


def test_unreachable_endpoint_is_store_unavailable(
    dynamodb_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One attempt: the SDK's jittered backoff between three would only slow the test.
    monkeypatch.setattr("gridhook.store.dynamodb.errors.MAX_ATTEMPTS", 1)
    url = f"dynamodb://gridhook?region=eu-west-1&endpoint_url=http://127.0.0.1:{free_port()}"
    store = open_store(url, timeout_seconds=1.0)
    counter = RequestCounter(store)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"'gridhook'.*EndpointConnectionError.*retry"):
        store.get_event("0" * 32)
    assert time.monotonic() - started < 2
    assert counter.calls == Counter({"GetItem": 1})  # _MAX_ATTEMPTS attempts, retries included
    store.close()


@pytest.mark.parametrize(
    ("message", "lacks_indexes"),
    [
        ("The table does not have the specified index: by_feed", True),
        (
            "One or more parameter values are not valid. A value specified for a secondary "
            "index key is not supported. IndexName: by_feed, IndexKey: feed_tag",
            False,
        ),
    ],
)
def test_only_a_missing_index_is_blamed_on_the_indexes(message: str, lacks_indexes: bool) -> None:
    store = open_store("dynamodb://gridhook?region=eu-west-1&endpoint_url=http://127.0.0.1:9")
    with Stubber(store.client) as stub:
        stub.add_client_error(
            "query", service_error_code="ValidationException", service_message=message
        )
        with pytest.raises(StoreUnavailable) as raised:
            store.events(EventQuery(feed_tag="f"))
    store.close()
    assert message in str(raised.value)
    assert ("the table lacks gridhook's indexes" in str(raised.value)) is lacks_indexes


def test_store_url_options() -> None:
    store = open_store("dynamodb://events.v1?region=ap-south-1&endpoint_url=http://127.0.0.1:9")
    assert isinstance(store, DynamoDBEventStore) and store.table == "events.v1"
    assert store.client.meta.region_name == "ap-south-1"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    store.close()
    for bad in ("dynamodb://", "dynamodb://x", "dynamodb://bad/name", "dynamodb://tbl?regoin=x"):
        with pytest.raises(ValueError, match="dynamodb://TABLE"):
            open_store(bad)


def test_real_receiver_stores_once(dynamodb_env, tmp_path: Path) -> None:
    """The functions-framework app of receive_power_event on dynamodb:// (endpoint from env)."""
    payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": f"http-{uuid.uuid4().hex}"}
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    env = {"GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN}  # GRIDHOOK_STORE and AWS_* from dynamodb_env
    with function_app("receive_power_event", env) as server:
        first = server.post(json=payload, headers=headers)
        again = server.post(json=payload, headers=headers)
    assert (first.status_code, first.json()["status"]) == (200, "accepted"), first.text
    assert (again.status_code, again.json()["status"]) == (200, "duplicate"), again.text
    store = open_store(dynamodb_env["GRIDHOOK_STORE"])
    stored = store.events(EventQuery(correlation_id=payload["correlation_id"])).events
    store.close()
    assert [e.event_id for e in stored] == [first.json()["event_id"]]
