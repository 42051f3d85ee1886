"""The DynamoDB EventStore (AWS): one table, single-table design.

Storing an event is one ``PutItem`` with ``attribute_not_exists(pk)``: DynamoDB's own
condition check makes it an atomic insert-if-absent in one round trip, and a redelivery
costs one round trip answered ConditionalCheckFailedException. No transaction, no
read-before-write, no per-feed item that every delivery rewrites. Alerts are stored the
same way; quarantine records and samples with ``attribute_not_exists(pk) OR expires_at <
now``, so an expired item that TTL has not deleted yet makes way for a new one, atomically.

Items (primary key ``pk`` / ``sk``, both strings; ``items.py`` builds them from each
record's codec):

=============  ==========================  ======================  ==========================
item           pk                          sk                      listed through
=============  ==========================  ======================  ==========================
event          ``EVENT#<event_id>``        ``EVENT``               GSIs below
quarantine     ``QUARANTINE#<id>``         ``QUARANTINE``          ``by_kind``, both ways
sample         ``SAMPLE#<sample_id>``      ``SAMPLE``              ``by_kind``, ``samples_by_feed``
alert          ``ALERT#<alert_id>``        ``ALERT``               ``by_kind``, newest first
drift          ``DRIFT#<id>``              ``DRIFT``               ``by_kind``, newest first
subscription   ``SUBSCRIPTIONS``           ``SUBSCRIPTION#<id>``   the table (consistent read)
=============  ==========================  ======================  ==========================

Rollups and meter intervals are one partition per feed, ranged by time (``intervals.py``).

Global secondary indexes (``table.INDEXES``; ``sort_key`` is ``sortable_timestamp(time)|id``,
the same string the Firestore backend orders by, so since/until/cursor are one key range,
read forwards or backwards with ``ScanIndexForward``):

- ``by_kind``: ``kind`` + ``sort_key`` — all events (``kind=EVENT``), quarantine, samples,
  alerts, drift.
- ``by_feed``: ``feed_tag`` + ``sort_key`` — one feed's events.
- ``by_correlation``: ``correlation_id`` + ``sort_key`` — one curtailment episode.
- ``feed_tags``: ``kind`` + ``feed_tag``, keys only — skip-scan of the distinct feed tags for
  ``latest_by_feed`` (DynamoDB has no DISTINCT: 2 queries per feed + 1, never a scan).
- ``samples_by_feed``: ``sample_feed`` + ``sort_key`` — one feed's samples.
- ``by_stored``: ``kind`` + ``stored_key`` (``stored_at|event_id``) — events in write order,
  what a tail follows; the feed and correlation filters apply to what it reads.

Sites: the table above is the ``default`` site's, keyed as before sites. Another site's
items qualify their key attributes with the site (``phx1#EVENT#<id>``, ``kind`` =
``phx1#EVENT``, ``feed_tag`` = ``phx1#main_power_feed``; ``items.qualified``), so every
query reads one site's partition. A default site's feed tag may itself look qualified
(``phx1#x`` is a valid tag), so queries on the partitions keyed by a feed tag or a
correlation id also filter on the item's ``site`` attribute where the two could meet.

Only events carry ``feed_tag`` / ``correlation_id`` as attributes (samples name their feed
``sample_feed``; samples, alerts, drift and subscriptions keep the rest as JSON), so the
feed and correlation indexes hold events alone.

GSI reads are eventually consistent (usually well under a second behind); ``get_event``,
``get_quarantined`` and ``subscriptions`` read the table itself, strongly consistent.
Quarantine records and samples carry a numeric ``expires_at_epoch`` for DynamoDB TTL
(``create_table`` enables it); TTL deletes lazily, so expired items are also hidden on
read. An item holds at most 400 KB: a quarantined body longer than ``QUARANTINE_MAX_BYTES``
is kept as a prefix (``truncated``), its original length and digest intact.

The rooms: ``errors`` (the client and what its failures mean), ``table`` (indexes,
creating and upgrading the table), ``query`` (key ranges, filters, paging, conditional
writes), ``items`` (records as items).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from botocore.exceptions import ClientError

from gridhook.events import StoredEvent
from gridhook.sites import DEFAULT_SITE, SITE_NAME
from gridhook.store import codec
from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventOrder,
    EventQuery,
    LoadSample,
    Page,
    QuarantinedPayload,
    QuarantinePage,
    SamplePage,
    SampleQuery,
    SubscriptionRecord,
    encode_position,
    fit_quarantined,
    sort_key_range,
    stamp_stored,
)
from gridhook.store.dynamodb import intervals, table
from gridhook.store.dynamodb.errors import CONDITION_FAILED, Requests, make_client
from gridhook.store.dynamodb.items import (
    item_key,
    plain,
    qualified,
    record_from_item,
    to_item,
    unqualified,
    wire,
)
from gridhook.store.dynamodb.query import expressions, insert, list_range, query_pages
from gridhook.store.dynamodb.table import INDEXES, TTL_ATTRIBUTE
from gridhook.store.intervals import (
    DayRollupQuery,
    DayRollupRecord,
    MeterQuery,
    MeterRecord,
    RollupQuery,
    RollupRecord,
)

__all__ = [
    "INDEXES",
    "ITEM_MAX_BYTES",
    "QUARANTINE_MAX_BYTES",
    "TTL_ATTRIBUTE",
    "DynamoDBEventStore",
]

#: DynamoDB's limit on an item's size (attribute names and values).
ITEM_MAX_BYTES = 400 * 1024
#: What a quarantined body and its errors may use of an item: the other attributes take
#: well under 1 KB, and the margin covers them with room to spare.
QUARANTINE_MAX_BYTES = ITEM_MAX_BYTES - 24 * 1024


def _absent() -> ConditionBase:
    return Attr("pk").not_exists()


def _absent_or_expired() -> ConditionBase:
    # Insert-if-absent, except that an expired item (TTL deletes lazily) may be replaced.
    return Attr("pk").not_exists() | Attr("expires_at").lt(_now())


def _unexpired() -> ConditionBase:
    return Attr("expires_at").gte(_now())  # TTL deletes lazily


def _now() -> datetime:
    return datetime.now(UTC)


#: A value another site's qualified key could equal: ``<site>#…``.
_LOOKS_QUALIFIED = re.compile(rf"(?:{SITE_NAME.pattern})#")


def _of_site(site: str, partition: str) -> ConditionBase | None:
    """The filter that keeps another site's items out of a partition keyed by a value
    from a payload (a feed tag, a correlation id), or None where none can be there: a
    site's qualified value may equal a default site's tag, and the reverse."""
    if site != DEFAULT_SITE:
        return Attr("site").eq(site)
    if _LOOKS_QUALIFIED.match(partition):
        return Attr("site").not_exists() | Attr("site").eq(DEFAULT_SITE)
    return None


def _both(a: ConditionBase | None, b: ConditionBase | None) -> ConditionBase | None:
    if a is None or b is None:
        return a if b is None else b
    return a & b


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
            client = make_client(table, region, endpoint_url, timeout_seconds)
        self._requests = Requests(client, table, tuple(INDEXES))

    @property
    def client(self) -> Any:
        """The botocore DynamoDB client (tests hook its events to count requests)."""
        return self._requests.client

    # -- table ---------------------------------------------------------------------

    def create_table(self, *, wait_seconds: float = 60.0) -> None:
        """Create the table with its indexes (on-demand billing) and enable TTL; add to
        a table that exists already the indexes it lacks, one at a time.

        For local use, tests and upgrades; production tables may instead belong to
        whatever provisions the AWS account (the module docstring lists what they need).
        """
        table.create_table(self._requests, wait_seconds=wait_seconds)

    def delete_table(self) -> None:
        """Drop the table (tests)."""
        table.delete_table(self._requests)

    def _get(
        self, what: str, record_codec: codec.RecordCodec[Any], record_id: str, site: str
    ) -> dict[str, Any] | None:
        """The item of one record, read from the table (strongly consistent), or None."""
        reply = self._requests(
            what, "get_item", Key=item_key(record_codec, record_id, site), ConsistentRead=True
        )
        return reply.get("Item")

    # -- events ---------------------------------------------------------------------

    def add_event(self, event: StoredEvent) -> AddOutcome:
        item = to_item(codec.EVENT, stamp_stored(event))
        return insert(self._requests, "add event", item, _absent())

    def get_event(self, event_id: str, *, site: str = DEFAULT_SITE) -> StoredEvent | None:
        item = self._get("get event", codec.EVENT, event_id, site)
        return None if item is None else record_from_item(codec.EVENT, item)

    def events(self, query: EventQuery) -> Page:
        # Every range condition (since, until, cursor) is on one listing key, exactly as
        # in firestore.py; the index is chosen by the most selective equality filter.
        site = query.site
        where: ConditionBase | None = None
        if query.order is EventOrder.STORED:
            # Write order has one index; the filters apply to what it reads (a tail's
            # window of minutes), as in firestore.py.
            index, partition = "by_stored", qualified(site, codec.EVENT.kind)
            for name in ("feed_tag", "correlation_id"):
                value = getattr(query, name)
                if value is not None:
                    where = _both(where, Attr(name).eq(qualified(site, value)))
        elif query.correlation_id is not None:
            index, partition = "by_correlation", qualified(site, query.correlation_id)
            if query.feed_tag is not None:  # an episode is few events: filter the feed
                where = Attr("feed_tag").eq(qualified(site, query.feed_tag))
            where = _both(where, _of_site(site, partition))
        elif query.feed_tag is not None:
            index, partition = "by_feed", qualified(site, query.feed_tag)
            where = _of_site(site, partition)
        else:
            index, partition = "by_kind", qualified(site, codec.EVENT.kind)
        lower, upper = sort_key_range(query.since, query.until, query.cursor, query.newest_first)
        items = list_range(
            self._requests,
            "query events",
            index,
            partition,
            lower=lower,
            upper=upper,
            descending=query.newest_first,
            want=query.limit + 1,  # +1: is there another page?
            where=where,
        )
        events = [record_from_item(codec.EVENT, i) for i in items[: query.limit]]
        more = len(items) > query.limit
        return Page(events, query.position(events[-1]) if more else None)

    def latest_by_feed(self, *, site: str = DEFAULT_SITE) -> dict[str, StoredEvent]:
        # Skip-scan the site's feed tags on the keys-only feed_tags index, then one
        # newest-first query per feed: 2 requests per feed + 1, whatever the number of
        # events (a feed whose partition another site's items share may take more).
        latest: dict[str, StoredEvent] = {}
        last_key: str | None = None  # qualified, as the index holds it
        while True:
            found = self._requests(
                "list feeds",
                "query",
                IndexName="feed_tags",
                Limit=1,
                **expressions(key=_feed_after(site, last_key)),
            ).get("Items", [])
            if not found:
                return latest
            last_key = plain(found[0])["feed_tag"]
            newest = list_range(
                self._requests,
                "latest event of a feed",
                "by_feed",
                last_key,
                lower=None,
                upper=None,
                descending=True,
                want=1,
                where=_of_site(site, last_key),
            )
            if newest:
                latest[unqualified(site, last_key)] = record_from_item(codec.EVENT, newest[0])

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        # An item holds at most 400 KB: a longer body is kept as a prefix (truncated).
        fitted = fit_quarantined(item, QUARANTINE_MAX_BYTES)
        return insert(
            self._requests,
            "quarantine",
            to_item(codec.QUARANTINE, fitted),
            _absent_or_expired(),
        )

    def get_quarantined(
        self, quarantine_id: str, *, site: str = DEFAULT_SITE
    ) -> QuarantinedPayload | None:
        item = self._get("get quarantined", codec.QUARANTINE, quarantine_id, site)
        if item is None:
            return None
        found: QuarantinedPayload = record_from_item(codec.QUARANTINE, item)
        return None if found.expires_at < _now() else found

    def quarantined(
        self,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = True,
        *,
        site: str = DEFAULT_SITE,
    ) -> QuarantinePage:
        lower, upper = sort_key_range(None, None, cursor, newest_first)
        items = list_range(
            self._requests,
            "list quarantine",
            "by_kind",
            qualified(site, codec.QUARANTINE.kind),
            lower=lower,
            upper=upper,
            descending=newest_first,
            want=limit + 1,
            where=_unexpired(),
        )
        found = [record_from_item(codec.QUARANTINE, i) for i in items[:limit]]
        last = found[-1] if len(items) > limit else None
        return QuarantinePage(
            found, encode_position(last.received_at, last.quarantine_id) if last else None
        )

    def mark_replayed(
        self, quarantine_id: str, event_id: str, replayed_at: datetime, *, site: str = DEFAULT_SITE
    ) -> None:
        try:
            self._requests(
                "mark replayed",
                "update_item",
                expected=CONDITION_FAILED,
                Key=item_key(codec.QUARANTINE, quarantine_id, site),
                UpdateExpression="SET #at = :at, #event = :event",
                # Without the condition, UpdateItem would create an item that is not there.
                **_merged(
                    expressions(condition=Attr("pk").exists()),
                    names={"#at": "replayed_at", "#event": "replayed_event_id"},
                    values=wire({":at": replayed_at, ":event": event_id}),
                ),
            )
        except ClientError:
            return  # nothing kept under that id (never, or expired and deleted)

    # -- load samples ---------------------------------------------------------------

    def add_sample(self, sample: LoadSample) -> AddOutcome:
        item = to_item(codec.SAMPLE, sample)
        return insert(self._requests, "add sample", item, _absent_or_expired())

    def samples(self, query: SampleQuery) -> SamplePage:
        where: ConditionBase | None = _unexpired()
        if query.feed_tag is not None:
            index, partition = "samples_by_feed", qualified(query.site, query.feed_tag)
            where = _both(where, _of_site(query.site, partition))
        else:
            index, partition = "by_kind", qualified(query.site, codec.SAMPLE.kind)
        lower, upper = sort_key_range(query.since, query.until, query.cursor, newest_first=False)
        items = list_range(
            self._requests,
            "list samples",
            index,
            partition,
            lower=lower,
            upper=upper,
            descending=False,
            want=query.limit + 1,
            where=where,
        )
        found = [record_from_item(codec.SAMPLE, i) for i in items[: query.limit]]
        last = found[-1] if len(items) > query.limit else None
        return SamplePage(found, encode_position(last.sampled_at, last.sample_id) if last else None)

    # -- alerts ---------------------------------------------------------------------

    def add_alert(self, record: AlertRecord) -> AddOutcome:
        return insert(self._requests, "add alert", to_item(codec.ALERT, record), _absent())

    def alerts(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[AlertRecord]:
        return self._newest("list alerts", codec.ALERT, limit, site)

    def _newest(
        self, what: str, record_codec: codec.RecordCodec[Any], limit: int, site: str
    ) -> list[Any]:
        if limit < 1:
            return []
        items = list_range(
            self._requests,
            what,
            "by_kind",
            qualified(site, record_codec.kind),
            lower=None,
            upper=None,
            descending=True,
            want=limit,
        )
        return [record_from_item(record_codec, i) for i in items]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._requests("put subscription", "put_item", Item=to_item(codec.SUBSCRIPTION, record))

    def subscriptions(self, *, site: str = DEFAULT_SITE) -> list[SubscriptionRecord]:
        partition = plain(item_key(codec.SUBSCRIPTION, "", site))["pk"]
        kwargs = {"ConsistentRead": True, **expressions(key=Key("pk").eq(partition))}
        return [
            record_from_item(codec.SUBSCRIPTION, item)
            for batch in query_pages(self._requests, "list subscriptions", kwargs)
            for item in batch
        ]

    def delete_subscription(self, subscription_id: str, *, site: str = DEFAULT_SITE) -> None:
        self._requests(
            "delete subscription",
            "delete_item",
            Key=item_key(codec.SUBSCRIPTION, subscription_id, site),
        )

    def add_drift(self, record: DriftRecord) -> None:
        self._requests("add drift", "put_item", Item=to_item(codec.DRIFT, record))

    def drift(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[DriftRecord]:
        return self._newest("list drift", codec.DRIFT, limit, site)

    # -- interval data (rollups, meter intervals: dynamodb/intervals.py) ---------------

    def add_rollups(self, rollups: Sequence[RollupRecord]) -> int:
        return intervals.add_rollups(self._requests, rollups)

    def rollups(self, query: RollupQuery) -> list[RollupRecord]:
        return intervals.rollups(self._requests, query)

    def add_day_rollups(self, days: Sequence[DayRollupRecord]) -> int:
        return intervals.add_day_rollups(self._requests, days)

    def day_rollups(self, query: DayRollupQuery) -> list[DayRollupRecord]:
        return intervals.day_rollups(self._requests, query)

    def add_meter_records(self, records: Sequence[MeterRecord]) -> int:
        return intervals.add_meter_records(self._requests, records)

    def meter_records(self, query: MeterQuery) -> list[MeterRecord]:
        return intervals.meter_records(self._requests, query)

    def close(self) -> None:
        self.client.close()


def _feed_after(site: str, key: str | None) -> ConditionBase:
    """The feed_tags index's key condition: the site's event feed tags, after ``key`` (a
    tag as the index holds it: qualified)."""
    condition = Key("kind").eq(qualified(site, codec.EVENT.kind))
    return condition if key is None else condition & Key("feed_tag").gt(key)


def _merged(
    params: dict[str, Any], *, names: dict[str, str], values: dict[str, Any]
) -> dict[str, Any]:
    """Expression parameters with more placeholders of the caller's own (an update's)."""
    merged = dict(params)
    merged["ExpressionAttributeNames"] = {**params.get("ExpressionAttributeNames", {}), **names}
    merged["ExpressionAttributeValues"] = {**params.get("ExpressionAttributeValues", {}), **values}
    return merged
