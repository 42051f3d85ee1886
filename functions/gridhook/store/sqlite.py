"""The embedded EventStore: one SQLite file in WAL mode.

Each thread of the server gets its own connection (sqlite3 connections must not be
shared across threads); WAL lets readers run beside the single writer, and
``synchronous=FULL`` makes every acknowledged insert survive a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridhook.events import StoredEvent
from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventQuery,
    LoadSample,
    Page,
    QuarantinedPayload,
    QuarantinePage,
    SamplePage,
    SampleQuery,
    StoreUnavailable,
    SubscriptionRecord,
    decode_cursor,
    encode_cursor,
    encode_position,
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
    body_sha256   TEXT NOT NULL,
    replayed_at   TEXT,
    replayed_event_id TEXT
);
CREATE INDEX IF NOT EXISTS quarantine_by_expiry ON quarantine (expires_at);
CREATE INDEX IF NOT EXISTS quarantine_by_time ON quarantine (received_at, quarantine_id);
CREATE TABLE IF NOT EXISTS samples (
    sample_id      TEXT PRIMARY KEY,
    feed_tag       TEXT NOT NULL,
    sampled_at     TEXT NOT NULL,
    calculated_w   REAL,
    target_w       REAL,
    correlation_id TEXT,
    expires_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (sampled_at, sample_id);
CREATE INDEX IF NOT EXISTS samples_by_feed ON samples (feed_tag, sampled_at, sample_id);
CREATE INDEX IF NOT EXISTS samples_by_expiry ON samples (expires_at);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id    TEXT PRIMARY KEY,
    detected_at TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (detected_at, alert_id);
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

# Columns added after the first release, for stores created before them.
_MIGRATIONS = {
    "quarantine": (("replayed_at", "TEXT"), ("replayed_event_id", "TEXT")),
}
_QUARANTINE_COLUMNS = (
    "quarantine_id, received_at, expires_at, reason, errors, body, body_bytes, body_sha256, "
    "replayed_at, replayed_event_id"
)
_SAMPLE_COLUMNS = (
    "sample_id, feed_tag, sampled_at, calculated_w, target_w, correlation_id, expires_at"
)

_EVENT_COLUMNS = (
    "event_id, received_at, event, feed_tag, correlation_id, start_time, end_time, "
    "target_w, prev_target_w, calculated_w, compliant, payload"
)


_INSERT_EVENT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (event_id) DO NOTHING"
)


def _event_row(event: StoredEvent) -> tuple[Any, ...]:
    """An event as the values of one row of ``events``, in ``_EVENT_COLUMNS`` order."""
    return (
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
    )


def _ts(value: datetime | None) -> str | None:
    return None if value is None else sortable_timestamp(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _time_range(
    time_column: str,
    id_column: str,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    newest_first: bool,
) -> tuple[list[str], list[Any]]:
    """WHERE conditions for [since, until) continued after a cursor, as ONE index range.

    SQLite seeks on only one bound per side, so the cursor's position and ``since`` (or
    ``until`` going backwards) are merged into the tighter one here: given both, it would
    seek to ``since`` and scan every earlier page again, making paging quadratic in the
    range. The cursor's tie on equal times is left to a residual condition on the id.
    """
    low: tuple[str, str] | None = None if since is None else (">=", _ts(since) or "")
    high: tuple[str, str] | None = None if until is None else ("<", _ts(until) or "")
    residual: list[str] = []
    params_residual: list[Any] = []
    if cursor is not None:
        at, item_id = decode_cursor(cursor)
        stamp = _ts(at) or ""
        op = "<" if newest_first else ">"
        residual.append(f"({time_column} {op} ? OR {id_column} {op} ?)")
        params_residual += [stamp, item_id]
        if newest_first:
            if high is None or stamp < high[1]:
                high = ("<=", stamp)
        elif low is None or stamp > low[1]:
            low = (">=", stamp)
    conditions: list[str] = []
    params: list[Any] = []
    for bound in (low, high):
        if bound is not None:
            conditions.append(f"{time_column} {bound[0]} ?")
            params.append(bound[1])
    return conditions + residual, params + params_residual


def _migrate(conn: sqlite3.Connection) -> None:
    for table, columns in _MIGRATIONS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _quarantined(row: tuple[Any, ...]) -> QuarantinedPayload:
    return QuarantinedPayload(
        quarantine_id=row[0],
        received_at=datetime.fromisoformat(row[1]),
        expires_at=datetime.fromisoformat(row[2]),
        reason=row[3],
        errors=json.loads(row[4]),
        body=row[5],
        body_bytes=row[6],
        body_sha256=row[7],
        replayed_at=_dt(row[8]),
        replayed_event_id=row[9],
    )


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
            conn = self._connection()
            conn.executescript(_SCHEMA)
            _migrate(conn)
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
        cursor = self._execute(_INSERT_EVENT, _event_row(event), write=True)
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def add_events(self, events: Iterable[StoredEvent]) -> int:
        """Insert each event unless one with its id exists, all in one transaction; returns
        how many were new. For loading history in bulk (benchmarks, imports): the receiver
        stores one event per request with ``add_event``. On an error nothing is kept."""
        try:
            conn = self._connection()
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cursor = conn.executemany(_INSERT_EVENT, map(_event_row, events))
                    added = cursor.rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store at {self.path}: {exc}") from exc
        return added

    def get_event(self, event_id: str) -> StoredEvent | None:
        row = self._execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if row is None else self._event(row)

    def events(self, query: EventQuery) -> Page:
        # Newest first walks the same indexes backwards; a cursor continues either way.
        order = "DESC" if query.newest_first else "ASC"
        where: list[str] = []
        params: list[Any] = []
        if query.feed_tag is not None:
            where.append("feed_tag = ?")
            params.append(query.feed_tag)
        if query.correlation_id is not None:
            where.append("correlation_id = ?")
            params.append(query.correlation_id)
        conditions, values = _time_range(
            "received_at", "event_id", query.since, query.until, query.cursor, query.newest_first
        )
        where += conditions
        params += values
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY received_at {order}, event_id {order} LIMIT ?"
        params.append(query.limit + 1)  # one extra row tells whether another page exists
        rows = self._execute(sql, tuple(params)).fetchall()
        events = [self._event(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(events, encode_cursor(events[-1]) if more else None)

    def latest_by_feed(self) -> dict[str, StoredEvent]:
        # A skip scan over events_by_feed: each step seeks the next distinct feed tag, then
        # that feed's newest event, so the cost is O(feeds * log(events)), not a table scan.
        rows = self._execute(
            "WITH RECURSIVE tags(tag) AS ("
            " SELECT MIN(feed_tag) FROM events WHERE feed_tag IS NOT NULL"
            " UNION ALL"
            " SELECT (SELECT MIN(feed_tag) FROM events WHERE feed_tag > tag)"
            " FROM tags WHERE tag IS NOT NULL)"
            f" SELECT {_EVENT_COLUMNS} FROM tags JOIN events ON events.event_id = ("
            " SELECT event_id FROM events WHERE feed_tag = tags.tag"
            " ORDER BY received_at DESC, event_id DESC LIMIT 1)"
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

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        now = _ts(datetime.now(UTC))
        with self._write_lock:
            # Expired rows go on every insert: the quarantine stays bounded without a job,
            # and an expired record of the same body makes way for the new one.
            self._execute("DELETE FROM quarantine WHERE expires_at < ?", (now,))
            cursor = self._execute(
                f"INSERT INTO quarantine ({_QUARANTINE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (quarantine_id) DO NOTHING",
                (
                    item.quarantine_id,
                    _ts(item.received_at),
                    _ts(item.expires_at),
                    item.reason,
                    json.dumps(item.errors),
                    item.body,
                    item.body_bytes,
                    item.body_sha256,
                    _ts(item.replayed_at),
                    item.replayed_event_id,
                ),
            )
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def get_quarantined(self, quarantine_id: str) -> QuarantinedPayload | None:
        row = self._execute(
            f"SELECT {_QUARANTINE_COLUMNS} FROM quarantine "
            "WHERE quarantine_id = ? AND expires_at >= ?",
            (quarantine_id, _ts(datetime.now(UTC))),
        ).fetchone()
        return None if row is None else _quarantined(row)

    def quarantined(
        self, limit: int = 100, cursor: str | None = None, newest_first: bool = True
    ) -> QuarantinePage:
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {_QUARANTINE_COLUMNS} FROM quarantine WHERE expires_at >= ?"
        params: list[Any] = [_ts(datetime.now(UTC))]
        conditions, values = _time_range(
            "received_at", "quarantine_id", None, None, cursor, newest_first
        )
        for condition in conditions:
            sql += f" AND {condition}"
        params += values
        sql += f" ORDER BY received_at {order}, quarantine_id {order} LIMIT ?"
        params.append(limit + 1)
        rows = self._execute(sql, tuple(params)).fetchall()
        items = [_quarantined(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = items[-1] if more else None
        return QuarantinePage(
            items, encode_position(last.received_at, last.quarantine_id) if last else None
        )

    def mark_replayed(self, quarantine_id: str, event_id: str, replayed_at: datetime) -> None:
        self._execute(
            "UPDATE quarantine SET replayed_at = ?, replayed_event_id = ? WHERE quarantine_id = ?",
            (_ts(replayed_at), event_id, quarantine_id),
            write=True,
        )

    # -- load samples ---------------------------------------------------------------

    def add_sample(self, sample: LoadSample) -> AddOutcome:
        with self._write_lock:
            self._execute("DELETE FROM samples WHERE expires_at < ?", (_ts(datetime.now(UTC)),))
            cursor = self._execute(
                f"INSERT INTO samples ({_SAMPLE_COLUMNS}) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (sample_id) DO NOTHING",
                (
                    sample.sample_id,
                    sample.feed_tag,
                    _ts(sample.sampled_at),
                    sample.calculated_w,
                    sample.target_w,
                    sample.correlation_id,
                    _ts(sample.expires_at),
                ),
            )
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def samples(self, query: SampleQuery) -> SamplePage:
        where = ["expires_at >= ?"]
        params: list[Any] = [_ts(datetime.now(UTC))]
        if query.feed_tag is not None:
            where.append("feed_tag = ?")
            params.append(query.feed_tag)
        conditions, values = _time_range(
            "sampled_at", "sample_id", query.since, query.until, query.cursor, False
        )
        where += conditions
        params += values
        sql = (
            f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE {' AND '.join(where)} "
            "ORDER BY sampled_at, sample_id LIMIT ?"
        )
        params.append(query.limit + 1)
        rows = self._execute(sql, tuple(params)).fetchall()
        samples = [
            LoadSample(
                feed_tag=r[1],
                sampled_at=datetime.fromisoformat(r[2]),
                calculated_w=r[3],
                target_w=r[4],
                correlation_id=r[5],
                expires_at=datetime.fromisoformat(r[6]),
            )
            for r in rows[: query.limit]
        ]
        more = len(rows) > query.limit
        last = samples[-1] if more else None
        return SamplePage(
            samples, encode_position(last.sampled_at, last.sample_id) if last else None
        )

    # -- alerts ---------------------------------------------------------------------

    def add_alert(self, record: AlertRecord) -> AddOutcome:
        cursor = self._execute(
            "INSERT INTO alerts VALUES (?, ?, ?) ON CONFLICT (alert_id) DO NOTHING",
            (record.alert_id, _ts(record.detected_at), json.dumps(record.to_dict())),
            write=True,
        )
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def alerts(self, limit: int = 100) -> list[AlertRecord]:
        rows = self._execute(
            "SELECT record FROM alerts ORDER BY detected_at DESC, alert_id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [AlertRecord.from_dict(json.loads(r[0])) for r in rows]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO subscriptions VALUES (?, ?)",
            (record.subscription_id, json.dumps(record.to_dict())),
            write=True,
        )

    def subscriptions(self) -> list[SubscriptionRecord]:
        rows = self._execute("SELECT record FROM subscriptions ORDER BY subscription_id").fetchall()
        return [SubscriptionRecord.from_dict(json.loads(r[0])) for r in rows]

    def delete_subscription(self, subscription_id: str) -> None:
        self._execute(
            "DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,), write=True
        )

    def add_drift(self, record: DriftRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO drift VALUES (?, ?, ?)",
            (record.drift_id, _ts(record.detected_at), json.dumps(record.to_dict())),
            write=True,
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
