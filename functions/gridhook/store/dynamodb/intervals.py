"""Interval data on DynamoDB: hourly rollups and meter intervals, one partition per series.

=============  ======================================  ====================  ===============
item           pk                                      sk                    listed through
=============  ======================================  ====================  ===============
rollup         ``ROLLUP#<feed>``                       ``<hour>|<id>``       the table; all
                                                                             feeds: ``by_kind``
day rollup     ``DAYROLLUP#<feed>``                    ``<day>|<id>``        the table; all
                                                                             feeds: ``by_kind``
meter          ``METER#<feed>``                        ``<start>|<id>``      the table
=============  ======================================  ====================  ===============

A feed's rollups or meter intervals are one partition of the table ranged by time, so a
listing is one strongly consistent Query of the key range: O(items in the range). A site
other than ``default`` qualifies the key attributes with its name (``phx1#ROLLUP#main``,
``kind`` = ``phx1#ROLLUP``; the fleet's rule for every item), so each read is of one
site's partition. Rollups (hourly and daily) also carry ``kind`` and ``sort_key`` (the
``by_kind`` index: every feed's rollups of a range), ``expires_at`` and the TTL
attribute; an expired rollup that TTL has not deleted yet is hidden on read and makes way
for a new one. Each write is a conditional PutItem (insert-if-absent): no transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from gridhook.store import codec
from gridhook.store.base import AddOutcome, sort_key_range, sortable_timestamp
from gridhook.store.codec import RecordCodec
from gridhook.store.dynamodb.errors import Requests
from gridhook.store.dynamodb.items import plain, qualified, wire
from gridhook.store.dynamodb.query import expressions, insert, list_range, query_pages
from gridhook.store.dynamodb.table import TTL_ATTRIBUTE
from gridhook.store.intervals import (
    DayRollupQuery,
    DayRollupRecord,
    MeterQuery,
    MeterRecord,
    RollupQuery,
    RollupRecord,
)

__all__ = [
    "add_day_rollups",
    "add_meter_records",
    "add_rollups",
    "day_rollups",
    "meter_records",
    "rollups",
]

#: The records that expire (kept the long retention; TTL deletes them).
_EXPIRING = (codec.ROLLUP, codec.DAY_ROLLUP)
#: Item attributes that are keys, not record fields.
_HEADER = ("pk", "sk", "kind", "sort_key", TTL_ATTRIBUTE)


def _partition(record_codec: RecordCodec[Any], site: str, feed: str) -> str:
    return qualified(site, f"{record_codec.kind}#{feed}")


def _item(record_codec: RecordCodec[Any], record: Any) -> dict[str, Any]:
    listing = record_codec.listing_keys(record)["sort_key"]
    item: dict[str, Any] = {
        **record_codec.encode(record),
        "pk": _partition(record_codec, record.site, record.feed),
        "sk": listing,
    }
    if record_codec in _EXPIRING:
        item |= {"kind": qualified(record.site, record_codec.kind), "sort_key": listing}
        item[TTL_ATTRIBUTE] = math.ceil(record.expires_at.timestamp())
    return wire(item)


def _record(record_codec: RecordCodec[Any], item: dict[str, Any]) -> Any:
    values = plain(item)
    for name in _HEADER:
        values.pop(name, None)
    return record_codec.decode(values)


def _absent_or_expired() -> ConditionBase:
    return Attr("pk").not_exists() | Attr("expires_at").lt(datetime.now(UTC))


def _add(
    requests: Requests, what: str, record_codec: RecordCodec[Any], records: Sequence[Any]
) -> int:
    condition = _absent_or_expired() if record_codec in _EXPIRING else Attr("pk").not_exists()
    added = 0
    for record in records:
        outcome = insert(requests, what, _item(record_codec, record), condition)
        added += outcome is AddOutcome.ACCEPTED
    return added


def _series(
    requests: Requests,
    what: str,
    partition: str,
    since: datetime,
    until: datetime,
    where: ConditionBase | None = None,
) -> list[dict[str, Any]]:
    """Every item of one partition of the table with sk in [since, until): sk is
    ``<time>|<id>``, so the bare times bound it exactly (BETWEEN them)."""
    lower, upper = sortable_timestamp(since), sortable_timestamp(until)
    if upper < lower:
        return []
    key = Key("pk").eq(partition) & Key("sk").between(lower, upper)
    kwargs = {"ConsistentRead": True, **expressions(key=key, where=where)}
    return [item for page in query_pages(requests, what, kwargs) for item in page]


def add_rollups(requests: Requests, rollups: Sequence[RollupRecord]) -> int:
    return _add(requests, "add rollup", codec.ROLLUP, rollups)


def rollups(requests: Requests, query: RollupQuery) -> list[RollupRecord]:
    found: list[RollupRecord] = _expiring(requests, "list rollups", codec.ROLLUP, query)
    return sorted(found, key=lambda r: (r.hour_start, r.feed))


def add_day_rollups(requests: Requests, days: Sequence[DayRollupRecord]) -> int:
    return _add(requests, "add day rollup", codec.DAY_ROLLUP, days)


def day_rollups(requests: Requests, query: DayRollupQuery) -> list[DayRollupRecord]:
    found: list[DayRollupRecord] = _expiring(requests, "list day rollups", codec.DAY_ROLLUP, query)
    return sorted(found, key=lambda r: (r.day_start, r.feed))


def _expiring(
    requests: Requests,
    what: str,
    record_codec: RecordCodec[Any],
    query: RollupQuery | DayRollupQuery,
) -> list[Any]:
    """The unexpired records of one feed's partition, or of every feed (``by_kind``)."""
    unexpired = Attr("expires_at").gte(datetime.now(UTC))  # TTL deletes lazily
    if query.feed is not None:
        partition = _partition(record_codec, query.site, query.feed)
        items = _series(requests, what, partition, query.since, query.until, unexpired)
    else:
        lower, upper = sort_key_range(query.since, query.until, None, newest_first=False)
        items = []
        while True:  # list_range answers at most what it is asked for: ask again after it
            page = list_range(
                requests,
                what,
                "by_kind",
                qualified(query.site, record_codec.kind),
                lower=lower,
                upper=upper,
                descending=False,
                want=1000,
                where=unexpired,
            )
            items += page
            if len(page) < 1000:
                break
            lower = (page[-1]["sort_key"]["S"], False)
    return [_record(record_codec, item) for item in items]


def add_meter_records(requests: Requests, records: Sequence[MeterRecord]) -> int:
    return _add(requests, "add meter record", codec.METER, records)


def meter_records(requests: Requests, query: MeterQuery) -> list[MeterRecord]:
    partition = _partition(codec.METER, query.site, query.feed)
    items = _series(requests, "list meter records", partition, query.since, query.until)
    found: list[MeterRecord] = [_record(codec.METER, item) for item in items]
    return sorted(found, key=lambda r: (r.interval_start, r.revision))
