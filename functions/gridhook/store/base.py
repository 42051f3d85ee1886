"""The storage port: what every EventStore backend promises.

Events are immutable and keyed by their event id; storing one is an atomic
insert-if-absent, so redeliveries and concurrent deliveries can never double-store or
contend. Everything else (per-feed state, episodes) is derived from events.

Every record belongs to one site (its ``site``; records stored before sites read as
``default``), and every read names exactly one site: a record is found, listed and
deduplicated within its own site only. A fleet view asks each site and merges, so sites
are kept apart by construction, never by a filter someone could forget. A read that names
no site reads the ``default`` site's records (one site's, never several sites').
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from gridhook.events import StoredEvent, rfc3339
from gridhook.sites import DEFAULT_SITE, check_site_name, site_digest
from gridhook.store.intervals import IntervalStore

__all__ = [
    "AddOutcome",
    "AlertRecord",
    "DriftRecord",
    "EventOrder",
    "EventQuery",
    "EventStore",
    "InvalidCursor",
    "KeyBound",
    "LoadSample",
    "Page",
    "QuarantinePage",
    "QuarantinedPayload",
    "SamplePage",
    "SampleQuery",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "SubscriptionRecord",
    "decode_cursor",
    "encode_cursor",
    "encode_position",
    "fit_quarantined",
    "iter_events",
    "iter_quarantined",
    "iter_samples",
    "quarantine_id",
    "sort_key",
    "sort_key_range",
    "sortable_timestamp",
    "stamp_stored",
    "utf8_prefix",
]

MAX_PAGE_SIZE = 1000


class StoreError(Exception):
    """Base class of storage failures."""


class StoreUnavailable(StoreError):
    """The store could not be reached or did not confirm the write: retry later.

    The receiver answers 503 with Retry-After, so the sender keeps the event.
    """


class StoreNotFound(StoreError):
    """A reader was pointed at a store that does not exist (it never creates one).

    Raised for a SQLite file that is not there: a report of an empty store that a typo
    created would look like a grid with nothing going on.
    """


class InvalidCursor(StoreError, ValueError):
    """A paging cursor that this store did not issue."""


class AddOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


class EventOrder(StrEnum):
    """What a listing of events is ordered, ranged and paged by."""

    #: (received_at, event_id): when DPS delivered it, which a replay keeps.
    RECEIVED = "received"
    #: (stored_at, event_id): write order, what a tail follows. Events stored before
    #: gridhook kept ``stored_at`` are not in it. One index serves it; the feed and
    #: correlation filters apply to what it reads (Firestore, DynamoDB), so bound it with
    #: ``since``: a tail reads a window of minutes.
    STORED = "stored"


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events of one site to list: all filters are optional and combine with AND.

    ``site`` is the one site read (``default`` unless named). ``since`` is inclusive and
    ``until`` exclusive, both on the time ``order`` names (the receipt time by default).
    Results are ordered by (that time, event_id), oldest first or, with ``newest_first``,
    newest first, ``limit`` at a time; a cursor continues in the order it was issued in.
    """

    feed_tag: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None
    newest_first: bool = False
    order: EventOrder = EventOrder.RECEIVED
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        _check_listing(self.limit, self.since, self.until)
        check_site_name(self.site)

    def position(self, event: StoredEvent) -> str:
        """A cursor just after ``event`` in this query's order."""
        if self.order is EventOrder.STORED:
            if event.stored_at is None:
                raise ValueError(f"event {event.event_id} has no stored_at to page by")
            return encode_position(event.stored_at, event.event_id)
        return encode_cursor(event)


def _check_listing(limit: int, since: datetime | None, until: datetime | None) -> None:
    """What every listing query needs: a page size within bounds and aware times."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Page:
    events: list[StoredEvent]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantinedPayload:
    """A rejected payload, kept so it can be diagnosed and replayed: bounded in time.

    ``quarantine_id`` is derived from the body, so the same body rejected again is the
    same record and the first receipt is kept (``quarantine_id()``, per site like event
    ids). ``body`` is the whole body unless the backend cannot hold one that large (then
    a prefix: ``truncated``, not replayable). ``site`` is the site of the path it was
    delivered to: a replay stores its event there.
    """

    quarantine_id: str
    received_at: datetime
    expires_at: datetime
    reason: str
    errors: list[dict[str, str]]
    body: str
    body_bytes: int
    body_sha256: str
    replayed_at: datetime | None = None
    replayed_event_id: str | None = None
    site: str = DEFAULT_SITE

    @property
    def truncated(self) -> bool:
        return len(self.body.encode("utf-8")) < self.body_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "quarantine_id": self.quarantine_id,
            "site": self.site,
            "received_at": rfc3339(self.received_at),
            "expires_at": rfc3339(self.expires_at),
            "reason": self.reason,
            "errors": self.errors,
            "body": self.body,
            "body_bytes": self.body_bytes,
            "body_sha256": self.body_sha256,
            "truncated": self.truncated,
            "replayed_at": rfc3339(self.replayed_at),
            "replayed_event_id": self.replayed_event_id,
        }


@dataclass(frozen=True, slots=True)
class QuarantinePage:
    items: list[QuarantinedPayload]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class LoadSample:
    """What DPS reported for one feed at one moment (GetStatus, during reconcile).

    Measured by DPS, unlike the targets an episode's events request. Immutable; one per
    feed per reconcile run (the id is the site, the feed and DPS's time), kept until
    ``expires_at``. ``target_w`` None means the feed is on its default constraint.
    """

    feed_tag: str
    sampled_at: datetime  # DPS's clock when it tells us, else ours
    calculated_w: float | None
    target_w: float | None
    correlation_id: str | None
    expires_at: datetime
    site: str = DEFAULT_SITE

    @property
    def sample_id(self) -> str:
        key = f"{self.feed_tag}|{sortable_timestamp(self.sampled_at)}"
        return site_digest(key.encode("utf-8"), self.site)[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "site": self.site,
            "feed_tag": self.feed_tag,
            "sampled_at": rfc3339(self.sampled_at),
            "calculated_w": self.calculated_w,
            "target_w": self.target_w,
            "correlation_id": self.correlation_id,
            "expires_at": rfc3339(self.expires_at),
        }


@dataclass(frozen=True, slots=True)
class SampleQuery:
    """Which samples of one site to list, oldest first by (sampled_at, sample_id); like
    EventQuery.

    Expired samples are never listed, whether or not the backend has deleted them yet.
    """

    feed_tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000
    cursor: str | None = None
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        _check_listing(self.limit, self.since, self.until)
        check_site_name(self.site)


@dataclass(frozen=True, slots=True)
class SamplePage:
    samples: list[LoadSample]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A condition to be reported once, such as a stalled ramp.

    Stored insert-if-absent by ``alert_id`` (derived from what the alert is about), so
    a scheduled check that sees the same condition again learns it was already reported.
    """

    alert_id: str
    kind: str  # e.g. episode_stalled
    detected_at: datetime
    message: str
    feed_tag: str | None = None
    correlation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    site: str = DEFAULT_SITE

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "site": self.site,
            "kind": self.kind,
            "detected_at": rfc3339(self.detected_at),
            "message": self.message,
            "feed_tag": self.feed_tag,
            "correlation_id": self.correlation_id,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """What this deployment registered with DPS, and how that went.

    ``url`` is always redacted (no token); ``token_fingerprint`` identifies which
    webhook token the registered URL carries without storing the token.
    """

    subscription_id: str
    url: str
    events: tuple[str, ...]
    token_fingerprint: str | None
    desired: bool
    registered: bool
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    site: str = DEFAULT_SITE

    def to_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "site": self.site,
            "url": self.url,
            "events": list(self.events),
            "token_fingerprint": self.token_fingerprint,
            "desired": self.desired,
            "registered": self.registered,
            "last_attempt": rfc3339(self.last_attempt),
            "last_success": rfc3339(self.last_success),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True, slots=True)
class DriftRecord:
    """A difference between DPS's own view of a feed and what our events say."""

    drift_id: str
    feed_tag: str
    detected_at: datetime
    message: str
    dps_view: dict[str, Any] = field(default_factory=dict)
    our_view: dict[str, Any] = field(default_factory=dict)
    site: str = DEFAULT_SITE

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift_id": self.drift_id,
            "site": self.site,
            "feed_tag": self.feed_tag,
            "detected_at": rfc3339(self.detected_at),
            "message": self.message,
            "dps_view": self.dps_view,
            "our_view": self.our_view,
        }


@runtime_checkable
class EventStore(IntervalStore, Protocol):
    """The storage port. Every backend passes tests/integration/test_store_contract.py.

    Writes take the site from the record (``record.site``); every read names one site
    (``site=``, or the query's ``site``), ``default`` when it names none. Ids are unique
    within a site: the same id on two sites is two records, each found only on its own.
    """

    def add_event(self, event: StoredEvent) -> AddOutcome:
        """Insert the event unless its site has one with its id: one round trip either way."""

    def get_event(self, event_id: str, *, site: str = DEFAULT_SITE) -> StoredEvent | None: ...

    def events(self, query: EventQuery) -> Page:
        """One page of ``query.site``'s events."""

    def latest_by_feed(self, *, site: str = DEFAULT_SITE) -> dict[str, StoredEvent]:
        """The most recently received event of every feed of ``site`` that has one:
        O(feeds), not O(events)."""

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        """Keep a rejected payload unless its site keeps its id already (the first receipt
        wins); an expired record with the same id is replaced."""

    def get_quarantined(
        self, quarantine_id: str, *, site: str = DEFAULT_SITE
    ) -> QuarantinedPayload | None:
        """One unexpired quarantined payload of ``site``, or None."""

    def quarantined(
        self,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = True,
        *,
        site: str = DEFAULT_SITE,
    ) -> QuarantinePage:
        """``site``'s unexpired quarantined payloads by (received_at, quarantine_id),
        newest first."""

    def mark_replayed(
        self, quarantine_id: str, event_id: str, replayed_at: datetime, *, site: str = DEFAULT_SITE
    ) -> None:
        """Record that a quarantined payload of ``site`` was replayed as ``event_id``."""

    def add_sample(self, sample: LoadSample) -> AddOutcome:
        """Insert-if-absent by (site, sample_id); also drops expired samples (retention)."""

    def samples(self, query: SampleQuery) -> SamplePage:
        """One page of ``query.site``'s unexpired samples."""

    def add_alert(self, record: AlertRecord) -> AddOutcome:
        """Insert-if-absent by (site, alert_id): DUPLICATE means it was reported before."""

    def alerts(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[AlertRecord]:
        """``site``'s recorded alerts, newest first."""

    def put_subscription(self, record: SubscriptionRecord) -> None: ...

    def subscriptions(self, *, site: str = DEFAULT_SITE) -> list[SubscriptionRecord]:
        """``site``'s subscription records, by subscription id."""

    def delete_subscription(self, subscription_id: str, *, site: str = DEFAULT_SITE) -> None: ...

    def add_drift(self, record: DriftRecord) -> None: ...

    def drift(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[DriftRecord]:
        """``site``'s recorded drift, newest first."""

    def close(self) -> None: ...


def quarantine_id(body: bytes, site: str = DEFAULT_SITE) -> str:
    """The id of a rejected body: 128 bits of its SHA-256 (with the site's name for a site
    other than ``default``, like event ids), so the same body rejected again on the same
    site is the same record."""
    return site_digest(body, site)[:32]


def sortable_timestamp(value: datetime) -> str:
    """Fixed width, UTC, microseconds: lexical order is time order, so indexes sort right."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sort_key(at: datetime, item_id: str) -> str:
    """``sortable_timestamp(at)|item_id``: the one string key by which the Firestore and
    DynamoDB backends order and range every listing, (time, id) in lexical order."""
    return f"{sortable_timestamp(at)}|{item_id}"


#: One end of a sort_key range: (key, inclusive).
KeyBound = tuple[str, bool]


def sort_key_range(
    since: datetime | None, until: datetime | None, cursor: str | None, newest_first: bool
) -> tuple[KeyBound | None, KeyBound | None]:
    """since (inclusive), until (exclusive) and a cursor as one sort_key range.

    A bare timestamp sorts before every "timestamp|id" key of that time, so since and
    until bound the time exactly. The cursor is a position: the page after it lies above
    it oldest first, below it newest first; it narrows the range, never widens it.
    """
    lower: KeyBound | None = None if since is None else (sortable_timestamp(since), True)
    upper: KeyBound | None = None if until is None else (sortable_timestamp(until), False)
    if cursor is not None:
        after = sort_key(*decode_cursor(cursor))
        if newest_first:
            if upper is None or after < upper[0]:
                upper = (after, False)
        elif lower is None or after >= lower[0]:
            lower = (after, False)
    return lower, upper


def encode_cursor(event: StoredEvent) -> str:
    """An opaque cursor positioned just after ``event`` in (received_at, event_id) order."""
    return encode_position(event.received_at, event.event_id)


def encode_position(at: datetime, item_id: str) -> str:
    """An opaque cursor just after the item at (``at``, ``item_id``) in a listing's order."""
    raw = json.dumps([at.astimezone(UTC).isoformat(), item_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a cursor points after; InvalidCursor if malformed."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        received_at, event_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(received_at), str(event_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursor(f"not a cursor issued by this store: {cursor[:40]!r}") from None


def utf8_prefix(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``max_bytes``.

    Cut on a character boundary: a multi-byte character that would not fit is left out
    whole, never kept as a broken byte sequence.
    """
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # The cut can only break the last character, which "ignore" then drops.
    return encoded[: max(0, max_bytes)].decode("utf-8", "ignore")


def fit_quarantined(item: QuarantinedPayload, max_bytes: int) -> QuarantinedPayload:
    """``item`` with its body and errors cut so that together they fit in ``max_bytes``.

    For backends whose records have a size limit. The errors (normally a few short
    violations) may use up to a quarter of the room; the body gets the rest, cut on a
    character boundary. ``body_bytes`` stays the original length, so a cut body reads as
    ``truncated``.
    """
    errors: list[dict[str, str]] = []
    used = 2  # "[]"
    for error in item.errors:
        size = len(json.dumps(error).encode("utf-8")) + 2  # ", "
        if used + size > max_bytes // 4:
            break
        errors.append(error)
        used += size
    room = max_bytes - used - len(item.reason.encode("utf-8"))
    body = utf8_prefix(item.body, room)
    if body is item.body and len(errors) == len(item.errors):
        return item
    return replace(item, body=body, errors=errors)


def stamp_stored(event: StoredEvent) -> StoredEvent:
    """``event`` with its write time: now by the machine's own clock (a write order, not a
    time in the grid's day, so never the development clock), unless it carries one already
    (a copy between stores keeps its place in the write order)."""
    if event.stored_at is not None:
        return event
    return replace(event, stored_at=datetime.now(UTC))


def iter_events(store: EventStore, query: EventQuery) -> Iterator[StoredEvent]:
    """Every event matching ``query``, following the cursors page by page."""
    while True:
        page = store.events(query)
        yield from page.events
        if page.next_cursor is None:
            return
        query = replace(query, cursor=page.next_cursor)


def iter_samples(store: EventStore, query: SampleQuery) -> Iterator[LoadSample]:
    """Every sample matching ``query``, following the cursors page by page."""
    while True:
        page = store.samples(query)
        yield from page.samples
        if page.next_cursor is None:
            return
        query = replace(query, cursor=page.next_cursor)


def iter_quarantined(
    store: EventStore,
    newest_first: bool = True,
    page_size: int = 100,
    *,
    site: str = DEFAULT_SITE,
) -> Iterator[QuarantinedPayload]:
    """Every unexpired quarantined payload of ``site``, page by page."""
    cursor: str | None = None
    while True:
        page = store.quarantined(page_size, cursor, newest_first, site=site)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
