"""EventStore backends, chosen by URL (``store/url.py`` parses them, for settings too).

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — the embedded
  default (one file, WAL), spelled as SQLAlchemy spells them.
- ``firestore://PROJECT[/DATABASE]`` — production on Google Cloud.
- ``dynamodb://TABLE[?region=REGION&endpoint_url=URL]`` — AWS (needs ``gridhook[aws]``).
  Without ``region`` the client reads ``AWS_REGION`` / ``AWS_DEFAULT_REGION``; without
  ``endpoint_url`` boto3 reads ``AWS_ENDPOINT_URL_DYNAMODB`` (e.g. DynamoDB Local, moto).
  Credentials come from boto3's usual chain, never from the URL.

Backends are imported only when opened, so the receiver on SQLite never loads the
Firestore client or boto3. Writers open with ``create=True`` (the default); readers with
``create=False``, which never makes a store: a SQLite file that is not there is
StoreNotFound ("no store at PATH"), not an empty database reported as a quiet grid.
"""

from __future__ import annotations

import threading

from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventOrder,
    EventQuery,
    EventStore,
    InvalidCursor,
    LoadSample,
    Page,
    QuarantinedPayload,
    QuarantinePage,
    SamplePage,
    SampleQuery,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    SubscriptionRecord,
    iter_events,
    iter_quarantined,
    iter_samples,
    quarantine_id,
)
from gridhook.store.intervals import (
    DayRollupQuery,
    DayRollupRecord,
    IntervalStore,
    MeterQuery,
    MeterRecord,
    RollupQuery,
    RollupRecord,
    current_meter,
)
from gridhook.store.url import DynamoDBURL, FirestoreURL, SQLiteURL, parse_store_url

__all__ = [
    "AddOutcome",
    "AlertRecord",
    "DayRollupQuery",
    "DayRollupRecord",
    "DriftRecord",
    "EventOrder",
    "EventQuery",
    "EventStore",
    "IntervalStore",
    "InvalidCursor",
    "LazyStore",
    "LoadSample",
    "MeterQuery",
    "MeterRecord",
    "Page",
    "QuarantinePage",
    "QuarantinedPayload",
    "RollupQuery",
    "RollupRecord",
    "SamplePage",
    "SampleQuery",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "SubscriptionRecord",
    "current_meter",
    "iter_events",
    "iter_quarantined",
    "iter_samples",
    "open_store",
    "parse_store_url",
    "quarantine_id",
]


def open_store(url: str, *, timeout_seconds: float = 10.0, create: bool = True) -> EventStore:
    """Open the store a URL names; ValueError naming what is wrong with the URL.

    ``create=False`` is for readers: a store that does not exist is StoreNotFound rather
    than a new, empty one (SQLite; Firestore databases and DynamoDB tables are never
    created by opening them, and a missing one answers StoreUnavailable saying so).
    """
    parsed = parse_store_url(url)
    if isinstance(parsed, SQLiteURL):
        from gridhook.store.sqlite import SQLiteEventStore

        return SQLiteEventStore(parsed.path, timeout_seconds=timeout_seconds, create=create)
    if isinstance(parsed, FirestoreURL):
        from gridhook.store.firestore import FirestoreEventStore

        return FirestoreEventStore(parsed.project, parsed.database, timeout_seconds=timeout_seconds)
    return _open_dynamodb(parsed, timeout_seconds)


class LazyStore:
    """The store a URL names, opened on first use (once, whichever thread comes first).

    An HTTP function holds one: a store that is down at cold start then costs 503s until
    it answers (opening is tried again on the next request), not a crashed instance.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        store: EventStore | None = None,
        create: bool = True,
    ) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._store = store
        self._create = create  # False for a reader: it answers StoreNotFound until one exists
        self._lock = threading.Lock()

    def get(self) -> EventStore:
        """The open store; raises what ``open_store`` raises while it cannot be opened."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(
                        self._url, timeout_seconds=self._timeout, create=self._create
                    )
        return self._store


def _open_dynamodb(parsed: DynamoDBURL, timeout_seconds: float) -> EventStore:
    try:
        from gridhook.store.dynamodb import DynamoDBEventStore
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("boto3", "botocore"):
            raise
        raise StoreUnavailable(
            f"dynamodb:// needs boto3, which is not installed: pip install 'gridhook[aws]' ({exc})"
        ) from exc
    return DynamoDBEventStore(
        parsed.table,
        region=parsed.region,
        endpoint_url=parsed.endpoint_url,
        timeout_seconds=timeout_seconds,
    )
