"""EventStore backends, chosen by URL.

- ``sqlite:///var/gridhook.db`` — the embedded default (one file, WAL).
- ``firestore://PROJECT[/DATABASE]`` — production on Google Cloud.

Backends are imported only when opened, so the receiver on SQLite never loads the
Firestore client.
"""

from __future__ import annotations

from gridhook.store.base import (
    AddOutcome,
    DriftRecord,
    EventQuery,
    EventStore,
    InvalidCursor,
    Page,
    QuarantinedPayload,
    StoreError,
    StoreUnavailable,
    SubscriptionRecord,
    iter_events,
)

__all__ = [
    "AddOutcome",
    "DriftRecord",
    "EventQuery",
    "EventStore",
    "InvalidCursor",
    "Page",
    "QuarantinedPayload",
    "StoreError",
    "StoreUnavailable",
    "SubscriptionRecord",
    "iter_events",
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
    raise ValueError(f"unknown store scheme {scheme!r}: use sqlite:// or firestore://")
