"""The Firestore EventStore (production on Google Cloud).

Storing an event is ``DocumentReference.create()``: Firestore's own precondition that
the document must not exist makes it an atomic insert-if-absent in one Commit round
trip, and a redelivery costs one round trip answered ALREADY_EXISTS. No transaction,
no read-before-write, no shared counter document. The payload is kept as a JSON string
(``payload_json``): Firestore maps reject some valid JSON (nested arrays, empty keys,
deep nesting), and an event we cannot store would be retried forever.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.auth.exceptions import GoogleAuthError
from google.cloud import firestore

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

__all__ = ["COLLECTIONS", "FirestoreEventStore"]

#: Collection names (Terraform's indexes and TTL policy refer to these).
COLLECTIONS = {
    "events": "power_events",
    "quarantine": "quarantine",
    "subscriptions": "subscriptions",
    "drift": "drift",
}

# Transient failures worth retrying inside the store's timeout. A retried create whose
# first attempt did land answers ALREADY_EXISTS: still correct, the event is stored.
_TRANSIENT = if_exception_type(
    gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.Aborted
)


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
        self._events = self._client.collection(COLLECTIONS["events"])
        self._quarantine = self._client.collection(COLLECTIONS["quarantine"])
        self._subscriptions = self._client.collection(COLLECTIONS["subscriptions"])
        self._drift = self._client.collection(COLLECTIONS["drift"])

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, retry=self._retry, timeout=self._timeout, **kwargs)
        except gexc.AlreadyExists:
            raise
        except (gexc.GoogleAPIError, OSError) as exc:
            raise StoreUnavailable(
                f"Firestore {self.project}/{self.database} {what} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    # -- events ---------------------------------------------------------------------

    def add_event(self, event: StoredEvent) -> AddOutcome:
        try:
            self._call("create", self._events.document(event.event_id).create, _to_doc(event))
        except gexc.AlreadyExists:
            return AddOutcome.DUPLICATE
        return AddOutcome.ACCEPTED

    def get_event(self, event_id: str) -> StoredEvent | None:
        snapshot = self._call("get", self._events.document(event_id).get)
        return _from_doc(snapshot.to_dict()) if snapshot.exists else None

    def events(self, query: EventQuery) -> Page:
        # Every range condition (since, until, cursor) is on sort_key, one string field:
        # Firestore then needs one composite index per equality filter, and paging does
        # not rest on query cursors (which the test emulator ignores).
        q: Any = self._events
        if query.feed_tag is not None:
            q = q.where(filter=firestore.FieldFilter("feed_tag", "==", query.feed_tag))
        if query.correlation_id is not None:
            q = q.where(filter=firestore.FieldFilter("correlation_id", "==", query.correlation_id))
        lower: tuple[str, str] | None = None
        if query.since is not None:
            lower = (">=", sortable_timestamp(query.since))
        if query.cursor is not None:
            after_time, after_id = decode_cursor(query.cursor)
            after = _sort_key(after_time, after_id)
            if lower is None or after >= lower[1]:
                lower = (">", after)
        if lower is not None:
            q = q.where(filter=firestore.FieldFilter("sort_key", *lower))
        if query.until is not None:
            q = q.where(
                filter=firestore.FieldFilter("sort_key", "<", sortable_timestamp(query.until))
            )
        q = q.order_by("sort_key").limit(query.limit + 1)  # +1: is there another page?
        docs = self._call("query", q.get)
        events = [_from_doc(d.to_dict()) for d in docs[: query.limit]]
        more = len(docs) > query.limit
        return Page(events, encode_cursor(events[-1]) if more else None)

    def latest_by_feed(self) -> dict[str, StoredEvent]:
        # Firestore has no DISTINCT: skip-scan the feed tags, one short query per feed.
        latest: dict[str, StoredEvent] = {}
        last_tag: str | None = None
        while True:
            q: Any = self._events
            if last_tag is not None:
                q = q.where(filter=firestore.FieldFilter("feed_tag", ">", last_tag))
            else:
                q = q.where(filter=firestore.FieldFilter("feed_tag", ">", ""))
            docs = self._call("query", q.order_by("feed_tag").limit(1).get)
            if not docs:
                return latest
            tag = docs[0].get("feed_tag")
            newest = self._call(
                "query",
                self._events.where(filter=firestore.FieldFilter("feed_tag", "==", tag))
                .order_by("sort_key", direction=firestore.Query.DESCENDING)
                .limit(1)
                .get,
            )
            if newest:
                latest[tag] = _from_doc(newest[0].to_dict())
            last_tag = tag

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> None:
        # Bounded in time by the TTL policy on expires_at (Terraform sets it up).
        self._call(
            "quarantine",
            self._quarantine.document(item.quarantine_id).set,
            {
                "quarantine_id": item.quarantine_id,
                "received_at": item.received_at,
                "expires_at": item.expires_at,
                "reason": item.reason,
                "errors": json.dumps(item.errors),
                "body": item.body,
                "body_bytes": item.body_bytes,
                "body_sha256": item.body_sha256,
            },
        )

    def quarantined(self, limit: int = 100) -> list[QuarantinedPayload]:
        now = datetime.now(UTC)
        docs = self._call(
            "query",
            self._quarantine.order_by("received_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .get,
        )
        items = []
        for doc in docs:
            d = doc.to_dict()
            if d["expires_at"] < now:  # TTL deletion runs lazily; hide what has expired
                continue
            items.append(
                QuarantinedPayload(
                    quarantine_id=d["quarantine_id"],
                    received_at=d["received_at"],
                    expires_at=d["expires_at"],
                    reason=d["reason"],
                    errors=json.loads(d["errors"]),
                    body=d["body"],
                    body_bytes=d["body_bytes"],
                    body_sha256=d["body_sha256"],
                )
            )
        return items

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._call(
            "put subscription",
            self._subscriptions.document(record.subscription_id).set,
            record.to_dict(),
        )

    def subscriptions(self) -> list[SubscriptionRecord]:
        docs = self._call("query", self._subscriptions.order_by("subscription_id").get)
        return [SubscriptionRecord.from_dict(d.to_dict()) for d in docs]

    def delete_subscription(self, subscription_id: str) -> None:
        self._call("delete subscription", self._subscriptions.document(subscription_id).delete)

    def add_drift(self, record: DriftRecord) -> None:
        self._call("add drift", self._drift.document(record.drift_id).set, record.to_dict())

    def drift(self, limit: int = 100) -> list[DriftRecord]:
        docs = self._call(
            "query",
            self._drift.order_by("detected_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .get,
        )
        return [DriftRecord.from_dict(d.to_dict()) for d in docs]

    def close(self) -> None:
        self._client.close()


def _sort_key(received_at: datetime, event_id: str) -> str:
    return f"{sortable_timestamp(received_at)}|{event_id}"


def _to_doc(event: StoredEvent) -> dict[str, Any]:
    return {
        "sort_key": _sort_key(event.received_at, event.event_id),
        "event_id": event.event_id,
        "received_at": event.received_at,
        "event": event.event,
        "feed_tag": event.feed_tag,
        "correlation_id": event.correlation_id,
        "start_time": event.start_time,
        "end_time": event.end_time,
        "target_w": event.target_w,
        "prev_target_w": event.prev_target_w,
        "calculated_w": event.calculated_w,
        "compliant": event.compliant,
        "payload_json": json.dumps(event.payload, ensure_ascii=False, allow_nan=False),
    }


def _from_doc(doc: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        event_id=doc["event_id"],
        received_at=_utc(doc["received_at"]),
        event=doc["event"],
        feed_tag=doc.get("feed_tag"),
        correlation_id=doc.get("correlation_id"),
        start_time=_utc(doc.get("start_time")),
        end_time=_utc(doc.get("end_time")),
        target_w=doc.get("target_w"),
        prev_target_w=doc.get("prev_target_w"),
        calculated_w=doc.get("calculated_w"),
        compliant=doc.get("compliant"),
        payload=json.loads(doc["payload_json"]),
    )


def _utc(value: datetime | None) -> datetime | None:
    # Firestore returns DatetimeWithNanoseconds; plain aware datetimes compare cleanly.
    if value is None:
        return None
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
