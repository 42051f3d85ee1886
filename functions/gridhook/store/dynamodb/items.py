"""The item codec: records as DynamoDB items and back, through each record's codec.

An item is a header (``pk``/``sk``, ``kind`` and the listing keys the GSIs range on, the
expiry of records that expire) and the record. Events and quarantine records keep one
attribute per codec field; samples, alerts, drift and subscriptions keep the record as
one JSON attribute (``record_json``), because their ``feed_tag`` and ``correlation_id``
must not put them into the events' ``by_feed`` and ``by_correlation`` indexes.

Sites: an item carries its ``site``. The ``default`` site's keys are what they were before
sites; another site's key attributes (``pk``, ``kind``, and the events' ``feed_tag`` and
``correlation_id``, the samples' ``sample_feed``) are qualified, ``<site>#<value>``, so each
site has its own partitions of the table and of every index. An event's record fields are
read back unqualified.

Values go through boto3's own TypeSerializer / TypeDeserializer. The one rule they lack:
DynamoDB numbers hold neither inf nor exponents beyond -130..+125, and boto3 refuses
Python floats, so a float is a Decimal of its repr when DynamoDB can hold it and its
repr string otherwise (both read back with ``float()``), rather than an event that
cannot be stored (and is retried forever).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from gridhook.sites import DEFAULT_SITE, check_site_name
from gridhook.store import codec
from gridhook.store.base import sortable_timestamp
from gridhook.store.codec import RecordCodec
from gridhook.store.dynamodb.table import TTL_ATTRIBUTE

__all__ = [
    "QUALIFIED_EVENT_KEYS",
    "attribute",
    "item_key",
    "plain",
    "qualified",
    "record_from_item",
    "to_item",
    "unqualified",
    "wire",
    "wire_values",
]

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

#: (pk, sk) of each record type; ``{}`` is the record's id. Subscriptions share one
#: partition: few, and listed by a strongly consistent query of the table.
_KEYS = {
    codec.EVENT.kind: ("EVENT#{}", "EVENT"),
    codec.QUARANTINE.kind: ("QUARANTINE#{}", "QUARANTINE"),
    codec.SAMPLE.kind: ("SAMPLE#{}", "SAMPLE"),
    codec.ALERT.kind: ("ALERT#{}", "ALERT"),
    codec.DRIFT.kind: ("DRIFT#{}", "DRIFT"),
    codec.SUBSCRIPTION.kind: ("SUBSCRIPTIONS", "SUBSCRIPTION#{}"),
}
#: Record types kept as one JSON attribute rather than an attribute per field.
_AS_JSON = {codec.SAMPLE.kind, codec.ALERT.kind, codec.DRIFT.kind, codec.SUBSCRIPTION.kind}
#: The JSON attribute of those.
RECORD_JSON = "record_json"
#: An event's fields that are also index partition keys: qualified for a site's events.
QUALIFIED_EVENT_KEYS = ("feed_tag", "correlation_id")


def qualified(site: str, value: str) -> str:
    """A key attribute's value for ``site``: as it is for the ``default`` site (its keys are
    those from before sites), ``<site>#<value>`` for any other."""
    return value if site == DEFAULT_SITE else f"{check_site_name(site)}#{value}"


def unqualified(site: str, value: str) -> str:
    """The value ``qualified(site, value)`` was made from."""
    return value if site == DEFAULT_SITE else value.removeprefix(f"{site}#")


def attribute(value: Any) -> Any:
    """A plain value as boto3 serializes it: times as fixed-width UTC strings (what
    conditions and key ranges compare), floats by the rule above."""
    if isinstance(value, datetime):
        return sortable_timestamp(value)
    if isinstance(value, float):
        if math.isfinite(value) and (value == 0 or 1e-130 <= abs(value) < 1e126):
            return Decimal(repr(value))
        return repr(value)
    return value


def wire(values: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes in DynamoDB's wire form; None is left out (an index key attribute must
    be absent, not NULL: an event without a feed tag simply stays out of by_feed)."""
    return {
        name: _SERIALIZER.serialize(attribute(value))
        for name, value in values.items()
        if value is not None
    }


def wire_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Expression attribute values in wire form (None included, as NULL)."""
    return {name: _SERIALIZER.serialize(attribute(value)) for name, value in values.items()}


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item from the wire as Python values (numbers as Decimal, which codecs convert)."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def item_key(
    record_codec: RecordCodec[Any], record_id: str, site: str = DEFAULT_SITE
) -> dict[str, Any]:
    """The primary key of a record of ``site``, in wire form."""
    pk, sk = _KEYS[record_codec.kind]
    return wire({"pk": qualified(site, pk.format(record_id)), "sk": sk.format(record_id)})


def to_item(record_codec: RecordCodec[Any], record: Any) -> dict[str, Any]:
    """A record as an item, in wire form: its header, then the record."""
    record_id = record_codec.record_id(record)
    site = record.site
    pk, sk = _KEYS[record_codec.kind]
    header: dict[str, Any] = {
        "pk": qualified(site, pk.format(record_id)),
        "sk": sk.format(record_id),
        "site": site,
    }
    if record_codec.orders:  # listed by the by_kind index (and by_stored for events)
        header["kind"] = qualified(site, record_codec.kind)
        header |= record_codec.listing_keys(record)
    expires_at = getattr(record, "expires_at", None)
    if expires_at is not None:
        # expires_at (a sortable string) is what reads and conditions compare; the epoch
        # seconds are what DynamoDB TTL deletes by.
        header["expires_at"] = expires_at
        header[TTL_ATTRIBUTE] = math.ceil(expires_at.timestamp())
    if record_codec is codec.SAMPLE:
        header["sample_feed"] = qualified(site, record.feed_tag)  # the samples_by_feed index
    if record_codec is codec.EVENT:  # the by_feed and by_correlation indexes
        for name in QUALIFIED_EVENT_KEYS:
            value = getattr(record, name)
            if value is not None:
                header[name] = qualified(site, value)
    if record_codec.kind in _AS_JSON:
        body: dict[str, Any] = {RECORD_JSON: record_codec.to_json(record)}
    else:
        body = record_codec.encode(record)
        clash = (set(body) & set(header)) - {"expires_at", "site", *QUALIFIED_EVENT_KEYS}
        if clash:
            raise ValueError(f"{record_codec.kind} fields {sorted(clash)} are header attributes")
    return wire(body | header)


def record_from_item(record_codec: RecordCodec[Any], item: Mapping[str, Any]) -> Any:
    """The record an item in wire form holds."""
    values = plain(item)
    if RECORD_JSON in values:
        return record_codec.from_json(values[RECORD_JSON])
    site = values.get("site") or DEFAULT_SITE
    if record_codec is codec.EVENT and site != DEFAULT_SITE:
        for name in QUALIFIED_EVENT_KEYS:
            if values.get(name) is not None:
                values[name] = unqualified(site, values[name])
    return record_codec.decode(values)
