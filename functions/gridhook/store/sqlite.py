"""The embedded EventStore: one SQLite file in WAL mode.

Each thread of the server gets its own connection (sqlite3 connections must not be
shared across threads); WAL lets readers run beside the single writer, and
``synchronous=FULL`` makes every acknowledged insert survive a power cut.

Events, quarantine records and samples have a column per field of their codec
(``gridhook.store.codec``); opening a store adds the columns a codec has gained since the
file was created, so a file written by an older gridhook keeps working (its rows read
the field's default). Alerts, subscriptions and drift are kept as one JSON document each.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridhook.events import StoredEvent
from gridhook.store import codec
from gridhook.store.base import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventOrder,
    EventQuery,
    LoadSample,
    Page,
    QuarantinedPayload,
    QuarantinePage,
    SamplePage,
    SampleQuery,
    StoreNotFound,
    StoreUnavailable,
    SubscriptionRecord,
    decode_cursor,
    encode_position,
    sortable_timestamp,
    stamp_stored,
)
from gridhook.store.codec import Kind, RecordCodec
from gridhook.store.intervals import MeterQuery, MeterRecord, RollupQuery, RollupRecord

__all__ = ["SQLiteEventStore"]


@dataclass(frozen=True, slots=True)
class _Table:
    """A table with one column per codec field (the codec decides its columns)."""

    name: str
    codec: RecordCodec[Any]
    without_rowid: bool
    indexes: tuple[tuple[str, str], ...]  # (name, columns)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.stored_name for f in self.codec.fields)

    @property
    def column_list(self) -> str:
        return ", ".join(self.columns)

    def create(self) -> str:
        columns = []
        for field in self.codec.fields:
            column = f"{field.stored_name} {_COLUMN_TYPES[field.kind]}"
            if field.attr == self.codec.id_attr:
                column += " PRIMARY KEY"
            elif field.required:
                column += " NOT NULL"
            columns.append(column)
        rowid = " WITHOUT ROWID" if self.without_rowid else ""
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(columns)}){rowid}"

    def insert(self) -> str:
        marks = ",".join("?" * len(self.columns))
        return (
            f"INSERT INTO {self.name} ({self.column_list}) VALUES ({marks}) "
            f"ON CONFLICT ({self.codec.field_of(self.codec.id_attr).stored_name}) DO NOTHING"
        )

    def row(self, record: Any) -> tuple[Any, ...]:
        """A record as the values of one row, in ``columns`` order."""
        return tuple(_sql(value) for value in self.codec.encode(record).values())

    def record(self, row: tuple[Any, ...]) -> Any:
        return self.codec.decode(dict(zip(self.columns, row, strict=True)))


_COLUMN_TYPES = {
    Kind.TEXT: "TEXT",
    Kind.TIME: "TEXT",  # sortable_timestamp: fixed width, so text order is time order
    Kind.REAL: "REAL",
    Kind.INT: "INTEGER",
    Kind.BOOL: "INTEGER",
    Kind.JSON: "TEXT",
    Kind.TEXTS: "TEXT",
}

_EVENTS = _Table(
    "events",
    codec.EVENT,
    without_rowid=True,
    indexes=(
        ("events_by_time", "received_at, event_id"),
        ("events_by_feed", "feed_tag, received_at, event_id"),
        ("events_by_correlation", "correlation_id, received_at, event_id"),
        ("events_by_storage", "stored_at, event_id"),
    ),
)
_QUARANTINE = _Table(
    "quarantine",
    codec.QUARANTINE,
    without_rowid=False,
    indexes=(
        ("quarantine_by_expiry", "expires_at"),
        ("quarantine_by_time", "received_at, quarantine_id"),
    ),
)
_SAMPLES = _Table(
    "samples",
    codec.SAMPLE,
    without_rowid=True,
    indexes=(
        ("samples_by_time", "sampled_at, sample_id"),
        ("samples_by_feed", "feed_tag, sampled_at, sample_id"),
        ("samples_by_expiry", "expires_at"),
    ),
)
_TABLES = (_EVENTS, _QUARANTINE, _SAMPLES)

# Records read only whole (by id or newest first) are kept as one JSON document each
# (the codec's to_json), beside the columns they are keyed and ordered by.
_DOCUMENT_TABLES = {
    "alerts": "alert_id TEXT PRIMARY KEY, detected_at TEXT NOT NULL, record TEXT NOT NULL",
    "subscriptions": "subscription_id TEXT PRIMARY KEY, record TEXT NOT NULL",
    "drift": "drift_id TEXT PRIMARY KEY, detected_at TEXT NOT NULL, record TEXT NOT NULL",
}
_DOCUMENT_INDEXES = {"alerts_by_time": ("alerts", "detected_at, alert_id")}


def _sql(value: Any) -> Any:
    """A plain value as SQLite keeps it (bools bind as 0 / 1 by themselves)."""
    return sortable_timestamp(value) if isinstance(value, datetime) else value


def _ts(value: datetime | None) -> str | None:
    return None if value is None else sortable_timestamp(value)


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


def _create_schema(conn: sqlite3.Connection) -> None:
    """Create what is missing: tables, the columns their codecs have gained since a store
    was created (renaming one kept under a legacy name), indexes.

    Checked first without a lock, so opening a store that is up to date writes nothing;
    changed in one IMMEDIATE transaction, so two processes opening an old store at once
    do not both add a column.
    """
    if not _schema_changes(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _schema_changes(conn):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _schema_changes(conn: sqlite3.Connection) -> list[str]:
    """The statements that would bring the file's schema up to the codecs'."""
    known = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
        )
    }
    changes = []
    for table in _TABLES:
        if table.name not in known:
            changes.append(table.create())
            have: set[str] = set(table.columns)
        else:
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")}
        for field in table.codec.fields:
            if field.stored_name in have:
                continue
            old = next((name for name in field.legacy if name in have), None)
            if old is not None:
                changes.append(
                    f"ALTER TABLE {table.name} RENAME COLUMN {old} TO {field.stored_name}"
                )
            else:
                kind = _COLUMN_TYPES[field.kind]
                changes.append(f"ALTER TABLE {table.name} ADD COLUMN {field.stored_name} {kind}")
        changes += [
            f"CREATE INDEX {name} ON {table.name} ({columns})"
            for name, columns in table.indexes
            if name not in known
        ]
    changes += [
        f"CREATE TABLE {name} ({columns})"
        for name, columns in _DOCUMENT_TABLES.items()
        if name not in known
    ]
    changes += [
        f"CREATE INDEX {name} ON {table} ({columns})"
        for name, (table, columns) in _DOCUMENT_INDEXES.items()
        if name not in known
    ]
    return changes


class SQLiteEventStore:
    """EventStore on a local SQLite file (the embedded default).

    ``create=False`` (readers): a file that does not exist is StoreNotFound, never a new,
    empty store.
    """

    def __init__(
        self, path: str | Path, *, timeout_seconds: float = 10.0, create: bool = True
    ) -> None:
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
        if not create and not self.path.is_file():
            raise StoreNotFound(
                f"no store at {self.path.resolve()}: nothing has been stored there (the "
                "receiver creates it with its first event); check the path, and see "
                "docs/configuration.md for sqlite:///relative vs sqlite:////absolute paths"
            )
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_schema(self._connection())
            _create_interval_tables(self._connection())
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
        row = _EVENTS.row(stamp_stored(event))
        cursor = self._execute(_EVENTS.insert(), row, write=True)
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def add_events(self, events: Iterable[StoredEvent]) -> int:
        """Insert each event unless one with its id exists, all in one transaction; returns
        how many were new. For loading history in bulk (benchmarks, imports): the receiver
        stores one event per request with ``add_event``. On an error nothing is kept."""
        rows = (_EVENTS.row(stamp_stored(event)) for event in events)
        try:
            conn = self._connection()
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cursor = conn.executemany(_EVENTS.insert(), rows)
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
            f"SELECT {_EVENTS.column_list} FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if row is None else _EVENTS.record(row)

    def events(self, query: EventQuery) -> Page:
        # Newest first walks the same indexes backwards; a cursor continues either way.
        order = "DESC" if query.newest_first else "ASC"
        time_column = "stored_at" if query.order is EventOrder.STORED else "received_at"
        where: list[str] = []
        params: list[Any] = []
        if query.feed_tag is not None:
            where.append("feed_tag = ?")
            params.append(query.feed_tag)
        if query.correlation_id is not None:
            where.append("correlation_id = ?")
            params.append(query.correlation_id)
        conditions, values = _time_range(
            time_column, "event_id", query.since, query.until, query.cursor, query.newest_first
        )
        where += conditions
        params += values
        sql = f"SELECT {_EVENTS.column_list} FROM events"
        if query.order is EventOrder.STORED:
            # Write order is read from its own index whatever the filters: a tail's window
            # of minutes bounds the read, where a feed's whole history would not.
            sql += " INDEXED BY events_by_storage"
            where.append("stored_at IS NOT NULL")  # events stored before it existed
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {time_column} {order}, event_id {order} LIMIT ?"
        params.append(query.limit + 1)  # one extra row tells whether another page exists
        rows = self._execute(sql, tuple(params)).fetchall()
        events = [_EVENTS.record(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(events, query.position(events[-1]) if more else None)

    def latest_by_feed(self) -> dict[str, StoredEvent]:
        # A skip scan over events_by_feed: each step seeks the next distinct feed tag, then
        # that feed's newest event, so the cost is O(feeds * log(events)), not a table scan.
        rows = self._execute(
            "WITH RECURSIVE tags(tag) AS ("
            " SELECT MIN(feed_tag) FROM events WHERE feed_tag IS NOT NULL"
            " UNION ALL"
            " SELECT (SELECT MIN(feed_tag) FROM events WHERE feed_tag > tag)"
            " FROM tags WHERE tag IS NOT NULL)"
            f" SELECT {_EVENTS.column_list} FROM tags JOIN events ON events.event_id = ("
            " SELECT event_id FROM events WHERE feed_tag = tags.tag"
            " ORDER BY received_at DESC, event_id DESC LIMIT 1)"
        ).fetchall()
        latest = (_EVENTS.record(row) for row in rows)
        return {event.feed_tag: event for event in latest if event.feed_tag is not None}

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        now = _ts(datetime.now(UTC))
        with self._write_lock:
            # Expired rows go on every insert: the quarantine stays bounded without a job,
            # and an expired record of the same body makes way for the new one.
            self._execute("DELETE FROM quarantine WHERE expires_at < ?", (now,))
            cursor = self._execute(_QUARANTINE.insert(), _QUARANTINE.row(item))
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def get_quarantined(self, quarantine_id: str) -> QuarantinedPayload | None:
        row = self._execute(
            f"SELECT {_QUARANTINE.column_list} FROM quarantine "
            "WHERE quarantine_id = ? AND expires_at >= ?",
            (quarantine_id, _ts(datetime.now(UTC))),
        ).fetchone()
        return None if row is None else _QUARANTINE.record(row)

    def quarantined(
        self, limit: int = 100, cursor: str | None = None, newest_first: bool = True
    ) -> QuarantinePage:
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {_QUARANTINE.column_list} FROM quarantine WHERE expires_at >= ?"
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
        items: list[QuarantinedPayload] = [_QUARANTINE.record(r) for r in rows[:limit]]
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
            cursor = self._execute(_SAMPLES.insert(), _SAMPLES.row(sample))
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
            f"SELECT {_SAMPLES.column_list} FROM samples WHERE {' AND '.join(where)} "
            "ORDER BY sampled_at, sample_id LIMIT ?"
        )
        params.append(query.limit + 1)
        rows = self._execute(sql, tuple(params)).fetchall()
        samples: list[LoadSample] = [_SAMPLES.record(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        last = samples[-1] if more else None
        return SamplePage(
            samples, encode_position(last.sampled_at, last.sample_id) if last else None
        )

    # -- alerts ---------------------------------------------------------------------

    def add_alert(self, record: AlertRecord) -> AddOutcome:
        cursor = self._execute(
            "INSERT INTO alerts (alert_id, detected_at, record) VALUES (?, ?, ?) "
            "ON CONFLICT (alert_id) DO NOTHING",
            (record.alert_id, _ts(record.detected_at), codec.ALERT.to_json(record)),
            write=True,
        )
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def alerts(self, limit: int = 100) -> list[AlertRecord]:
        rows = self._execute(
            "SELECT record FROM alerts ORDER BY detected_at DESC, alert_id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [codec.ALERT.from_json(r[0]) for r in rows]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO subscriptions (subscription_id, record) VALUES (?, ?)",
            (record.subscription_id, codec.SUBSCRIPTION.to_json(record)),
            write=True,
        )

    def subscriptions(self) -> list[SubscriptionRecord]:
        rows = self._execute("SELECT record FROM subscriptions ORDER BY subscription_id").fetchall()
        return [codec.SUBSCRIPTION.from_json(r[0]) for r in rows]

    def delete_subscription(self, subscription_id: str) -> None:
        self._execute(
            "DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,), write=True
        )

    def add_drift(self, record: DriftRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO drift (drift_id, detected_at, record) VALUES (?, ?, ?)",
            (record.drift_id, _ts(record.detected_at), codec.DRIFT.to_json(record)),
            write=True,
        )

    def drift(self, limit: int = 100) -> list[DriftRecord]:
        rows = self._execute(
            "SELECT record FROM drift ORDER BY detected_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [codec.DRIFT.from_json(r[0]) for r in rows]

    # -- interval data (rollups, meter intervals) --------------------------------------

    def add_rollups(self, rollups: Sequence[RollupRecord]) -> int:
        if not rollups:
            return 0
        now = _ts(datetime.now(UTC))
        rows = [_ROLLUPS.row(r) for r in rollups]
        sites = sorted({r.site for r in rollups})
        # Expired rollups go as new ones come (retention without a job), so an expired
        # rollup makes way for a new one of its hour.
        drop = "DELETE FROM rollups WHERE site = ? AND expires_at < ?"
        expired = [(drop, (site, now)) for site in sites]
        return self._insert_all(_ROLLUPS.insert(), rows, before=expired)

    def rollups(self, query: RollupQuery) -> list[RollupRecord]:
        # One index range: (site, feed, hour_start) is the primary key, and
        # rollups_by_time (site, hour_start, feed) serves a listing of every feed.
        where = ["site = ?", "hour_start >= ?", "hour_start < ?", "expires_at >= ?"]
        params: list[Any] = [query.site, _ts(query.since), _ts(query.until)]
        params.append(_ts(datetime.now(UTC)))
        if query.feed is not None:
            where.insert(1, "feed = ?")
            params.insert(1, query.feed)
        rows = self._execute(
            f"SELECT {_ROLLUPS.column_list} FROM rollups WHERE {' AND '.join(where)} "
            "ORDER BY hour_start, feed",
            tuple(params),
        ).fetchall()
        return [_ROLLUPS.record(row) for row in rows]

    def add_meter_records(self, records: Sequence[MeterRecord]) -> int:
        if not records:
            return 0
        return self._insert_all(_METER.insert(), [_METER.row(r) for r in records])

    def meter_records(self, query: MeterQuery) -> list[MeterRecord]:
        rows = self._execute(
            f"SELECT {_METER.column_list} FROM meter WHERE site = ? AND feed = ? "
            "AND interval_start >= ? AND interval_start < ? ORDER BY interval_start, revision",
            (query.site, query.feed, _ts(query.since), _ts(query.until)),
        ).fetchall()
        return [_METER.record(row) for row in rows]

    def _insert_all(
        self,
        sql: str,
        rows: list[tuple[Any, ...]],
        before: Sequence[tuple[str, tuple[Any, ...]]] = (),
    ) -> int:
        """Insert-if-absent rows in one transaction (all or none kept); how many were new."""
        try:
            conn = self._connection()
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement, params in before:
                        conn.execute(statement, params)
                    added = conn.executemany(sql, rows).rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store at {self.path}: {exc}") from exc
        return added

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


# -- interval data (rollups, meter intervals) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _KeyedTable:
    """A table with one column per codec field and a primary key of several columns (the
    site first, as every index); created with its site column from the start."""

    name: str
    codec: RecordCodec[Any]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, str], ...]  # (name, columns): each begins with the site

    @property
    def fields(self) -> tuple[Any, ...]:
        return tuple(f for f in self.codec.fields if not f.derived)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.stored_name for f in self.fields)

    @property
    def column_list(self) -> str:
        return ", ".join(self.columns)

    def create(self) -> str:
        columns = [
            f"{f.stored_name} {_COLUMN_TYPES[f.kind]}"
            + (" NOT NULL" if f.required or f.stored_name in self.key else "")
            for f in self.fields
        ]
        return (
            f"CREATE TABLE {self.name} ({', '.join(columns)}, "
            f"PRIMARY KEY ({', '.join(self.key)})) WITHOUT ROWID"
        )

    def insert(self) -> str:
        marks = ",".join("?" * len(self.columns))
        return (
            f"INSERT INTO {self.name} ({self.column_list}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(self.key)}) DO NOTHING"
        )

    def row(self, record: Any) -> tuple[Any, ...]:
        plain = self.codec.encode(record)
        return tuple(_sql(plain[column]) for column in self.columns)

    def record(self, row: tuple[Any, ...]) -> Any:
        return self.codec.decode(dict(zip(self.columns, row, strict=True)))


_ROLLUPS = _KeyedTable(
    "rollups",
    codec.ROLLUP,
    key=("site", "feed", "hour_start"),
    indexes=(
        ("rollups_by_time", "site, hour_start, feed"),
        ("rollups_by_expiry", "site, expires_at"),
    ),
)
_METER = _KeyedTable(
    "meter", codec.METER, key=("site", "feed", "interval_start", "revision"), indexes=()
)
_INTERVAL_TABLES = (_ROLLUPS, _METER)


def _create_interval_tables(conn: sqlite3.Connection) -> None:
    """Create the interval tables and their indexes where missing: checked first without a
    lock (an up-to-date store is not written to), created in one IMMEDIATE transaction."""

    def missing() -> list[str]:
        known = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
            )
        }
        changes = []
        for table in _INTERVAL_TABLES:
            if table.name not in known:
                changes.append(table.create())
            changes += [
                f"CREATE INDEX {name} ON {table.name} ({columns})"
                for name, columns in table.indexes
                if name not in known
            ]
        return changes

    if not missing():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in missing():
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
