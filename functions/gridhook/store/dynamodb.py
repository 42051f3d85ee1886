"""The DynamoDB EventStore (AWS): one table, single-table design.

Storing an event is one ``PutItem`` with ``attribute_not_exists(pk)``: DynamoDB's own
condition check makes it an atomic insert-if-absent in one round trip, and a redelivery
costs one round trip answered ConditionalCheckFailedException. No transaction, no
read-before-write, no per-feed item that every delivery rewrites. Alerts are stored the
same way; quarantine records and samples with ``attribute_not_exists(pk) OR expires_at <
now``, so an expired item that TTL has not deleted yet makes way for a new one, atomically.

Items (primary key ``pk`` / ``sk``, both strings):

=============  ==========================  ======================  ==========================
item           pk                          sk                      listed through
=============  ==========================  ======================  ==========================
event          ``EVENT#<event_id>``        ``EVENT``               GSIs below, by ``sort_key``
quarantine     ``QUARANTINE#<id>``         ``QUARANTINE``          ``by_kind``, both ways
sample         ``SAMPLE#<sample_id>``      ``SAMPLE``              ``by_kind``, ``samples_by_feed``
alert          ``ALERT#<alert_id>``        ``ALERT``               ``by_kind``, newest first
drift          ``DRIFT#<id>``              ``DRIFT``               ``by_kind``, newest first
subscription   ``SUBSCRIPTIONS``           ``SUBSCRIPTION#<id>``   the table (consistent read)
=============  ==========================  ======================  ==========================

Global secondary indexes (``sort_key`` is ``sortable_timestamp(time)|id``, the same string
the Firestore backend orders by, so since/until/cursor are one key range, read forwards or
backwards with ``ScanIndexForward``):

- ``by_kind``: ``kind`` + ``sort_key`` — all events (``kind=EVENT``), quarantine, samples,
  alerts, drift.
- ``by_feed``: ``feed_tag`` + ``sort_key`` — one feed's events.
- ``by_correlation``: ``correlation_id`` + ``sort_key`` — one curtailment episode.
- ``feed_tags``: ``kind`` + ``feed_tag``, keys only — skip-scan of the distinct feed tags for
  ``latest_by_feed`` (DynamoDB has no DISTINCT: 2 queries per feed + 1, never a scan).
- ``samples_by_feed``: ``sample_feed`` + ``sort_key`` — one feed's samples.

Only events carry ``feed_tag`` / ``correlation_id`` as attributes (samples name their feed
``sample_feed``; samples, alerts, drift and subscriptions keep the rest as JSON), so the
feed and correlation indexes hold events alone.

GSI reads are eventually consistent (usually well under a second behind); ``get_event``,
``get_quarantined`` and ``subscriptions`` read the table itself, strongly consistent.
Quarantine records and samples carry a numeric ``expires_at_epoch`` for DynamoDB TTL
(``create_table`` enables it); TTL deletes lazily, so expired items are also hidden on
read. An item holds at most 400 KB: a quarantined body longer than ``QUARANTINE_MAX_BYTES``
is kept as a prefix (``truncated``), its original length and digest intact.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from gridhook.events import StoredEvent
from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventQuery,
    KeyBound,
    LoadSample,
    Page,
    QuarantinedPayload,
    QuarantinePage,
    SamplePage,
    SampleQuery,
    StoreUnavailable,
    SubscriptionRecord,
    encode_cursor,
    encode_position,
    fit_quarantined,
    sort_key,
    sort_key_range,
    sortable_timestamp,
)

__all__ = [
    "INDEXES",
    "ITEM_MAX_BYTES",
    "QUARANTINE_MAX_BYTES",
    "TTL_ATTRIBUTE",
    "DynamoDBEventStore",
]

#: Global secondary indexes: name -> (partition key attribute, sort key attribute, projection).
INDEXES: dict[str, tuple[str, str, str]] = {
    "by_kind": ("kind", "sort_key", "ALL"),
    "by_feed": ("feed_tag", "sort_key", "ALL"),
    "by_correlation": ("correlation_id", "sort_key", "ALL"),
    "feed_tags": ("kind", "feed_tag", "KEYS_ONLY"),
    "samples_by_feed": ("sample_feed", "sort_key", "ALL"),
}
#: The expiry of quarantine records and samples in epoch seconds: DynamoDB TTL deletes by it.
TTL_ATTRIBUTE = "expires_at_epoch"
#: DynamoDB's limit on an item's size (attribute names and values).
ITEM_MAX_BYTES = 400 * 1024
#: What a quarantined body and its errors may use of an item: the other attributes take
#: well under 1 KB, and the margin covers them with room to spare.
QUARANTINE_MAX_BYTES = ITEM_MAX_BYTES - 24 * 1024

_MAX_ATTEMPTS = 3
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}
# Filtered queries read at least this many items a request: DynamoDB's Limit counts
# items before the filter, so asking for exactly what is missing would crawl.
_FILTERED_BATCH = 100
_SUBSCRIPTIONS_PK = "SUBSCRIPTIONS"
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Insert-if-absent, except that an expired item (TTL deletes lazily) may be replaced.
_ABSENT_OR_EXPIRED = "attribute_not_exists(pk) OR #expires < :now"


class DynamoDBEventStore:
    """EventStore on one DynamoDB table (see the module docstring for its layout)."""

    def __init__(
        self,
        table: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_seconds: float = 10.0,
        client: Any | None = None,
    ) -> None:
        self.table = table
        if client is None:
            client = _make_client(table, region, endpoint_url, timeout_seconds)
        self._client = client

    @property
    def client(self) -> Any:
        """The botocore DynamoDB client (tests hook its events to count requests)."""
        return self._client

    def _where(self) -> str:
        meta = self._client.meta
        return f"DynamoDB table {self.table!r} (region {meta.region_name}, {meta.endpoint_url})"

    def _call(
        self, what: str, operation: str, *, expected: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One request; every failure but the ``expected`` error code is StoreUnavailable."""
        try:
            return getattr(self._client, operation)(TableName=self.table, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == expected:
                raise  # the caller's answer (a duplicate, a table that exists), not a failure
            raise StoreUnavailable(self._explain(what, code, error.get("Message", ""))) from exc
        except BotoCoreError as exc:
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, NoCredentialsError…
            raise StoreUnavailable(
                f"{self._where()}: {what} failed: {type(exc).__name__}: {exc}; check the "
                "endpoint, region, credentials and network, then retry"
            ) from exc

    def _explain(self, what: str, code: str, message: str) -> str:
        where = self._where()
        lacks_index = "specified index" in message.lower() or "invalid index" in message.lower()
        if code in {"ValidationException", "ResourceNotFoundException"} and lacks_index:
            # "The table does not have the specified index: by_feed" (moto: "Invalid
            # index: …"); not every message that names an index: an invalid index key
            # value is not a missing index.
            return (
                f"{where}: {what} failed: {message}: the table lacks gridhook's indexes "
                f"({', '.join(INDEXES)}); add them with DynamoDBEventStore.create_table()"
            )
        if code == "ResourceNotFoundException":
            return (
                f"{where} does not exist: create it (DynamoDBEventStore.create_table(), "
                "see docs/stores.md) or fix the table name in GRIDHOOK_STORE"
            )
        if code in _THROTTLED:
            return (
                f"{where}: {what} was throttled after {_MAX_ATTEMPTS} attempts: retry later, "
                "or use on-demand capacity / raise the table's and its indexes' capacity"
            )
        if code in {"AccessDeniedException", "UnrecognizedClientException"}:
            return (
                f"{where}: {what} was refused ({code}: {message}): check the AWS credentials "
                "and that their IAM policy allows gridhook's DynamoDB actions on the table"
            )
        return f"{where}: {what} failed: {code}: {message}"

    # -- table ---------------------------------------------------------------------

    def create_table(self, *, wait_seconds: float = 60.0) -> None:
        """Create the table with its indexes (on-demand billing) and enable TTL; add to
        a table that exists already the indexes it lacks, one at a time.

        For local use, tests and upgrades; production tables may instead belong to
        whatever provisions the AWS account (the module docstring lists what they need).
        """
        try:
            self._call(
                "create table",
                "create_table",
                expected="ResourceInUseException",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=_attribute_definitions(INDEXES),
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[_index_spec(name) for name in INDEXES],
            )
        except ClientError:
            self._add_missing_indexes(wait_seconds)  # the table exists already
        else:
            try:
                self._client.get_waiter("table_exists").wait(
                    TableName=self.table,
                    WaiterConfig={"Delay": 1, "MaxAttempts": max(1, int(wait_seconds))},
                )
            except BotoCoreError as exc:  # WaiterError
                raise StoreUnavailable(f"{self._where()} did not become active: {exc}") from exc
        self._enable_ttl()

    def _index_states(self) -> dict[str, str]:
        table = self._call("describe table", "describe_table")["Table"]
        return {
            index["IndexName"]: index.get("IndexStatus", "ACTIVE")
            for index in table.get("GlobalSecondaryIndexes", [])
        }

    def _add_missing_indexes(self, wait_seconds: float) -> None:
        # DynamoDB builds one new index per UpdateTable at a time: add each, wait for it.
        for name in INDEXES:
            if name in self._index_states():
                continue
            self._call(
                f"add index {name}",
                "update_table",
                AttributeDefinitions=_attribute_definitions(INDEXES),
                GlobalSecondaryIndexUpdates=[{"Create": _index_spec(name)}],
            )
            deadline = time.monotonic() + wait_seconds
            while self._index_states().get(name) != "ACTIVE":
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"{self._where()}: index {name} is still being built after "
                        f"{wait_seconds:g} s; run create_table() again once it is ACTIVE"
                    )
                time.sleep(1.0)

    def _enable_ttl(self) -> None:
        ttl = self._call("describe TTL", "describe_time_to_live").get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
            if ttl.get("AttributeName") != TTL_ATTRIBUTE:
                raise StoreUnavailable(
                    f"{self._where()} expires items by {ttl.get('AttributeName')!r}, but "
                    f"gridhook writes {TTL_ATTRIBUTE!r}: change the table's TTL attribute"
                )
            return
        self._call(
            "enable TTL",
            "update_time_to_live",
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    def delete_table(self) -> None:
        """Drop the table (tests)."""
        self._call("delete table", "delete_table")

    # -- listing --------------------------------------------------------------------

    def _list(
        self,
        what: str,
        index: str,
        partition: str,
        *,
        lower: KeyBound | None,
        upper: KeyBound | None,
        descending: bool,
        want: int,
        filters: dict[str, tuple[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``want`` items of one index partition in a sort_key range, in order.

        ``filters`` maps an attribute to (operator, string value) for conditions that are
        not the key (a feed within an episode, the expiry): DynamoDB applies them after
        reading, so filtered queries read in larger batches.
        """
        if lower is not None and upper is not None and lower[0] > upper[0]:
            return []  # an empty range (DynamoDB rejects BETWEEN with lo > hi)
        names = {"#h": INDEXES[index][0]}
        values = {":h": _s(partition)}
        condition = "#h = :h"
        skip: set[str] = set()  # exclusive bounds: BETWEEN includes them
        if lower is not None or upper is not None:
            names["#s"] = "sort_key"  # DynamoDB rejects unused names
        if lower is not None and upper is not None:
            condition += " AND #s BETWEEN :lo AND :hi"
            values |= {":lo": _s(lower[0]), ":hi": _s(upper[0])}
            skip = {value for value, inclusive in (lower, upper) if not inclusive}
        elif lower is not None:
            condition += " AND #s >= :lo" if lower[1] else " AND #s > :lo"
            values[":lo"] = _s(lower[0])
        elif upper is not None:
            condition += " AND #s <= :hi" if upper[1] else " AND #s < :hi"
            values[":hi"] = _s(upper[0])
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not descending,
        }
        if filters:
            clauses = []
            for i, (attribute, (operator, value)) in enumerate(sorted(filters.items())):
                names[f"#f{i}"] = attribute
                values[f":f{i}"] = _s(value)
                clauses.append(f"#f{i} {operator} :f{i}")
            kwargs["FilterExpression"] = " AND ".join(clauses)

        found: list[dict[str, Any]] = []

        def page_size() -> int:
            if filters:
                return max(want - len(found), _FILTERED_BATCH)
            return want - len(found) + len(skip)  # a skipped bound comes back too

        for batch in self._query_pages(what, kwargs, page_size):
            found.extend(i for i in batch if i["sort_key"]["S"] not in skip)
            if len(found) >= want:
                break
        return found[:want]

    def _query_pages(
        self, what: str, kwargs: dict[str, Any], limit: Callable[[], int] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Query pages until the caller stops or DynamoDB has no more (1 MB, Limit)."""
        request = dict(kwargs)
        while True:
            if limit is not None:
                request["Limit"] = limit()
            reply = self._call(what, "query", **request)
            yield reply.get("Items", [])
            last = reply.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _insert(self, what: str, item: dict[str, Any], condition: str) -> AddOutcome:
        """A conditional PutItem: DUPLICATE when the condition fails."""
        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if condition == _ABSENT_OR_EXPIRED:
            kwargs["ExpressionAttributeNames"] = {"#expires": "expires_at"}
            kwargs["ExpressionAttributeValues"] = {":now": _now()}
        try:
            self._call(what, "put_item", expected=_CONDITION_FAILED, **kwargs)
        except ClientError:
            return AddOutcome.DUPLICATE
        return AddOutcome.ACCEPTED

    # -- events ---------------------------------------------------------------------

    def add_event(self, event: StoredEvent) -> AddOutcome:
        # A retried PutItem whose first attempt did land answers the condition failure:
        # still correct, the event is stored once.
        return self._insert("add event", _event_item(event), "attribute_not_exists(pk)")

    def get_event(self, event_id: str) -> StoredEvent | None:
        reply = self._call(
            "get event",
            "get_item",
            Key={"pk": _s(f"EVENT#{event_id}"), "sk": _s("EVENT")},
            ConsistentRead=True,
        )
        item = reply.get("Item")
        return None if item is None else _event_from_item(item)

    def events(self, query: EventQuery) -> Page:
        # Every range condition (since, until, cursor) is on sort_key, exactly as in
        # firestore.py; the index is chosen by the most selective equality filter.
        filters = None
        if query.correlation_id is not None:
            index, partition = "by_correlation", query.correlation_id
            if query.feed_tag is not None:  # an episode is few events: filter the feed
                filters = {"feed_tag": ("=", query.feed_tag)}
        elif query.feed_tag is not None:
            index, partition = "by_feed", query.feed_tag
        else:
            index, partition = "by_kind", "EVENT"
        lower, upper = sort_key_range(query.since, query.until, query.cursor, query.newest_first)
        items = self._list(
            "query events",
            index,
            partition,
            lower=lower,
            upper=upper,
            descending=query.newest_first,
            want=query.limit + 1,  # +1: is there another page?
            filters=filters,
        )
        events = [_event_from_item(i) for i in items[: query.limit]]
        more = len(items) > query.limit
        return Page(events, encode_cursor(events[-1]) if more else None)

    def latest_by_feed(self) -> dict[str, StoredEvent]:
        # Skip-scan the feed tags on the keys-only feed_tags index, then one newest-first
        # query per feed: 2 requests per feed + 1, whatever the number of events.
        latest: dict[str, StoredEvent] = {}
        last_tag: str | None = None
        while True:
            names = {"#k": "kind"}
            values = {":k": _s("EVENT")}
            condition = "#k = :k"
            if last_tag is not None:
                condition += " AND #f > :after"
                names["#f"] = "feed_tag"
                values[":after"] = _s(last_tag)
            found = self._call(
                "list feeds",
                "query",
                IndexName="feed_tags",
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                Limit=1,
            ).get("Items", [])
            if not found:
                return latest
            tag = found[0]["feed_tag"]["S"]
            newest = self._call(
                "latest event of a feed",
                "query",
                IndexName="by_feed",
                KeyConditionExpression="#f = :f",
                ExpressionAttributeNames={"#f": "feed_tag"},
                ExpressionAttributeValues={":f": _s(tag)},
                ScanIndexForward=False,
                Limit=1,
            ).get("Items", [])
            if newest:
                latest[tag] = _event_from_item(newest[0])
            last_tag = tag

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        # An item holds at most 400 KB: a longer body is kept as a prefix (truncated).
        item = fit_quarantined(item, QUARANTINE_MAX_BYTES)
        record: dict[str, Any] = {
            "pk": _s(f"QUARANTINE#{item.quarantine_id}"),
            "sk": _s("QUARANTINE"),
            "kind": _s("QUARANTINE"),
            "sort_key": _s(sort_key(item.received_at, item.quarantine_id)),
            "quarantine_id": _s(item.quarantine_id),
            "received_at": _s(sortable_timestamp(item.received_at)),
            **_expiry(item.expires_at),
            "reason": _s(item.reason),
            "errors": _s(json.dumps(item.errors)),
            "body": _s(item.body),
            "body_bytes": {"N": str(item.body_bytes)},
            "body_sha256": _s(item.body_sha256),
        }
        if item.replayed_at is not None:
            record["replayed_at"] = _s(sortable_timestamp(item.replayed_at))
        if item.replayed_event_id is not None:
            record["replayed_event_id"] = _s(item.replayed_event_id)
        return self._insert("quarantine", record, _ABSENT_OR_EXPIRED)

    def get_quarantined(self, quarantine_id: str) -> QuarantinedPayload | None:
        reply = self._call(
            "get quarantined",
            "get_item",
            Key={"pk": _s(f"QUARANTINE#{quarantine_id}"), "sk": _s("QUARANTINE")},
            ConsistentRead=True,
        )
        item = reply.get("Item")
        if item is None or item["expires_at"]["S"] < _now()["S"]:
            return None
        return _quarantined(item)

    def quarantined(
        self, limit: int = 100, cursor: str | None = None, newest_first: bool = True
    ) -> QuarantinePage:
        lower, upper = sort_key_range(None, None, cursor, newest_first)
        items = self._list(
            "list quarantine",
            "by_kind",
            "QUARANTINE",
            lower=lower,
            upper=upper,
            descending=newest_first,
            want=limit + 1,
            filters={"expires_at": (">=", _now()["S"])},  # TTL deletes lazily
        )
        found = [_quarantined(i) for i in items[:limit]]
        last = found[-1] if len(items) > limit else None
        return QuarantinePage(
            found, encode_position(last.received_at, last.quarantine_id) if last else None
        )

    def mark_replayed(self, quarantine_id: str, event_id: str, replayed_at: datetime) -> None:
        try:
            self._call(
                "mark replayed",
                "update_item",
                expected=_CONDITION_FAILED,
                Key={"pk": _s(f"QUARANTINE#{quarantine_id}"), "sk": _s("QUARANTINE")},
                # Without the condition, UpdateItem would create an item that is not there.
                ConditionExpression="attribute_exists(pk)",
                UpdateExpression="SET replayed_at = :at, replayed_event_id = :event",
                ExpressionAttributeValues={
                    ":at": _s(sortable_timestamp(replayed_at)),
                    ":event": _s(event_id),
                },
            )
        except ClientError:
            return  # nothing kept under that id (never, or expired and deleted)

    # -- load samples ---------------------------------------------------------------

    def add_sample(self, sample: LoadSample) -> AddOutcome:
        item = {
            "pk": _s(f"SAMPLE#{sample.sample_id}"),
            "sk": _s("SAMPLE"),
            "kind": _s("SAMPLE"),
            "sort_key": _s(sort_key(sample.sampled_at, sample.sample_id)),
            "sample_feed": _s(sample.feed_tag),
            **_expiry(sample.expires_at),
            "record_json": _s(json.dumps(sample.to_dict())),
        }
        return self._insert("add sample", item, _ABSENT_OR_EXPIRED)

    def samples(self, query: SampleQuery) -> SamplePage:
        if query.feed_tag is not None:
            index, partition = "samples_by_feed", query.feed_tag
        else:
            index, partition = "by_kind", "SAMPLE"
        lower, upper = sort_key_range(query.since, query.until, query.cursor, newest_first=False)
        items = self._list(
            "list samples",
            index,
            partition,
            lower=lower,
            upper=upper,
            descending=False,
            want=query.limit + 1,
            filters={"expires_at": (">=", _now()["S"])},  # TTL deletes lazily
        )
        found = [_sample_from_json(i["record_json"]["S"]) for i in items[: query.limit]]
        last = found[-1] if len(items) > query.limit else None
        return SamplePage(found, encode_position(last.sampled_at, last.sample_id) if last else None)

    # -- alerts ---------------------------------------------------------------------

    def add_alert(self, record: AlertRecord) -> AddOutcome:
        item = {
            "pk": _s(f"ALERT#{record.alert_id}"),
            "sk": _s("ALERT"),
            "kind": _s("ALERT"),
            "sort_key": _s(sort_key(record.detected_at, record.alert_id)),
            "record_json": _s(json.dumps(record.to_dict())),
        }
        return self._insert("add alert", item, "attribute_not_exists(pk)")

    def alerts(self, limit: int = 100) -> list[AlertRecord]:
        if limit < 1:
            return []
        items = self._list(
            "list alerts", "by_kind", "ALERT", lower=None, upper=None, descending=True, want=limit
        )
        return [AlertRecord.from_dict(json.loads(i["record_json"]["S"])) for i in items]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        # One partition for the few subscription records: listed by a consistent query.
        self._call(
            "put subscription",
            "put_item",
            Item={
                "pk": _s(_SUBSCRIPTIONS_PK),
                "sk": _s(f"SUBSCRIPTION#{record.subscription_id}"),
                "record_json": _s(json.dumps(record.to_dict())),
            },
        )

    def subscriptions(self) -> list[SubscriptionRecord]:
        kwargs = {
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ExpressionAttributeValues": {":p": _s(_SUBSCRIPTIONS_PK)},
            "ConsistentRead": True,
        }
        return [
            SubscriptionRecord.from_dict(json.loads(item["record_json"]["S"]))
            for batch in self._query_pages("list subscriptions", kwargs)
            for item in batch
        ]

    def delete_subscription(self, subscription_id: str) -> None:
        self._call(
            "delete subscription",
            "delete_item",
            Key={"pk": _s(_SUBSCRIPTIONS_PK), "sk": _s(f"SUBSCRIPTION#{subscription_id}")},
        )

    def add_drift(self, record: DriftRecord) -> None:
        # The record is JSON, not attributes: a top-level feed_tag would put drift into
        # the events' by_feed index.
        self._call(
            "add drift",
            "put_item",
            Item={
                "pk": _s(f"DRIFT#{record.drift_id}"),
                "sk": _s("DRIFT"),
                "kind": _s("DRIFT"),
                "sort_key": _s(sort_key(record.detected_at, record.drift_id)),
                "record_json": _s(json.dumps(record.to_dict())),
            },
        )

    def drift(self, limit: int = 100) -> list[DriftRecord]:
        if limit < 1:
            return []
        items = self._list(
            "list drift", "by_kind", "DRIFT", lower=None, upper=None, descending=True, want=limit
        )
        return [DriftRecord.from_dict(json.loads(i["record_json"]["S"])) for i in items]

    def close(self) -> None:
        self._client.close()


def _make_client(
    table: str, region: str | None, endpoint_url: str | None, timeout_seconds: float
) -> Any:
    # The three attempts share the timeout (plus the SDK's jittered backoff, <= 3 s), so
    # an unreachable endpoint answers StoreUnavailable in about timeout_seconds.
    # total_max_attempts counts the first attempt; botocore's "max_attempts" counts only
    # the retries after it (3 would be 4 attempts).
    per_attempt = timeout_seconds / _MAX_ATTEMPTS
    config = Config(
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"total_max_attempts": _MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=32,  # one per server thread, with room to spare
    )
    # boto3 itself honours AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL and
    # AWS_DEFAULT_REGION; AWS_REGION is read here so the Lambda-style variable works too.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        # A session per store: boto3's default session is not thread-safe to set up.
        return boto3.session.Session().client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
        )
    except NoRegionError as exc:
        raise StoreUnavailable(
            f"DynamoDB table {table!r}: no AWS region: set AWS_REGION or use "
            "dynamodb://TABLE?region=REGION"
        ) from exc
    except (BotoCoreError, ValueError) as exc:
        raise StoreUnavailable(f"DynamoDB table {table!r}: cannot create a client: {exc}") from exc


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _now() -> dict[str, str]:
    """The current time as the sortable string ``expires_at`` is compared with."""
    return _s(sortable_timestamp(datetime.now(UTC)))


def _expiry(expires_at: datetime) -> dict[str, Any]:
    # expires_at (a sortable string) is what reads and conditions compare; the epoch
    # seconds are what DynamoDB TTL deletes by.
    return {
        "expires_at": _s(sortable_timestamp(expires_at)),
        TTL_ATTRIBUTE: {"N": str(math.ceil(expires_at.timestamp()))},
    }


def _attribute_definitions(indexes: dict[str, tuple[str, str, str]]) -> list[dict[str, str]]:
    keys = sorted({"pk", "sk", *(a for h, r, _ in indexes.values() for a in (h, r))})
    return [{"AttributeName": a, "AttributeType": "S"} for a in keys]


def _index_spec(name: str) -> dict[str, Any]:
    hash_key, range_key, projection = INDEXES[name]
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": projection},
    }


def _quarantined(item: dict[str, Any]) -> QuarantinedPayload:
    replayed_at = item.get("replayed_at")
    replayed_event_id = item.get("replayed_event_id")
    return QuarantinedPayload(
        quarantine_id=item["quarantine_id"]["S"],
        received_at=_dt(item["received_at"]),
        expires_at=_dt(item["expires_at"]),
        reason=item["reason"]["S"],
        errors=json.loads(item["errors"]["S"]),
        body=item["body"]["S"],
        body_bytes=int(item["body_bytes"]["N"]),
        body_sha256=item["body_sha256"]["S"],
        replayed_at=None if replayed_at is None else _dt(replayed_at),
        replayed_event_id=None if replayed_event_id is None else replayed_event_id["S"],
    )


def _sample_from_json(text: str) -> LoadSample:
    data = json.loads(text)
    return LoadSample(
        feed_tag=data["feed_tag"],
        sampled_at=datetime.fromisoformat(data["sampled_at"]),
        calculated_w=data["calculated_w"],
        target_w=data["target_w"],
        correlation_id=data["correlation_id"],
        expires_at=datetime.fromisoformat(data["expires_at"]),
    )


def _number(value: float) -> dict[str, str]:
    # boto3 rejects Python floats, and DynamoDB numbers hold neither inf nor exponents
    # beyond -130..+125: such a value is kept as its repr string rather than making an
    # event unstorable (and retried forever). Both read back with float().
    value = float(value)
    if math.isfinite(value) and (value == 0 or 1e-130 <= abs(value) < 1e126):
        return {"N": repr(value)}
    return {"S": repr(value)}


def _dt(value: dict[str, str]) -> datetime:
    return datetime.fromisoformat(value["S"])


def _event_item(event: StoredEvent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": _s(f"EVENT#{event.event_id}"),
        "sk": _s("EVENT"),
        "kind": _s("EVENT"),
        "sort_key": _s(sort_key(event.received_at, event.event_id)),
        "event_id": _s(event.event_id),
        "received_at": _s(sortable_timestamp(event.received_at)),
        "event": _s(event.event),
        # A JSON string, not a map: DynamoDB maps would turn every number into Decimal and
        # reject floats, and the payload is read back exactly as received.
        "payload_json": _s(json.dumps(event.payload, ensure_ascii=False, allow_nan=False)),
    }
    # Absent, not NULL: index key attributes must be strings, and an event without a
    # feed tag simply stays out of the by_feed and feed_tags indexes.
    for name in ("feed_tag", "correlation_id"):
        value = getattr(event, name)
        if value is not None:
            item[name] = _s(value)
    for name in ("start_time", "end_time"):
        value = getattr(event, name)
        if value is not None:
            item[name] = _s(sortable_timestamp(value))
    for name in ("target_w", "prev_target_w", "calculated_w"):
        value = getattr(event, name)
        if value is not None:
            item[name] = _number(value)
    if event.compliant is not None:
        item["compliant"] = {"BOOL": event.compliant}
    return item


def _event_from_item(item: dict[str, Any]) -> StoredEvent:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else value["S"]

    def when(name: str) -> datetime | None:
        value = item.get(name)
        return None if value is None else _dt(value)

    def number(name: str) -> float | None:
        value = item.get(name)
        return None if value is None else float(value.get("N") or value["S"])

    compliant = item.get("compliant")
    return StoredEvent(
        event_id=item["event_id"]["S"],
        received_at=_dt(item["received_at"]),
        event=item["event"]["S"],
        feed_tag=text("feed_tag"),
        correlation_id=text("correlation_id"),
        start_time=when("start_time"),
        end_time=when("end_time"),
        target_w=number("target_w"),
        prev_target_w=number("prev_target_w"),
        calculated_w=number("calculated_w"),
        compliant=None if compliant is None else bool(compliant["BOOL"]),
        payload=json.loads(item["payload_json"]["S"]),
    )
