"""The Firestore EventStore (production on Google Cloud).

Storing an event is ``DocumentReference.create()``: Firestore's own precondition that
the document must not exist makes it an atomic insert-if-absent in one Commit round
trip, and a redelivery costs one round trip answered ALREADY_EXISTS. No transaction,
no read-before-write, no shared counter document. The payload is kept as a JSON string
(``payload_json``): Firestore maps reject some valid JSON (nested arrays, empty keys,
deep nesting), and an event we cannot store would be retried forever.

Collections (names in ``COLLECTIONS``; infra/terraform/firestore.tf indexes them), one set
per site: the ``default`` site's are the root collections (where every record was kept
before sites, so an older database needs no migration), another site's are subcollections
of ``sites/{site}`` with the same ids (``sites/phx1/power_events``), so the composite indexes
and TTL policies, scoped by collection id, apply to every site unchanged. Every read is a
query of one site's collection (never a collection-group query): sites are kept apart by
the path, and a document does not repeat its site (the path says it).

- ``power_events``: one document per event, id = event id.
- ``quarantine``: one per rejected body, id = quarantine id; first receipt wins.
- ``samples``: one per load sample, id = sample id.
- ``alerts``: one per alert, id = alert id; ``create()`` makes "report once" atomic.
- ``subscriptions``, ``drift``: small, upserted.

Documents are each record's codec (``store/codec.py``) plus its listing keys; times are
Firestore timestamps, except in subscriptions and drift, which keep them as strings as
they always have (drift is ordered by ``detected_at``, and Firestore orders values of
different types apart).

Every listing orders and ranges on one string field, ``sort_key`` =
``sortable_timestamp(time)|id``: since, until and the paging cursor are one key range in
either direction, each query shape needs one index, and paging never rests on query
cursors (which the test emulator ignores). Events in write order range on ``stored_key``
(``stored_at|id``) alone and filter what they read. Quarantine and samples expire through TTL
policies on ``expires_at``; Firestore deletes lazily (typically within a day), so
expired documents are also skipped on read, and one that is still there makes way for a
new record with its id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.auth.exceptions import GoogleAuthError
from google.cloud import firestore

from gridhook.events import StoredEvent
from gridhook.sites import DEFAULT_SITE, check_site_name
from gridhook.store import codec
from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventOrder,
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
    encode_position,
    fit_quarantined,
    sort_key_range,
    sortable_timestamp,
    stamp_stored,
)
from gridhook.store.codec import RecordCodec, as_utc
from gridhook.store.intervals import (
    DayRollupQuery,
    DayRollupRecord,
    MeterQuery,
    MeterRecord,
    RollupQuery,
    RollupRecord,
)

__all__ = [
    "COLLECTIONS",
    "DOCUMENT_MAX_BYTES",
    "QUARANTINE_MAX_BYTES",
    "SITES_COLLECTION",
    "FirestoreEventStore",
]

#: Collection names (Terraform's indexes and TTL policies refer to these).
COLLECTIONS = {
    "events": "power_events",
    "rollups": "rollups",
    "day_rollups": "day_rollups",
    "meter": "meter_intervals",
    "quarantine": "quarantine",
    "samples": "samples",
    "alerts": "alerts",
    "subscriptions": "subscriptions",
    "drift": "drift",
}
#: The collection whose documents hold the collections of every site but ``default``.
SITES_COLLECTION = "sites"

#: Firestore's limit on a document's storage size.
DOCUMENT_MAX_BYTES = 1_048_576
#: What a quarantined body and its errors may use of a document: the rest (field names,
#: ids, times, the document name: well under 1 KiB) has a wide margin.
QUARANTINE_MAX_BYTES = DOCUMENT_MAX_BYTES - 32 * 1024

R = TypeVar("R")

# Transient failures worth retrying inside the store's timeout. A retried create whose
# first attempt did land answers ALREADY_EXISTS: still correct, the event is stored.
_TRANSIENT = if_exception_type(
    gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.Aborted
)
# Listings that skip expired documents read at least this many a query.
_FILTERED_BATCH = 100


class FirestoreEventStore:
    """EventStore on a Firestore (native mode) database."""

    def __init__(
        self,
        project: str,
        database: str = "(default)",
        *,
        timeout_seconds: float = 10.0,
        client: firestore.Client | None = None,
    ) -> None:
        self.project = project
        self.database = database
        self._timeout = timeout_seconds
        self._retry = Retry(
            predicate=_TRANSIENT, initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout_seconds
        )
        # With FIRESTORE_EMULATOR_HOST set the client talks to the emulator, unauthenticated.
        try:
            self._client = client or firestore.Client(project=project, database=database)
        except GoogleAuthError as exc:
            raise StoreUnavailable(
                f"no Google credentials for Firestore {project}/{database}: {exc}; on Cloud "
                "Functions check the service account, locally run `gcloud auth "
                "application-default login` or set FIRESTORE_EMULATOR_HOST"
            ) from exc
        self._collections: dict[tuple[str, str], Any] = {}

    def _collection(self, name: str, site: str) -> Any:
        """The collection of one site's records of one kind (``COLLECTIONS[name]``)."""
        ref = self._collections.get((name, site))
        if ref is None:
            collection_id = COLLECTIONS[name]
            if site == DEFAULT_SITE:
                ref = self._client.collection(collection_id)
            else:
                # Checked: the name is a path segment, so nothing else may pass for one.
                ref = self._client.collection(
                    SITES_COLLECTION, check_site_name(site), collection_id
                )
            self._collections[(name, site)] = ref
        return ref

    def _call(
        self,
        what: str,
        fn: Any,
        *args: Any,
        expected: tuple[type[Exception], ...] = (gexc.AlreadyExists,),
        **kwargs: Any,
    ) -> Any:
        """One request; every failure but the ``expected`` ones is StoreUnavailable."""
        try:
            return fn(*args, retry=self._retry, timeout=self._timeout, **kwargs)
        except expected:
            raise  # the caller's answer (a duplicate, a missing document), not a failure
        except (gexc.GoogleAPIError, OSError) as exc:
            raise StoreUnavailable(
                f"Firestore {self.project}/{self.database} {what} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _insert_unless_live(
        self, what: str, ref: Any, doc: dict[str, Any], now: datetime
    ) -> AddOutcome:
        """create(); a document with the id that has expired (TTL deletes lazily) is replaced."""
        try:
            self._call(what, ref.create, doc)
        except gexc.AlreadyExists:
            existing = self._call(what, ref.get)
            if existing.exists and as_utc(existing.get("expires_at")) >= now:
                return AddOutcome.DUPLICATE
            # Two writers replacing the same expired document at once may both answer
            # ACCEPTED; one of them is kept, and both carry the same id-derived content.
            self._call(what, ref.set, doc)
        return AddOutcome.ACCEPTED

    def _ranged(
        self,
        what: str,
        query: Any,
        *,
        key: str,
        lower: KeyBound | None,
        upper: KeyBound | None,
        descending: bool,
        want: int,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``want`` documents of ``query`` in a range of the listing key ``key``
        (``sort_key``, or ``stored_key`` for events in write order), in order.

        ``keep`` (a predicate on a document) skips some, such as expired ones: then the
        range moves past each batch until ``want`` are found or the range is exhausted.
        """
        found: list[dict[str, Any]] = []
        while True:
            q = query
            if lower is not None:
                operator = ">=" if lower[1] else ">"
                q = q.where(filter=firestore.FieldFilter(key, operator, lower[0]))
            if upper is not None:
                operator = "<=" if upper[1] else "<"
                q = q.where(filter=firestore.FieldFilter(key, operator, upper[0]))
            direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
            batch = want - len(found) if keep is None else max(want - len(found), _FILTERED_BATCH)
            docs = self._call(what, q.order_by(key, direction=direction).limit(batch).get)
            for snapshot in docs:
                doc = snapshot.to_dict()
                if keep is None or keep(doc):
                    found.append(doc)
                    if len(found) == want:
                        return found
            if len(docs) < batch:
                return found
            last = docs[-1].get(key)
            if descending:
                upper = (last, False)
            else:
                lower = (last, False)

    # -- events ---------------------------------------------------------------------

    def add_event(self, event: StoredEvent) -> AddOutcome:
        doc = _document(codec.EVENT, stamp_stored(event))
        ref = self._collection("events", event.site).document(event.event_id)
        try:
            self._call("create", ref.create, doc)
        except gexc.AlreadyExists:
            return AddOutcome.DUPLICATE
        return AddOutcome.ACCEPTED

    def get_event(self, event_id: str, *, site: str = DEFAULT_SITE) -> StoredEvent | None:
        snapshot = self._call("get", self._collection("events", site).document(event_id).get)
        return _decode(codec.EVENT, snapshot.to_dict(), site) if snapshot.exists else None

    def events(self, query: EventQuery) -> Page:
        collection = self._collection("events", query.site)
        lower, upper = sort_key_range(query.since, query.until, query.cursor, query.newest_first)
        want = query.limit + 1  # +1: is there another page?
        if query.order is EventOrder.STORED:
            # Write order has one index (stored_key); the filters apply to what it reads.
            # A tail reads minutes of writes, and a composite index per filter would be
            # written with every event.
            def matches(doc: dict[str, Any]) -> bool:
                return query.feed_tag in (None, doc.get("feed_tag")) and (
                    query.correlation_id in (None, doc.get("correlation_id"))
                )

            filtered = query.feed_tag is not None or query.correlation_id is not None
            docs = self._ranged(
                "query",
                collection,
                key="stored_key",
                lower=lower,
                upper=upper,
                descending=query.newest_first,
                want=want,
                keep=matches if filtered else None,
            )
        else:
            # Equality filters, then one range on sort_key: Firestore needs one composite
            # index per combination of equality filters and direction (firestore.tf).
            q: Any = collection
            if query.feed_tag is not None:
                q = q.where(filter=firestore.FieldFilter("feed_tag", "==", query.feed_tag))
            if query.correlation_id is not None:
                q = q.where(
                    filter=firestore.FieldFilter("correlation_id", "==", query.correlation_id)
                )
            docs = self._ranged(
                "query",
                q,
                key="sort_key",
                lower=lower,
                upper=upper,
                descending=query.newest_first,
                want=want,
            )
        events = [_decode(codec.EVENT, d, query.site) for d in docs[: query.limit]]
        more = len(docs) > query.limit
        return Page(events, query.position(events[-1]) if more else None)

    def latest_by_feed(self, *, site: str = DEFAULT_SITE) -> dict[str, StoredEvent]:
        # Firestore has no DISTINCT: skip-scan the feed tags, one short query per feed.
        collection = self._collection("events", site)
        latest: dict[str, StoredEvent] = {}
        last_tag = ""  # sorts before every non-empty tag
        while True:
            q = collection.where(filter=firestore.FieldFilter("feed_tag", ">", last_tag))
            docs = self._call("query", q.order_by("feed_tag").limit(1).get)
            if not docs:
                return latest
            tag = docs[0].get("feed_tag")
            newest = self._call(
                "query",
                collection.where(filter=firestore.FieldFilter("feed_tag", "==", tag))
                .order_by("sort_key", direction=firestore.Query.DESCENDING)
                .limit(1)
                .get,
            )
            if newest:
                latest[tag] = _decode(codec.EVENT, newest[0].to_dict(), site)
            last_tag = tag

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        # A document holds at most 1 MiB: a longer body is kept as a prefix (truncated).
        # expires_at is a timestamp: the TTL policy deletes by it (firestore.tf).
        doc = _document(codec.QUARANTINE, fit_quarantined(item, QUARANTINE_MAX_BYTES))
        ref = self._collection("quarantine", item.site).document(item.quarantine_id)
        return self._insert_unless_live("quarantine", ref, doc, datetime.now(UTC))

    def get_quarantined(
        self, quarantine_id: str, *, site: str = DEFAULT_SITE
    ) -> QuarantinedPayload | None:
        ref = self._collection("quarantine", site).document(quarantine_id)
        snapshot = self._call("get quarantined", ref.get)
        if not snapshot.exists:
            return None
        doc = snapshot.to_dict()
        return _decode(codec.QUARANTINE, doc, site) if _live(doc, datetime.now(UTC)) else None

    def quarantined(
        self,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = True,
        *,
        site: str = DEFAULT_SITE,
    ) -> QuarantinePage:
        now = datetime.now(UTC)
        lower, upper = sort_key_range(None, None, cursor, newest_first)
        docs = self._ranged(
            "list quarantine",
            self._collection("quarantine", site),
            key="sort_key",
            lower=lower,
            upper=upper,
            descending=newest_first,
            want=limit + 1,
            keep=lambda doc: _live(doc, now),
        )
        items: list[QuarantinedPayload] = [_decode(codec.QUARANTINE, d, site) for d in docs[:limit]]
        last = items[-1] if len(docs) > limit else None
        return QuarantinePage(
            items, encode_position(last.received_at, last.quarantine_id) if last else None
        )

    def mark_replayed(
        self, quarantine_id: str, event_id: str, replayed_at: datetime, *, site: str = DEFAULT_SITE
    ) -> None:
        try:
            self._call(
                "mark replayed",
                self._collection("quarantine", site).document(quarantine_id).update,
                {"replayed_at": replayed_at, "replayed_event_id": event_id},
                expected=(gexc.NotFound,),
            )
        except gexc.NotFound:
            return  # nothing kept under that id (never, or expired and deleted)

    # -- load samples ---------------------------------------------------------------

    def add_sample(self, sample: LoadSample) -> AddOutcome:
        # expires_at is a timestamp: the TTL policy deletes by it (firestore.tf).
        doc = _document(codec.SAMPLE, sample)
        ref = self._collection("samples", sample.site).document(sample.sample_id)
        return self._insert_unless_live("add sample", ref, doc, datetime.now(UTC))

    def samples(self, query: SampleQuery) -> SamplePage:
        now = datetime.now(UTC)
        q: Any = self._collection("samples", query.site)
        if query.feed_tag is not None:
            q = q.where(filter=firestore.FieldFilter("feed_tag", "==", query.feed_tag))
        lower, upper = sort_key_range(query.since, query.until, query.cursor, newest_first=False)
        docs = self._ranged(
            "list samples",
            q,
            key="sort_key",
            lower=lower,
            upper=upper,
            descending=False,
            want=query.limit + 1,
            keep=lambda doc: _live(doc, now),
        )
        samples: list[LoadSample] = [
            _decode(codec.SAMPLE, d, query.site) for d in docs[: query.limit]
        ]
        last = samples[-1] if len(docs) > query.limit else None
        return SamplePage(
            samples, encode_position(last.sampled_at, last.sample_id) if last else None
        )

    # -- alerts ---------------------------------------------------------------------

    def add_alert(self, record: AlertRecord) -> AddOutcome:
        doc = _document(codec.ALERT, record)
        try:
            ref = self._collection("alerts", record.site).document(record.alert_id)
            self._call("add alert", ref.create, doc)
        except gexc.AlreadyExists:
            return AddOutcome.DUPLICATE
        return AddOutcome.ACCEPTED

    def alerts(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[AlertRecord]:
        docs = self._call(
            "list alerts",
            self._collection("alerts", site)
            .order_by("sort_key", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .get,
        )
        return [_decode(codec.ALERT, d.to_dict(), site) for d in docs]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._call(
            "put subscription",
            self._collection("subscriptions", record.site).document(record.subscription_id).set,
            _text_times(codec.SUBSCRIPTION, record),
        )

    def subscriptions(self, *, site: str = DEFAULT_SITE) -> list[SubscriptionRecord]:
        collection = self._collection("subscriptions", site)
        docs = self._call("query", collection.order_by("subscription_id").get)
        return [_decode(codec.SUBSCRIPTION, d.to_dict(), site) for d in docs]

    def delete_subscription(self, subscription_id: str, *, site: str = DEFAULT_SITE) -> None:
        ref = self._collection("subscriptions", site).document(subscription_id)
        self._call("delete subscription", ref.delete)

    def add_drift(self, record: DriftRecord) -> None:
        self._call(
            "add drift",
            self._collection("drift", record.site).document(record.drift_id).set,
            _text_times(codec.DRIFT, record),
        )

    def drift(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[DriftRecord]:
        docs = self._call(
            "query",
            self._collection("drift", site)
            .order_by("detected_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .get,
        )
        return [_decode(codec.DRIFT, d.to_dict(), site) for d in docs]

    # -- interval data (rollups, meter intervals) --------------------------------------
    #
    # Per site as FLEET.md decides: the default site's documents in the root collections,
    # another site's under sites/{site}/ with the same collection ids (so the indexes and
    # TTL policies of firestore.tf apply to both). A document does not repeat its site.

    def add_rollups(self, rollups: Sequence[RollupRecord]) -> int:
        return self._add_expiring("add rollups", "rollups", codec.ROLLUP, rollups)

    def rollups(self, query: RollupQuery) -> list[RollupRecord]:
        collection = self._collection("rollups", query.site)
        found = self._list_expiring("list rollups", collection, codec.ROLLUP, query)
        return sorted(found, key=lambda r: (r.hour_start, r.feed))

    def add_day_rollups(self, days: Sequence[DayRollupRecord]) -> int:
        return self._add_expiring("add day rollups", "day_rollups", codec.DAY_ROLLUP, days)

    def _add_expiring(
        self, what: str, name: str, record_codec: RecordCodec[Any], records: Sequence[Any]
    ) -> int:
        """Insert-if-absent of records that expire (an expired one makes way), each in
        its site's collection ``name``."""
        docs = [
            (
                self._collection(name, r.site).document(record_codec.record_id(r)),
                _document(record_codec, r),
            )
            for r in records
        ]
        return self._create_all(what, docs, expiring=True)

    def day_rollups(self, query: DayRollupQuery) -> list[DayRollupRecord]:
        collection = self._collection("day_rollups", query.site)
        found = self._list_expiring("list day rollups", collection, codec.DAY_ROLLUP, query)
        return sorted(found, key=lambda r: (r.day_start, r.feed))

    def _list_expiring(
        self,
        what: str,
        collection: Any,
        record_codec: RecordCodec[R],
        query: RollupQuery | DayRollupQuery,
    ) -> list[R]:
        """One site's unexpired records of a range (TTL deletes lazily), of one feed or all."""
        now = datetime.now(UTC)
        if query.feed is not None:
            collection = collection.where(filter=firestore.FieldFilter("feed", "==", query.feed))
        docs = self._ranged_all(
            what, collection, query.since, query.until, keep=lambda doc: _live(doc, now)
        )
        return [_decode(record_codec, doc, query.site) for doc in docs]

    def add_meter_records(self, records: Sequence[MeterRecord]) -> int:
        docs = [
            (self._collection("meter", r.site).document(r.meter_id), _document(codec.METER, r))
            for r in records
        ]
        return self._create_all("add meter records", docs, expiring=False)

    def meter_records(self, query: MeterQuery) -> list[MeterRecord]:
        q = self._collection("meter", query.site).where(
            filter=firestore.FieldFilter("feed", "==", query.feed)
        )
        docs = self._ranged_all("list meter records", q, query.since, query.until)
        found = [_decode(codec.METER, doc, query.site) for doc in docs]
        return sorted(found, key=lambda r: (r.interval_start, r.revision))

    def _ranged_all(
        self,
        what: str,
        query: Any,
        since: datetime,
        until: datetime,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Every document of ``query`` whose listing key lies in [since, until), a page of
        ``_PAGE`` a query: one range of sort_key, so O(documents in the range)."""
        lower, upper = sort_key_range(since, until, None, newest_first=False)
        found: list[dict[str, Any]] = []
        while True:
            page = self._ranged(
                what,
                query,
                key="sort_key",
                lower=lower,
                upper=upper,
                descending=False,
                want=_PAGE,
                keep=keep,
            )
            found += page
            if len(page) < _PAGE:
                return found
            lower = (page[-1]["sort_key"], False)

    def _create_all(
        self, what: str, docs: Sequence[tuple[Any, dict[str, Any]]], *, expiring: bool
    ) -> int:
        """Create each document unless it exists (or, ``expiring``, exists unexpired: TTL
        deletes lazily, so an expired one makes way); how many were new.

        ``_BATCH`` at a time: one BatchGetDocuments says which exist, one batched Commit
        creates the others (``create``: each fails if it exists, so a writer racing this
        one still cannot store a record twice). A Commit that meets one created since is
        done again one by one. No transaction (the emulator has none to lean on).
        """
        added = 0
        now = datetime.now(UTC)
        mask = ["expires_at"] if expiring else ["feed"]
        for first in range(0, len(docs), _BATCH):
            chunk = docs[first : first + _BATCH]
            kept = self._existing(what, [ref for ref, _ in chunk], mask)
            batch, writes = self._client.batch(), []
            for ref, doc in chunk:
                existing = kept.get(ref.path)
                if existing is None:
                    batch.create(ref, doc)
                elif expiring and not _live(existing.to_dict(), now):
                    batch.set(ref, doc)  # two writers may both replace it: the same record
                else:
                    continue
                writes.append((ref, doc))
            if not writes:
                continue
            try:
                self._call(what, batch.commit)
                added += len(writes)
                continue
            except gexc.AlreadyExists:
                pass  # another writer created one of them meanwhile
            for ref, doc in writes:
                if expiring:
                    outcome = self._insert_unless_live(what, ref, doc, now)
                else:
                    try:
                        self._call(what, ref.create, doc)
                        outcome = AddOutcome.ACCEPTED
                    except gexc.AlreadyExists:
                        outcome = AddOutcome.DUPLICATE
                added += outcome is AddOutcome.ACCEPTED
        return added

    def _existing(self, what: str, refs: list[Any], mask: list[str]) -> dict[str, Any]:
        """The snapshots of those of ``refs`` that exist (one BatchGetDocuments), by path."""

        def read(**kwargs: Any) -> list[Any]:  # get_all streams: read it all inside the call
            return list(self._client.get_all(refs, field_paths=mask, **kwargs))

        return {s.reference.path: s for s in self._call(what, read) if s.exists}

    def close(self) -> None:
        self._client.close()


def _live(doc: dict[str, Any], now: datetime) -> bool:
    return as_utc(doc["expires_at"]) >= now


def _plain(record_codec: RecordCodec[R], record: R) -> dict[str, Any]:
    """A record's plain data without its site, which the document's path holds."""
    plain: dict[str, Any] = record_codec.encode(record)
    del plain["site"]
    return plain


def _document(record_codec: RecordCodec[R], record: R) -> dict[str, Any]:
    """A record as a document: its codec's plain data (times as Firestore timestamps)
    and its listing keys."""
    return _plain(record_codec, record) | record_codec.listing_keys(record)


def _text_times(record_codec: RecordCodec[R], record: R) -> dict[str, Any]:
    """A record as a document whose times are strings, as subscriptions and drift have
    always been kept: drift is ordered by ``detected_at``, and Firestore orders values of
    different types apart, so the type of a stored ordering field never changes."""
    plain = _plain(record_codec, record)
    return {k: sortable_timestamp(v) if isinstance(v, datetime) else v for k, v in plain.items()}


# -- interval data (rollups, meter intervals) ----------------------------------------------

#: Documents a listing query asks for at a time.
_PAGE = 1000
#: Writes to one batched Commit (Firestore's limit is 500).
_BATCH = 500


def _decode(record_codec: RecordCodec[R], doc: dict[str, Any], site: str) -> R:
    """The record a document of ``site``'s collection holds."""
    return record_codec.decode({**doc, "site": site})
