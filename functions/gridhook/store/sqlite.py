"""The embedded EventStore: one SQLite file in WAL mode.

Each thread of the server gets its own connection (sqlite3 connections must not be
shared across threads); WAL lets readers run beside the single writer, and
``synchronous=FULL`` makes every acknowledged insert survive a power cut.

Events, quarantine records and samples have a column per field of their codec
(``gridhook.store.codec``); opening a store adds the columns a codec has gained since the
file was created, so a file written by an older gridhook keeps working (its rows read
the field's default). Alerts, subscriptions and drift are kept as one JSON document each.

Every table has a ``site`` column: its primary key is (site, id) and every index leads
with it, so each statement reads one site's rows. A file from before sites is rebuilt once
when it is opened (a primary key cannot be altered in place): its rows become the
``default`` site's, with their ids, times and order unchanged.
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
from gridhook.sites import DEFAULT_SITE
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
from gridhook.store.codec import REQUIRED, Field, Kind, RecordCodec
from gridhook.store.intervals import (
    DayRollupQuery,
    DayRollupRecord,
    MeterQuery,
    MeterRecord,
    RollupQuery,
    RollupRecord,
)

__all__ = ["SQLiteEventStore"]

#: The column every table has, first in its primary key and in every index.
_SITE = "site"


@dataclass(frozen=True, slots=True)
class _Table:
    """A table with one column per codec field (the codec decides its columns)."""

    name: str
    codec: RecordCodec[Any]
    without_rowid: bool
    indexes: tuple[tuple[str, str], ...]  # (name, columns): each begins with the site

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.stored_name for f in self.codec.fields)

    @property
    def column_list(self) -> str:
        return ", ".join(self.columns)

    @property
    def key(self) -> tuple[str, str]:
        """The primary key: (site, the record's id)."""
        return (_SITE, self.codec.field_of(self.codec.id_attr).stored_name)

    def column_specs(self) -> list[tuple[str, str]]:
        """(name, definition) of each column, in codec order."""
        specs = []
        for field in self.codec.fields:
            spec = _COLUMN_TYPES[field.kind]
            default = _sql_default(field)
            if default is not None:
                spec += f" NOT NULL DEFAULT {default}"
            elif field.stored_name in self.key or field.required:
                spec += " NOT NULL"
            specs.append((field.stored_name, spec))
        return specs

    def legacy_sources(self) -> dict[str, tuple[str, ...]]:
        """Per column, the older names it may be found under in an existing file."""
        return {f.stored_name: f.legacy for f in self.codec.fields if f.legacy}

    def create(self, name: str | None = None) -> str:
        return _create_table(
            name or self.name, self.column_specs(), self.key, without_rowid=self.without_rowid
        )

    def insert(self) -> str:
        marks = ",".join("?" * len(self.columns))
        return (
            f"INSERT INTO {self.name} ({self.column_list}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(self.key)}) DO NOTHING"
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
        ("events_by_time", "site, received_at, event_id"),
        ("events_by_feed", "site, feed_tag, received_at, event_id"),
        ("events_by_correlation", "site, correlation_id, received_at, event_id"),
        ("events_by_storage", "site, stored_at, event_id"),
    ),
)
_QUARANTINE = _Table(
    "quarantine",
    codec.QUARANTINE,
    without_rowid=False,
    indexes=(
        ("quarantine_by_expiry", "site, expires_at"),
        ("quarantine_by_time", "site, received_at, quarantine_id"),
    ),
)
_SAMPLES = _Table(
    "samples",
    codec.SAMPLE,
    without_rowid=True,
    indexes=(
        ("samples_by_time", "site, sampled_at, sample_id"),
        ("samples_by_feed", "site, feed_tag, sampled_at, sample_id"),
        ("samples_by_expiry", "site, expires_at"),
    ),
)
_TABLES = (_EVENTS, _QUARANTINE, _SAMPLES)


@dataclass(frozen=True, slots=True)
class _DocumentTable:
    """Records read only whole (by id or newest first), kept as one JSON document each
    (the codec's to_json) beside the columns they are keyed and ordered by."""

    name: str
    codec: RecordCodec[Any]
    time_column: str | None  # what they are listed newest first by
    indexes: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[str, str]:
        return (_SITE, self.codec.id_attr)

    def column_specs(self) -> list[tuple[str, str]]:
        specs = [(_SITE, f"TEXT NOT NULL DEFAULT {_quoted(DEFAULT_SITE)}")]
        specs.append((self.codec.id_attr, "TEXT NOT NULL"))
        if self.time_column is not None:
            specs.append((self.time_column, "TEXT NOT NULL"))
        return [*specs, ("record", "TEXT NOT NULL")]

    def legacy_sources(self) -> dict[str, tuple[str, ...]]:
        return {}

    def create(self, name: str | None = None) -> str:
        return _create_table(name or self.name, self.column_specs(), self.key)


_ALERTS = _DocumentTable(
    "alerts", codec.ALERT, "detected_at", (("alerts_by_time", "site, detected_at, alert_id"),)
)
_SUBSCRIPTIONS = _DocumentTable("subscriptions", codec.SUBSCRIPTION, None, ())
_DRIFT = _DocumentTable(
    "drift", codec.DRIFT, "detected_at", (("drift_by_time", "site, detected_at, drift_id"),)
)
_ALL_TABLES: tuple[_Table | _DocumentTable, ...] = (*_TABLES, _ALERTS, _SUBSCRIPTIONS, _DRIFT)


def _create_table(
    name: str,
    specs: list[tuple[str, str]],
    key: tuple[str, ...],
    *,
    without_rowid: bool = False,
) -> str:
    columns = ", ".join(f"{column} {spec}" for column, spec in specs)
    rowid = " WITHOUT ROWID" if without_rowid else ""
    return f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({', '.join(key)})){rowid}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_default(field: Field) -> str | None:
    """The SQL DEFAULT of a column whose field has a text or number default (the site)."""
    default = field.default
    if default is REQUIRED or default is None or field.default_factory is not None:
        return None
    if isinstance(default, str):
        return _quoted(default)
    if isinstance(default, int | float):  # a bool too: SQLite keeps it as 0 / 1
        return repr(int(default) if isinstance(default, bool) else default)
    return None


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
    was created (renaming one kept under a legacy name), indexes; rebuild a table whose
    primary key is not (site, id) (a file from before sites).

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
    for table in _ALL_TABLES:
        made = True  # created or rebuilt: none of its indexes is there
        if table.name not in known:
            changes.append(table.create())
        else:
            info = conn.execute(f"PRAGMA table_info({table.name})").fetchall()
            have = {row[1] for row in info}
            key = tuple(row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5]))
            if key != table.key:
                changes += _rebuild(table, have)  # its old indexes go with the old table
            else:
                changes += _added_columns(table, have)
                made = False
        changes += [
            f"CREATE INDEX {name} ON {table.name} ({columns})"
            for name, columns in table.indexes
            if made or name not in known
        ]
    return changes


def _added_columns(table: _Table | _DocumentTable, have: set[str]) -> list[str]:
    """The columns a table's codec gained since the file was made (or a renamed one)."""
    changes = []
    legacy = table.legacy_sources()
    for column, spec in table.column_specs():
        if column in have:
            continue
        old = next((name for name in legacy.get(column, ()) if name in have), None)
        if old is not None:
            changes.append(f"ALTER TABLE {table.name} RENAME COLUMN {old} TO {column}")
        else:
            # NOT NULL only with a default: the rows already there take it.
            kind = spec if " DEFAULT " in spec else spec.replace(" NOT NULL", "")
            changes.append(f"ALTER TABLE {table.name} ADD COLUMN {column} {kind}")
    return changes


def _rebuild(table: _Table | _DocumentTable, have: set[str]) -> list[str]:
    """Copy a table into its current shape (what a new primary key needs): every row
    kept, a column it lacks taking its default (the site: ``default``)."""
    legacy = table.legacy_sources()
    columns, sources = [], []
    for column, spec in table.column_specs():
        source = next((n for n in (column, *legacy.get(column, ())) if n in have), None)
        if source is None:
            default = spec.partition(" DEFAULT ")[2]
            source = default or "NULL"
        columns.append(column)
        sources.append(source)
    new = f"{table.name}__rebuilt"
    return [
        table.create(new),
        f"INSERT INTO {new} ({', '.join(columns)}) SELECT {', '.join(sources)} FROM {table.name}",
        f"DROP TABLE {table.name}",
        f"ALTER TABLE {new} RENAME TO {table.name}",
    ]


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
        """Insert each event unless its site has one with its id, all in one transaction; returns
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

    def get_event(self, event_id: str, *, site: str = DEFAULT_SITE) -> StoredEvent | None:
        row = self._execute(
            f"SELECT {_EVENTS.column_list} FROM events WHERE site = ? AND event_id = ?",
            (site, event_id),
        ).fetchone()
        return None if row is None else _EVENTS.record(row)

    def events(self, query: EventQuery) -> Page:
        # Newest first walks the same indexes backwards; a cursor continues either way.
        order = "DESC" if query.newest_first else "ASC"
        time_column = "stored_at" if query.order is EventOrder.STORED else "received_at"
        where: list[str] = ["site = ?"]
        params: list[Any] = [query.site]
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
        sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {time_column} {order}, event_id {order} LIMIT ?"
        params.append(query.limit + 1)  # one extra row tells whether another page exists
        rows = self._execute(sql, tuple(params)).fetchall()
        events = [_EVENTS.record(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(events, query.position(events[-1]) if more else None)

    def latest_by_feed(self, *, site: str = DEFAULT_SITE) -> dict[str, StoredEvent]:
        # A skip scan over events_by_feed within the site: each step seeks the next distinct
        # feed tag, then that feed's newest event, so the cost is O(feeds * log(events)),
        # not a table scan.
        # The newest ids are looked up by primary key (IN), not joined: a join on (site,
        # event_id) lets an analyzed planner build a Bloom filter, which scans the table.
        rows = self._execute(
            "WITH RECURSIVE tags(tag) AS ("
            " SELECT MIN(feed_tag) FROM events WHERE site = ?1 AND feed_tag IS NOT NULL"
            " UNION ALL"
            " SELECT (SELECT MIN(feed_tag) FROM events WHERE site = ?1 AND feed_tag > tag)"
            " FROM tags WHERE tag IS NOT NULL),"
            " newest(event_id) AS ("
            " SELECT (SELECT event_id FROM events WHERE site = ?1 AND feed_tag = tags.tag"
            " ORDER BY received_at DESC, event_id DESC LIMIT 1) FROM tags WHERE tag IS NOT NULL)"
            f" SELECT {_EVENTS.column_list} FROM events"
            " WHERE site = ?1 AND event_id IN (SELECT event_id FROM newest)",
            (site,),
        ).fetchall()
        latest = (_EVENTS.record(row) for row in rows)
        by_feed = {event.feed_tag: event for event in latest if event.feed_tag is not None}
        return dict(sorted(by_feed.items()))  # by feed tag, as the other backends list them

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, item: QuarantinedPayload) -> AddOutcome:
        now = _ts(datetime.now(UTC))
        with self._write_lock:
            # Expired rows go on every insert: the site's quarantine stays bounded without a
            # job, and an expired record of the same body makes way for the new one.
            self._execute(
                "DELETE FROM quarantine WHERE site = ? AND expires_at < ?", (item.site, now)
            )
            cursor = self._execute(_QUARANTINE.insert(), _QUARANTINE.row(item))
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def get_quarantined(
        self, quarantine_id: str, *, site: str = DEFAULT_SITE
    ) -> QuarantinedPayload | None:
        row = self._execute(
            f"SELECT {_QUARANTINE.column_list} FROM quarantine "
            "WHERE site = ? AND quarantine_id = ? AND expires_at >= ?",
            (site, quarantine_id, _ts(datetime.now(UTC))),
        ).fetchone()
        return None if row is None else _QUARANTINE.record(row)

    def quarantined(
        self,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = True,
        *,
        site: str = DEFAULT_SITE,
    ) -> QuarantinePage:
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {_QUARANTINE.column_list} FROM quarantine WHERE site = ? AND expires_at >= ?"
        params: list[Any] = [site, _ts(datetime.now(UTC))]
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

    def mark_replayed(
        self, quarantine_id: str, event_id: str, replayed_at: datetime, *, site: str = DEFAULT_SITE
    ) -> None:
        self._execute(
            "UPDATE quarantine SET replayed_at = ?, replayed_event_id = ? "
            "WHERE site = ? AND quarantine_id = ?",
            (_ts(replayed_at), event_id, site, quarantine_id),
            write=True,
        )

    # -- load samples ---------------------------------------------------------------

    def add_sample(self, sample: LoadSample) -> AddOutcome:
        with self._write_lock:
            self._execute(
                "DELETE FROM samples WHERE site = ? AND expires_at < ?",
                (sample.site, _ts(datetime.now(UTC))),
            )
            cursor = self._execute(_SAMPLES.insert(), _SAMPLES.row(sample))
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def samples(self, query: SampleQuery) -> SamplePage:
        where = ["site = ?", "expires_at >= ?"]
        params: list[Any] = [query.site, _ts(datetime.now(UTC))]
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
            "INSERT INTO alerts (site, alert_id, detected_at, record) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (site, alert_id) DO NOTHING",
            (record.site, record.alert_id, _ts(record.detected_at), codec.ALERT.to_json(record)),
            write=True,
        )
        return AddOutcome.ACCEPTED if cursor.rowcount == 1 else AddOutcome.DUPLICATE

    def alerts(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[AlertRecord]:
        rows = self._execute(
            "SELECT record FROM alerts WHERE site = ? "
            "ORDER BY detected_at DESC, alert_id DESC LIMIT ?",
            (site, limit),
        ).fetchall()
        return [codec.ALERT.from_json(r[0]) for r in rows]

    # -- subscriptions and drift ----------------------------------------------------

    def put_subscription(self, record: SubscriptionRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO subscriptions (site, subscription_id, record) VALUES (?, ?, ?)",
            (record.site, record.subscription_id, codec.SUBSCRIPTION.to_json(record)),
            write=True,
        )

    def subscriptions(self, *, site: str = DEFAULT_SITE) -> list[SubscriptionRecord]:
        rows = self._execute(
            "SELECT record FROM subscriptions WHERE site = ? ORDER BY subscription_id", (site,)
        ).fetchall()
        return [codec.SUBSCRIPTION.from_json(r[0]) for r in rows]

    def delete_subscription(self, subscription_id: str, *, site: str = DEFAULT_SITE) -> None:
        self._execute(
            "DELETE FROM subscriptions WHERE site = ? AND subscription_id = ?",
            (site, subscription_id),
            write=True,
        )

    def add_drift(self, record: DriftRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO drift (site, drift_id, detected_at, record) "
            "VALUES (?, ?, ?, ?)",
            (record.site, record.drift_id, _ts(record.detected_at), codec.DRIFT.to_json(record)),
            write=True,
        )

    def drift(self, limit: int = 100, *, site: str = DEFAULT_SITE) -> list[DriftRecord]:
        rows = self._execute(
            "SELECT record FROM drift WHERE site = ? ORDER BY detected_at DESC LIMIT ?",
            (site, limit),
        ).fetchall()
        return [codec.DRIFT.from_json(r[0]) for r in rows]

    # -- interval data (rollups, meter intervals) --------------------------------------

    def add_rollups(self, rollups: Sequence[RollupRecord]) -> int:
        return self._add_expiring(_ROLLUPS, rollups)

    def rollups(self, query: RollupQuery) -> list[RollupRecord]:
        return self._list_expiring(_ROLLUPS, query)

    def add_day_rollups(self, days: Sequence[DayRollupRecord]) -> int:
        return self._add_expiring(_DAY_ROLLUPS, days)

    def day_rollups(self, query: DayRollupQuery) -> list[DayRollupRecord]:
        return self._list_expiring(_DAY_ROLLUPS, query)

    def _add_expiring(self, table: _KeyedTable, records: Sequence[Any]) -> int:
        if not records:
            return 0
        now = _ts(datetime.now(UTC))
        rows = [table.row(r) for r in records]
        sites = sorted({r.site for r in records})
        # Expired records go as new ones come (retention without a job), so an expired
        # rollup makes way for a new one of its hour (or day).
        drop = f"DELETE FROM {table.name} WHERE site = ? AND expires_at < ?"
        expired = [(drop, (site, now)) for site in sites]
        return self._insert_all(table.insert(), rows, before=expired)

    def _list_expiring(self, table: _KeyedTable, query: RollupQuery | DayRollupQuery) -> list[Any]:
        # One index range: (site, feed, <time>) is the primary key, and the table's
        # *_by_time index (site, <time>, feed) serves a listing of every feed. The time is
        # the one the codec lists the record by (hour_start, day_start).
        ((_, time_column),) = table.codec.orders
        where = ["site = ?", f"{time_column} >= ?", f"{time_column} < ?", "expires_at >= ?"]
        params: list[Any] = [query.site, _ts(query.since), _ts(query.until)]
        params.append(_ts(datetime.now(UTC)))
        if query.feed is not None:
            where.insert(1, "feed = ?")
            params.insert(1, query.feed)
        rows = self._execute(
            f"SELECT {table.column_list} FROM {table.name} WHERE {' AND '.join(where)} "
            f"ORDER BY {time_column}, feed",
            tuple(params),
        ).fetchall()
        return [table.record(row) for row in rows]

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
_DAY_ROLLUPS = _KeyedTable(
    "day_rollups",
    codec.DAY_ROLLUP,
    key=("site", "feed", "day_start"),
    indexes=(
        ("day_rollups_by_time", "site, day_start, feed"),
        ("day_rollups_by_expiry", "site, expires_at"),
    ),
)
_METER = _KeyedTable(
    "meter", codec.METER, key=("site", "feed", "interval_start", "revision"), indexes=()
)
_INTERVAL_TABLES = (_ROLLUPS, _DAY_ROLLUPS, _METER)


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
