"""The DynamoDB EventStore (AWS): one table, single-table design.

Storing an event is one ``PutItem`` with ``attribute_not_exists(pk)``: DynamoDB's own
condition check makes it an atomic insert-if-absent in one round trip, and a redelivery
costs one round trip answered ConditionalCheckFailedException. No transaction, no
read-before-write, no per-feed item that every delivery rewrites.

Items (primary key ``pk`` / ``sk``, both strings):

=============  ==========================  ======================  ==========================
item           pk                          sk                      listed through
=============  ==========================  ======================  ==========================
event          ``EVENT#<event_id>``        ``EVENT``               GSIs below, by ``sort_key``
quarantine     ``QUARANTINE#<id>``         ``QUARANTINE``          ``by_kind``, newest first
drift          ``DRIFT#<id>``              ``DRIFT``               ``by_kind``, newest first
subscription   ``SUBSCRIPTIONS``           ``SUBSCRIPTION#<id>``   the table (consistent read)
=============  ==========================  ======================  ==========================

Global secondary indexes (``sort_key`` is ``sortable_timestamp(received_at)|event_id``, the
same string the Firestore backend orders by, so since/until/cursor are one key range):

- ``by_kind``: ``kind`` + ``sort_key`` — all events (``kind=EVENT``), quarantine, drift.
- ``by_feed``: ``feed_tag`` + ``sort_key`` — one feed's events.
- ``by_correlation``: ``correlation_id`` + ``sort_key`` — one curtailment episode.
- ``feed_tags``: ``kind`` + ``feed_tag``, keys only — skip-scan of the distinct feed tags for
  ``latest_by_feed`` (DynamoDB has no DISTINCT; this avoids a table scan).

Only events carry ``feed_tag`` / ``correlation_id`` as attributes (drift and subscription
records are kept as JSON), so the feed and correlation indexes hold events alone.

GSI reads are eventually consistent (usually well under a second behind); ``get_event``
and ``subscriptions`` read the table itself, strongly consistent. Quarantine items carry a
numeric ``expires_at_epoch`` for DynamoDB TTL (``create_table`` enables it); TTL deletes
lazily, so expired items are also hidden on read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from gridhook.events import StoredEvent
from gridhook.store.base import (
    AddOutcome,
    DriftRecord,
    EventQuery,
    Page,
    QuarantinedPayload,
    StoreUnavailable,
    SubscriptionRecord,
    decode_cursor,
    encode_cursor,
    sortable_timestamp,
)

__all__ = ["INDEXES", "TTL_ATTRIBUTE", "DynamoDBEventStore"]

#: Global secondary indexes: name -> (partition key attribute, sort key attribute, projection).
INDEXES: dict[str, tuple[str, str, str]] = {
    "by_kind": ("kind", "sort_key", "ALL"),
    "by_feed": ("feed_tag", "sort_key", "ALL"),
    "by_correlation": ("correlation_id", "sort_key", "ALL"),
    "feed_tags": ("kind", "feed_tag", "KEYS_ONLY"),
}
#: The quarantine's expiry in epoch seconds, the attribute DynamoDB TTL deletes by.
TTL_ATTRIBUTE = "expires_at_epoch"

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
        if code == "ResourceNotFoundException":
            return (
                f"{where} does not exist: create it (DynamoDBEventStore.create_table(), "
                "see README 'Stores') or fix the table name in GRIDHOOK_STORE"
            )
        if code in _THROTTLED:
            return (
                f"{where}: {what} was throttled after {_MAX_ATTEMPTS} attempts: retry later, "
                "or use on-demand capacity / raise the table's and its indexes' capacity"
            )
        if code == "ValidationException" and "specified index" in message.lower():
            # "The table does not have the specified index: by_feed" (not every message
            # that names an index: an invalid index key value is not a missing index)
            return (
                f"{where}: {what} failed: {message}: the table lacks gridhook's indexes "
                f"({', '.join(INDEXES)}); create it with DynamoDBEventStore.create_table()"
            )
        if code in {"AccessDeniedException", "UnrecognizedClientException"}:
            return (
                f"{where}: {what} was refused ({code}: {message}): check the AWS credentials "
                "and that their IAM policy allows gridhook's DynamoDB actions on the table"
            )
        return f"{where}: {what} failed: {code}: {message}"

    # -- table ----------------------------------------------------------------------

    def create_table(self, *, wait_seconds: float = 60.0) -> None:
        """Create the table with its indexes (on-demand billing) and enable TTL.

        For local use and tests; production tables belong to whatever provisions the AWS
        account. Does nothing to a table that already exists.
        """
        attributes = sorted({"pk", "sk", *(a for h, r, _ in INDEXES.values() for a in (h, r))})
        try:
            self._call(
                "create table",
                "create_table",
                expected="ResourceInUseException",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": a, "AttributeType": "S"} for a in attributes
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": name,
                        "KeySchema": [
                            {"AttributeName": hash_key, "KeyType": "HASH"},
                            {"AttributeName": range_key, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": projection},
                    }
                    for name, (hash_key, range_key, projection) in INDEXES.items()
                ],
            )
        except ClientError:
            return  # the table exists already
        try:
            self._client.get_waiter("table_exists").wait(
                TableName=self.table,
                WaiterConfig={"Delay": 1, "MaxAttempts": max(1, int(wait_seconds))},
            )
        except BotoCoreError as exc:  # WaiterError
            raise StoreUnavailable(f"{self._where()} did not become active: {exc}") from exc
        self._call(
            "enable TTL",
            "update_time_to_live",
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    def delete_table(self) -> None:
        """Drop the table (tests)."""
        self._call("delete table", "delete_table")

    # -- events ---------------------------------------------------------------------

    def add_event(self, event: StoredEvent) -> AddOutcome:
        # A retried PutItem whose first attempt did land answers the condition failure:
        # still correct, the event is stored once.
        try:
            self._call(
                "add event",
                "put_item",
                Item=_event_item(event),
                ConditionExpression="attribute_not_exists(pk)",
                expected="ConditionalCheckFailedException",
            )
        except ClientError:
            return AddOutcome.DUPLICATE
        return AddOutcome.ACCEPTED

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
        lower: str | None = None
        skip: str | None = None  # the cursor's own key, excluded (BETWEEN is inclusive)
        if query.since is not None:
            lower = sortable_timestamp(query.since)
        if query.cursor is not None:
            after_time, after_id = decode_cursor(query.cursor)
            after = _sort_key(after_time, after_id)
            if lower is None or after >= lower:
                lower, skip = after, after
        upper = None if query.until is None else sortable_timestamp(query.until)
        if lower is not None and upper is not None and lower >= upper:
            return Page([])  # an empty range (DynamoDB rejects BETWEEN with lo > hi)

        filter_value: str | None = None
        if query.correlation_id is not None:
            index, hash_value = "by_correlation", query.correlation_id
            filter_value = query.feed_tag  # an episode is few events: filter the feed
        elif query.feed_tag is not None:
            index, hash_value = "by_feed", query.feed_tag
        else:
            index, hash_value = "by_kind", "EVENT"

        names = {"#h": INDEXES[index][0]}
        values = {":h": _s(hash_value)}
        condition = "#h = :h"
        if lower is not None or upper is not None:
            names["#s"] = "sort_key"  # DynamoDB rejects unused names
        if lower is not None and upper is not None:
            # upper is a bare timestamp and every sort_key is "timestamp|id", so no key
            # equals it: "<= upper" is "< upper", i.e. until stays exclusive.
            condition += " AND #s BETWEEN :lo AND :hi"
            values |= {":lo": _s(lower), ":hi": _s(upper)}
        elif lower is not None:
            condition += " AND #s > :lo" if skip is not None else " AND #s >= :lo"
            values[":lo"] = _s(lower)
            skip = None  # ">" already excludes the cursor's own key
        elif upper is not None:
            condition += " AND #s < :hi"
            values[":hi"] = _s(upper)
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if filter_value is not None:
            kwargs["FilterExpression"] = "#f = :f"
            names["#f"] = "feed_tag"
            values[":f"] = _s(filter_value)

        want = query.limit + 1  # +1: is there another page?
        extra = 0 if skip is None else 1  # the cursor's own item comes back first
        items: list[dict[str, Any]] = []

        def page_size() -> int:
            if filter_value is not None:
                return max(want - len(items), _FILTERED_BATCH)
            return want - len(items) + extra

        for batch in self._query_pages("query events", kwargs, page_size):
            items.extend(i for i in batch if skip is None or i["sort_key"]["S"] != skip)
            if len(items) >= want:
                break
        events = [_event_from_item(i) for i in items[: query.limit]]
        more = len(items) > query.limit
        return Page(events, encode_cursor(events[-1]) if more else None)

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

    def quarantine(self, item: QuarantinedPayload) -> None:
        # Bounded in time by DynamoDB TTL on expires_at_epoch (create_table enables it).
        self._call(
            "quarantine",
            "put_item",
            Item={
                "pk": _s(f"QUARANTINE#{item.quarantine_id}"),
                "sk": _s("QUARANTINE"),
                "kind": _s("QUARANTINE"),
                "sort_key": _s(_sort_key(item.received_at, item.quarantine_id)),
                "quarantine_id": _s(item.quarantine_id),
                "received_at": _s(sortable_timestamp(item.received_at)),
                "expires_at": _s(sortable_timestamp(item.expires_at)),
                TTL_ATTRIBUTE: {"N": str(math.ceil(item.expires_at.timestamp()))},
                "reason": _s(item.reason),
                "errors": _s(json.dumps(item.errors)),
                "body": _s(item.body),
                "body_bytes": {"N": str(item.body_bytes)},
                "body_sha256": _s(item.body_sha256),
            },
        )

    def quarantined(self, limit: int = 100) -> list[QuarantinedPayload]:
        if limit < 1:
            return []
        # TTL deletion runs lazily (typically within days): hide what has expired.
        kwargs = {
            "IndexName": "by_kind",
            "KeyConditionExpression": "#k = :k",
            "FilterExpression": "#e >= :now",
            "ExpressionAttributeNames": {"#k": "kind", "#e": "expires_at"},
            "ExpressionAttributeValues": {
                ":k": _s("QUARANTINE"),
                ":now": _s(sortable_timestamp(datetime.now(UTC))),
            },
            "ScanIndexForward": False,
        }
        found: list[dict[str, Any]] = []
        for batch in self._query_pages(
            "list quarantine", kwargs, lambda: max(limit - len(found), _FILTERED_BATCH)
        ):
            found.extend(batch)
            if len(found) >= limit:
                break
        return [
            QuarantinedPayload(
                quarantine_id=d["quarantine_id"]["S"],
                received_at=_dt(d["received_at"]),
                expires_at=_dt(d["expires_at"]),
                reason=d["reason"]["S"],
                errors=json.loads(d["errors"]["S"]),
                body=d["body"]["S"],
                body_bytes=int(d["body_bytes"]["N"]),
                body_sha256=d["body_sha256"]["S"],
            )
            for d in found[:limit]
        ]

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
                "sort_key": _s(_sort_key(record.detected_at, record.drift_id)),
                "record_json": _s(json.dumps(record.to_dict())),
            },
        )

    def drift(self, limit: int = 100) -> list[DriftRecord]:
        if limit < 1:
            return []
        kwargs = {
            "IndexName": "by_kind",
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": _s("DRIFT")},
            "ScanIndexForward": False,
        }
        found: list[dict[str, Any]] = []
        for batch in self._query_pages("list drift", kwargs, lambda: limit - len(found)):
            found.extend(batch)
            if len(found) >= limit:
                break
        return [DriftRecord.from_dict(json.loads(d["record_json"]["S"])) for d in found[:limit]]

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


def _number(value: float) -> dict[str, str]:
    # boto3 rejects Python floats, and DynamoDB numbers hold neither inf nor exponents
    # beyond -130..+125: such a value is kept as its repr string rather than making an
    # event unstorable (and retried forever). Both read back with float().
    value = float(value)
    if math.isfinite(value) and (value == 0 or 1e-130 <= abs(value) < 1e126):
        return {"N": repr(value)}
    return {"S": repr(value)}


def _sort_key(received_at: datetime, event_id: str) -> str:
    return f"{sortable_timestamp(received_at)}|{event_id}"


def _dt(value: dict[str, str]) -> datetime:
    return datetime.fromisoformat(value["S"])


def _event_item(event: StoredEvent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": _s(f"EVENT#{event.event_id}"),
        "sk": _s("EVENT"),
        "kind": _s("EVENT"),
        "sort_key": _s(_sort_key(event.received_at, event.event_id)),
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
