"""The embedded EventStore: one SQLite file in WAL mode.

Each thread of the server gets its own connection (sqlite3 connections must not be
shared across threads); WAL lets readers run beside the single writer, and
``synchronous=FULL`` makes every acknowledged insert survive a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

__all__ = ["SQLiteEventStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id       TEXT PRIMARY KEY,
    received_at    TEXT NOT NULL,
    event          TEXT NOT NULL,
    feed_tag       TEXT,
    correlation_id TEXT,
    start_time     TEXT,
    end_time       TEXT,
    target_w       REAL,
    prev_target_w  REAL,
    calculated_w   REAL,
    compliant      INTEGER,
    payload        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at, event_id);
CREATE INDEX IF NOT EXISTS events_by_feed ON events (feed_tag, received_at, event_id);
CREATE INDEX IF NOT EXISTS events_by_correlation ON events (correlation_id, received_at, event_id);
CREATE TABLE IF NOT EXISTS quarantine (
    quarantine_id TEXT PRIMARY KEY,
    received_at   TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    errors        TEXT NOT NULL,
    body          TEXT NOT NULL,
    body_bytes    INTEGER NOT NULL,
    body_sha256   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_by_expiry ON quarantine (expires_at);
CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_id TEXT PRIMARY KEY,
    record          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drift (
    drift_id    TEXT PRIMARY KEY,
    detected_at TEXT NOT NULL,
    record      TEXT NOT NULL
);
"""

_EVENT_COLUMNS = (
    "event_id, received_at, event, feed_tag, correlation_id, start_time, end_time, "
    "target_w, prev_target_w, calculated_w, compliant, payload"
)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else sortable_timestamp(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class SQLiteEventStore:
    """EventStore on a local SQLite file (the embedded default)."""

    def __init__(self, path: str | Path, *, timeout_seconds: float = 10.0) -> None:
        self.path = Path(path)
        self._timeout = timeout_seconds
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # SQLite admits one writer at a time. Queueing this process's writers on a lock
        # hands the write lock straight to the next thread when a commit ends; left to
        # SQLite, a writer that finds it taken sleeps in the busy handler's growing steps
        # (1, 2, 5, 10 … ms), which under a burst costs far more than the fsync itself.
        # Other processes (the CLI) still meet busy_timeout as before.
        self._write_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open SQLite store at {self.path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: autocommit, each statement is its own transaction.
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _execute(
        self, sql: str, params: tuple[Any, ...] = (), *, write: bool = False
    ) -> sqlite3.Cursor:
        try:
            conn = self._connection()
            if write:
                with self._write_lock:
                    return conn.execute(sql, params)
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store at {self.path}: {exc}") from exc

    # -- events ---------------------------------------------------------------------

    def add_event(self, event: StoredEvent) -> AddOutcome:
        cursor = self._execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (event_id) DO NOTHING",
            (
                event.event_id,
                _ts(event.received_at),
                event.event,
                event.feed_tag,
                event.correlation_id,
                _ts(event.start_time),
                _ts(event.end_time),
                event.target_w,
                event.prev_target_w,
                event.calculated_w,
                None if event.compliant is None else int(event.compliant),
                json.dumps(event.payload, ensure_ascii=False, allow_nan=False),
            ),
            write=True,
        )
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def get_event(self, event_id: str) -> StoredEvent | None:
        row = self._execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if row is None else self._event(row)

    def events(self, query: EventQuery) -> Page:
        where: list[str] = []
        params: list[Any] = []
        if query.feed_tag is not None:
            where.append("feed_tag = ?")
            params.append(query.feed_tag)
        if query.correlation_id is not None:
            where.append("correlation_id = ?")
            params.append(query.correlation_id)
        if query.since is not None:
            where.append("received_at >= ?")
            params.append(_ts(query.since))
        if query.until is not None:
            where.append("received_at < ?")
            params.append(_ts(query.until))
        if query.cursor is not None:
            after_time, after_id = decode_cursor(query.cursor)
            where.append("(received_at, event_id) > (?, ?)")
            params.extend([_ts(after_time), after_id])
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received_at, event_id LIMIT ?"
        params.append(query.limit + 1)  # one extra row tells whether another page exists
        rows = self._execute(sql, tuple(params)).fetchall()
        events = [self._event(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(events, encode_cursor(events[-1]) if more else None)

    def latest_by_feed(self) -> dict[str, StoredEvent]:
        rows = self._execute(
            f"SELECT {_EVENT_COLUMNS} FROM events AS e WHERE feed_tag IS NOT NULL "
            "AND (received_at, event_id) = (SELECT received_at, event_id FROM events "
            "WHERE feed_tag = e.feed_tag ORDER BY received_at DESC, event_id DESC LIMIT 1)"
        ).fetchall()
        return {row[3]: self._event(row) for row in rows}

    @staticmethod
    def _event(row: tuple[Any, ...]) -> StoredEvent:
        return StoredEvent(
            event_id=row[0],
            received_at=datetime.fromisoformat(row[1]),
            event=row[2],
            feed_tag=row[3],
            correlation_id=row[4],
            start_time=_dt(row[5]),
            end_time=_dt(row[6]),
            target_w=row[7],
            prev_target_w=row[8],
            calculated_w=row[9],
            compliant=None if row[10] is None else bool(row[10]),
            payload=json.loads(row[11]),
        )

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> None:
        # Expired rows go on every insert: the quarantine stays bounded without a job.
        self._execute("DELETE FROM quarantine WHERE expires_at < ?", (_ts(datetime.now(UTC)),))
        self._execute(
            "INSERT OR REPLACE INTO quarantine VALUES (?,?,?,?,?,?,?,?)",
            (
                item.quarantine_id,
                _ts(item.received_at),
                _ts(item.expires_at),
                item.reason,
                json.dumps(item.errors),
                item.body,
                item.body_bytes,
                item.body_sha256,
            ),
        )

    def quarantined(self, limit: int = 100) -> list[QuarantinedPayload]:
        rows = self._execute(
            "SELECT * FROM quarantine WHERE expires_at >= ? ORDER BY received_at DESC LIMIT ?",
            (_ts(datetime.now(UTC)), limit),
        ).fetchall()
        return [
            QuarantinedPayload(
                quarantine_id=r[0],
                received_at=datetime.fromisoformat(r[1]),
                expires_at=datetime.fromisoformat(r[2]),
                reason=r[3],
                errors=json.loads(r[4]),
                body=r[5],
                body_bytes=r[6],
                body_sha256=r[7],
            )
            for r in rows
        ]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO subscriptions VALUES (?, ?)",
            (record.subscription_id, json.dumps(record.to_dict())),
        )

    def subscriptions(self) -> list[SubscriptionRecord]:
        rows = self._execute("SELECT record FROM subscriptions ORDER BY subscription_id").fetchall()
        return [SubscriptionRecord.from_dict(json.loads(r[0])) for r in rows]

    def delete_subscription(self, subscription_id: str) -> None:
        self._execute("DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,))

    def add_drift(self, record: DriftRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO drift VALUES (?, ?, ?)",
            (record.drift_id, _ts(record.detected_at), json.dumps(record.to_dict())),
        )

    def drift(self, limit: int = 100) -> list[DriftRecord]:
        rows = self._execute(
            "SELECT record FROM drift ORDER BY detected_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [DriftRecord.from_dict(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
