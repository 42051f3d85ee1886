"""EventStore backends, chosen by URL.

- ``sqlite:///var/gridhook.db`` — the embedded default (one file, WAL).
- ``firestore://PROJECT[/DATABASE]`` — production on Google Cloud.
- ``dynamodb://TABLE[?region=REGION&endpoint_url=URL]`` — AWS (needs ``gridhook[aws]``).
  Without ``region`` the client reads ``AWS_REGION`` / ``AWS_DEFAULT_REGION``; without
  ``endpoint_url`` boto3 reads ``AWS_ENDPOINT_URL_DYNAMODB`` (e.g. DynamoDB Local, moto).
  Credentials come from boto3's usual chain, never from the URL.

Backends are imported only when opened, so the receiver on SQLite never loads the
Firestore client or boto3.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl

from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
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
    StoreUnavailable,
    SubscriptionRecord,
    iter_events,
    iter_quarantined,
    iter_samples,
)

__all__ = [
    "AddOutcome",
    "AlertRecord",
    "DriftRecord",
    "EventQuery",
    "EventStore",
    "InvalidCursor",
    "LazyStore",
    "LoadSample",
    "Page",
    "QuarantinePage",
    "QuarantinedPayload",
    "SamplePage",
    "SampleQuery",
    "StoreError",
    "StoreUnavailable",
    "SubscriptionRecord",
    "iter_events",
    "iter_quarantined",
    "iter_samples",
    "open_store",
]


def open_store(url: str, *, timeout_seconds: float = 10.0) -> EventStore:
    """Open the store a URL names; raises ValueError naming what is wrong with the URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a store URL: {url!r}")
    if scheme == "sqlite":
        from gridhook.store.sqlite import SQLiteEventStore

        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ValueError("sqlite store URL needs a path: sqlite:///var/gridhook.db")
        return SQLiteEventStore(path, timeout_seconds=timeout_seconds)
    if scheme == "firestore":
        from gridhook.store.firestore import FirestoreEventStore

        project, _, database = rest.strip("/").partition("/")
        if not project:
            raise ValueError("firestore store URL needs a project: firestore://PROJECT[/DATABASE]")
        return FirestoreEventStore(
            project, database or "(default)", timeout_seconds=timeout_seconds
        )
    if scheme == "dynamodb":
        return _open_dynamodb(rest, timeout_seconds)
    raise ValueError(f"unknown store scheme {scheme!r}: use sqlite://, firestore:// or dynamodb://")


class LazyStore:
    """The store a URL names, opened on first use (once, whichever thread comes first).

    An HTTP function holds one: a store that is down at cold start then costs 503s until
    it answers (opening is tried again on the next request), not a crashed instance.
    """

    def __init__(
        self, url: str, *, timeout_seconds: float, store: EventStore | None = None
    ) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._store = store
        self._lock = threading.Lock()

    def get(self) -> EventStore:
        """The open store; raises what ``open_store`` raises while it cannot be opened."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self._url, timeout_seconds=self._timeout)
        return self._store


_DYNAMODB_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_DYNAMODB_USAGE = "dynamodb://TABLE[?region=REGION&endpoint_url=URL]"


def _open_dynamodb(rest: str, timeout_seconds: float) -> EventStore:
    table, _, query = rest.partition("?")
    table = table.strip("/")
    if not _DYNAMODB_TABLE.fullmatch(table):
        raise ValueError(
            f"dynamodb store URL needs a table name (3-255 of A-Z a-z 0-9 _ . -): {_DYNAMODB_USAGE}"
        )
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - {"region", "endpoint_url"})
    if unknown:
        raise ValueError(f"unknown dynamodb store URL option(s) {unknown}: {_DYNAMODB_USAGE}")
    try:
        from gridhook.store.dynamodb import DynamoDBEventStore
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("boto3", "botocore"):
            raise
        raise StoreUnavailable(
            f"dynamodb:// needs boto3, which is not installed: pip install 'gridhook[aws]' ({exc})"
        ) from exc
    return DynamoDBEventStore(
        table,
        region=options.get("region") or None,
        endpoint_url=options.get("endpoint_url") or None,
        timeout_seconds=timeout_seconds,
    )
