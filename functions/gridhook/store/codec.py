"""One codec per record type: each record's one mapping to and from plain data.

Every backend stores a record through its codec, so a record's stored form is decided
here and nowhere else: the fields it keeps, their stored names, their kinds, and what a
record stored before a field existed reads as. Adding a field to a record is one line in
its codec (with a ``default`` for the records already stored without it); SQLite adds the
column when it opens a store (``sqlite.py`` derives its columns from the codecs), and
Firestore and DynamoDB need nothing.

Plain data is a flat mapping of stored name to ``str | int | float | bool | None |
datetime``: a structured value (an event's payload, a quarantine record's errors, an
alert's details) is JSON text, because no backend keeps every JSON value natively
(Firestore maps reject nested arrays and empty keys; DynamoDB maps turn numbers into
Decimal). Each backend then maps the few kinds to its own types (a time is a fixed-width
UTC string in SQLite and DynamoDB, a timestamp in Firestore).

Decoding is lenient in what the codec's own history wrote: a time as a datetime or any
ISO 8601 string, a structured value as JSON text or as the structure itself (records
written before this module kept some of them nested), a number as int, float, Decimal
or its string, a field under an older name (``legacy``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from gridhook.events import StoredEvent
from gridhook.sites import DEFAULT_SITE
from gridhook.store.base import (
    AlertRecord,
    DriftRecord,
    LoadSample,
    QuarantinedPayload,
    SubscriptionRecord,
    sort_key,
    sortable_timestamp,
)
from gridhook.store.intervals import DayRollupRecord, MeterRecord, RollupRecord, unpack_day

__all__ = [
    "ALERT",
    "CODECS",
    "DAY_ROLLUP",
    "DRIFT",
    "EVENT",
    "METER",
    "QUARANTINE",
    "ROLLUP",
    "SAMPLE",
    "SUBSCRIPTION",
    "Field",
    "Kind",
    "Plain",
    "RecordCodec",
    "as_utc",
]

#: What a stored field holds once encoded: every backend stores these.
Plain = str | int | float | bool | datetime | None

R = TypeVar("R")


class Kind(Enum):
    """What a field holds, which decides how each backend stores it."""

    TEXT = "text"
    TIME = "time"  # an aware datetime, UTC
    REAL = "real"  # a float (inf and huge values included)
    INT = "int"
    BOOL = "bool"
    JSON = "json"  # any JSON value, stored as JSON text
    TEXTS = "texts"  # a tuple of strings, stored as a JSON array


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a field every stored record has had since the record type existed.
REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Field:
    """One stored field of a record.

    ``attr`` is the record's attribute; ``name`` the stored name (default: ``attr``).
    ``default`` is what a record stored without the field reads as (``default_factory``
    for a mutable one); a field without either is required. ``legacy`` lists names an
    older version stored it under, read when ``name`` is absent. A ``derived`` field is
    computed by the record (a property such as a sample's id): stored for keys and
    indexes, never passed back to the record.
    """

    attr: str
    kind: Kind
    name: str = ""
    default: Any = REQUIRED
    default_factory: Callable[[], Any] | None = None
    legacy: tuple[str, ...] = ()
    derived: bool = False

    @property
    def stored_name(self) -> str:
        return self.name or self.attr

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.default_factory is None

    def missing(self, data: Mapping[str, Any], record: str) -> Any:
        """What the field reads as in a record stored without it."""
        if self.default_factory is not None:
            return self.default_factory()
        if self.default is REQUIRED:
            if self.stored_name in data:  # stored as null (never written so by gridhook)
                return None
            raise ValueError(f"a stored {record} record lacks its {self.stored_name!r} field")
        return self.default


def as_utc(value: datetime | str) -> datetime:
    """A stored time as a plain aware UTC datetime.

    Firestore returns its own datetime subclass (with nanoseconds); strings are the
    fixed-width form SQLite and DynamoDB keep, or RFC 3339 from older records.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if type(value) is datetime and value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError(f"a stored time without a time zone: {value!r}")
    value = value.astimezone(UTC)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


def _json_text(value: Any) -> str:
    # Strict JSON: NaN is not JSON, and no reader would take it back.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _texts_text(value: Any) -> str:
    return json.dumps(list(value), ensure_ascii=False)


def _parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # or kept nested (older)


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_parsed(value))


#: How each kind becomes plain data (None: as it is).
_ENCODERS: dict[Kind, Callable[[Any], Plain] | None] = {
    Kind.TEXT: None,
    Kind.TIME: as_utc,
    Kind.REAL: float,
    Kind.INT: None,
    Kind.BOOL: None,
    Kind.JSON: _json_text,
    Kind.TEXTS: _texts_text,
}
#: How each kind reads back from what any backend returns (None: as it is).
_DECODERS: dict[Kind, Callable[[Any], Any] | None] = {
    Kind.TEXT: None,
    Kind.TIME: as_utc,
    Kind.REAL: float,  # int, float, Decimal, or the string of an inf / huge value
    Kind.INT: int,  # int or Decimal
    Kind.BOOL: bool,  # SQLite keeps 0 / 1
    Kind.JSON: _parsed,
    Kind.TEXTS: _texts,
}


@dataclass(frozen=True, slots=True)
class RecordCodec(Generic[R]):
    """How one record type is stored: its fields and the keys it is listed by.

    ``kind`` names the record type in stores that keep several in one place (DynamoDB's
    ``kind`` attribute). ``orders`` maps the name of each listing key to the time
    attribute it orders by: a listing key is ``sort_key(time, id)``, one string per
    listing order, which Firestore and DynamoDB range and order on.
    """

    kind: str
    record: Callable[..., R]
    id_attr: str
    fields: tuple[Field, ...]
    orders: tuple[tuple[str, str], ...] = ()
    # Per field, worked out once: reading a report converts thousands of records.
    _encoding: tuple[tuple[str, str, Callable[[Any], Plain] | None], ...] = field(
        init=False, repr=False, compare=False
    )
    _decoding: tuple[tuple[Field, tuple[str, ...], Callable[[Any], Any] | None], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        encoding = tuple((f.stored_name, f.attr, _ENCODERS[f.kind]) for f in self.fields)
        decoding = tuple(
            (f, (f.stored_name, *f.legacy), _DECODERS[f.kind]) for f in self.fields if not f.derived
        )
        object.__setattr__(self, "_encoding", encoding)
        object.__setattr__(self, "_decoding", decoding)

    def record_id(self, record: R) -> str:
        return str(getattr(record, self.id_attr))

    def encode(self, record: R) -> dict[str, Plain]:
        """The record as plain data, stored name -> value (None kept as None)."""
        plain: dict[str, Plain] = {}
        for name, attr, encoder in self._encoding:
            value = getattr(record, attr)
            plain[name] = value if value is None or encoder is None else encoder(value)
        return plain

    def decode(self, data: Mapping[str, Any]) -> R:
        """The record from what a backend stored (extra keys, such as sort keys, ignored)."""
        values: dict[str, Any] = {}
        for f, keys, decoder in self._decoding:
            for key in keys:
                value = data.get(key)
                if value is not None:
                    values[f.attr] = value if decoder is None else decoder(value)
                    break
            else:
                values[f.attr] = f.missing(data, self.kind)
        return self.record(**values)

    def listing_keys(self, record: R) -> dict[str, str]:
        """Each listing key of the record (one whose time is unset is left out)."""
        keys = {}
        for name, time_attr in self.orders:
            at = getattr(record, time_attr)
            if at is not None:
                keys[name] = sort_key(at, self.record_id(record))
        return keys

    def to_json(self, record: R) -> str:
        """The record as one JSON object (for backends that keep a record as a document)."""
        plain = self.encode(record)
        return json.dumps(
            {k: sortable_timestamp(v) if isinstance(v, datetime) else v for k, v in plain.items()},
            ensure_ascii=False,
        )

    def from_json(self, text: str) -> R:
        return self.decode(json.loads(text))

    def field_of(self, attr: str) -> Field:
        return next(f for f in self.fields if f.attr == attr)


def _dict() -> dict[str, Any]:
    return {}


EVENT: RecordCodec[StoredEvent] = RecordCodec(
    kind="EVENT",
    record=StoredEvent,
    id_attr="event_id",
    fields=(
        # The site it belongs to; stored before sites: the default site's.
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("event_id", Kind.TEXT),
        Field("received_at", Kind.TIME),
        Field("event", Kind.TEXT),
        Field("feed_tag", Kind.TEXT, default=None),
        Field("correlation_id", Kind.TEXT, default=None),
        Field("start_time", Kind.TIME, default=None),
        Field("end_time", Kind.TIME, default=None),
        Field("target_w", Kind.REAL, default=None),
        Field("prev_target_w", Kind.REAL, default=None),
        Field("calculated_w", Kind.REAL, default=None),
        Field("compliant", Kind.BOOL, default=None),
        # SQLite named it "payload" before its columns came from this codec.
        Field("payload", Kind.JSON, name="payload_json", legacy=("payload",)),
        # Write order (what a tail follows); events stored before it existed have none.
        Field("stored_at", Kind.TIME, default=None),
    ),
    orders=(("sort_key", "received_at"), ("stored_key", "stored_at")),
)

QUARANTINE: RecordCodec[QuarantinedPayload] = RecordCodec(
    kind="QUARANTINE",
    record=QuarantinedPayload,
    id_attr="quarantine_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("quarantine_id", Kind.TEXT),
        Field("received_at", Kind.TIME),
        Field("expires_at", Kind.TIME),
        Field("reason", Kind.TEXT),
        Field("errors", Kind.JSON),
        Field("body", Kind.TEXT),
        Field("body_bytes", Kind.INT),
        Field("body_sha256", Kind.TEXT),
        Field("replayed_at", Kind.TIME, default=None),
        Field("replayed_event_id", Kind.TEXT, default=None),
    ),
    orders=(("sort_key", "received_at"),),
)

SAMPLE: RecordCodec[LoadSample] = RecordCodec(
    kind="SAMPLE",
    record=LoadSample,
    id_attr="sample_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("sample_id", Kind.TEXT, derived=True),
        Field("feed_tag", Kind.TEXT),
        Field("sampled_at", Kind.TIME),
        Field("calculated_w", Kind.REAL, default=None),
        Field("target_w", Kind.REAL, default=None),
        Field("correlation_id", Kind.TEXT, default=None),
        Field("expires_at", Kind.TIME),
    ),
    orders=(("sort_key", "sampled_at"),),
)

ALERT: RecordCodec[AlertRecord] = RecordCodec(
    kind="ALERT",
    record=AlertRecord,
    id_attr="alert_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("alert_id", Kind.TEXT),
        Field("kind", Kind.TEXT),
        Field("detected_at", Kind.TIME),
        Field("message", Kind.TEXT),
        Field("feed_tag", Kind.TEXT, default=None),
        Field("correlation_id", Kind.TEXT, default=None),
        # Firestore kept it as "details_json" (JSON text); SQLite and DynamoDB as "details"
        # inside the record's JSON.
        Field(
            "details", Kind.JSON, name="details_json", legacy=("details",), default_factory=_dict
        ),
    ),
    orders=(("sort_key", "detected_at"),),
)

SUBSCRIPTION: RecordCodec[SubscriptionRecord] = RecordCodec(
    kind="SUBSCRIPTION",
    record=SubscriptionRecord,
    id_attr="subscription_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("subscription_id", Kind.TEXT),
        Field("url", Kind.TEXT),
        Field("events", Kind.TEXTS),
        Field("token_fingerprint", Kind.TEXT, default=None),
        Field("desired", Kind.BOOL),
        Field("registered", Kind.BOOL),
        Field("last_attempt", Kind.TIME, default=None),
        Field("last_success", Kind.TIME, default=None),
        Field("last_error", Kind.TEXT, default=None),
        Field("consecutive_failures", Kind.INT, default=0),
    ),
)

DRIFT: RecordCodec[DriftRecord] = RecordCodec(
    kind="DRIFT",
    record=DriftRecord,
    id_attr="drift_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("drift_id", Kind.TEXT),
        Field("feed_tag", Kind.TEXT),
        Field("detected_at", Kind.TIME),
        Field("message", Kind.TEXT),
        Field("dps_view", Kind.JSON, default_factory=_dict),
        Field("our_view", Kind.JSON, default_factory=_dict),
    ),
    orders=(("sort_key", "detected_at"),),
)

# -- interval data (gridhook.store.intervals) ------------------------------------------------


def _rollup(**values: Any) -> RollupRecord:
    # The buckets come back as JSON arrays: the record keeps tuples.
    for name in ("counts", "means", "minima", "maxima", "covered_s"):
        values[name] = tuple(values[name])
    return RollupRecord(**values)


ROLLUP: RecordCodec[RollupRecord] = RecordCodec(
    kind="ROLLUP",
    record=_rollup,
    id_attr="rollup_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("rollup_id", Kind.TEXT, derived=True),
        Field("feed", Kind.TEXT),
        Field("hour_start", Kind.TIME),
        # Twelve 5-minute buckets each, as JSON arrays (null: a bucket without samples).
        Field("counts", Kind.JSON),
        Field("means", Kind.JSON),
        Field("minima", Kind.JSON),
        Field("maxima", Kind.JSON),
        Field("covered_s", Kind.JSON),
        Field("expires_at", Kind.TIME),
    ),
    orders=(("sort_key", "hour_start"),),
)

DAY_ROLLUP: RecordCodec[DayRollupRecord] = RecordCodec(
    kind="DAYROLLUP",
    record=unpack_day,
    id_attr="day_rollup_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("day_rollup_id", Kind.TEXT, derived=True),
        Field("feed", Kind.TEXT),
        Field("day_start", Kind.TIME),
        # The day's hourly rollups as one JSON array: [hour, counts, means, minima, maxima,
        # covered_s, expiry] each (one text field, whatever the day holds).
        Field("packed", Kind.JSON, name="hours"),
        Field("expires_at", Kind.TIME),
        Field("feeds", Kind.TEXTS),
    ),
    orders=(("sort_key", "day_start"),),
)

METER: RecordCodec[MeterRecord] = RecordCodec(
    kind="METER",
    record=MeterRecord,
    id_attr="meter_id",
    fields=(
        Field("site", Kind.TEXT, default=DEFAULT_SITE),
        Field("meter_id", Kind.TEXT, derived=True),
        Field("feed", Kind.TEXT),
        Field("interval_start", Kind.TIME),
        Field("interval_end", Kind.TIME),
        Field("revision", Kind.INT),
        Field("mean_w", Kind.REAL, default=None),  # None: withdrawn by this revision
        Field("imported_at", Kind.TIME),
        Field("source", Kind.TEXT),
    ),
    orders=(("sort_key", "interval_start"),),
)

#: Every codec, by kind.
CODECS: dict[str, RecordCodec[Any]] = {
    codec.kind: codec
    for codec in (EVENT, QUARANTINE, SAMPLE, ALERT, SUBSCRIPTION, DRIFT, ROLLUP, DAY_ROLLUP, METER)
}
