"""Opening a store: readers never create one, writers do, and a store URL is checked when
it is parsed (settings at start-up, ``open_store``, ``--store``), naming the accepted form."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flask
import pytest

from gridhook import report_http
from gridhook.cli import main
from gridhook.events import normalise
from gridhook.settings import ConfigError, get_settings, load_settings
from gridhook.store import (
    AlertRecord,
    DriftRecord,
    EventOrder,
    EventQuery,
    QuarantinedPayload,
    SampleQuery,
    StoreNotFound,
    open_store,
    parse_store_url,
)
from gridhook.store.url import DynamoDBURL, FirestoreURL, SQLiteURL
from tests.harness import FUNCTIONS, SEED_PAYLOAD

READERS = [
    ["report"],
    ["episodes"],
    ["events"],
    ["events", "--follow"],
    ["samples"],
    ["state"],
    ["subscriptions"],
    ["quarantine", "list"],
    ["quarantine", "show", "abcdef123456"],
]


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_reader_given_no_store_says_so_and_creates_nothing(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "gridhook.db"
    assert main([*argv, "--store", f"sqlite:///{missing}"]) != 0
    assert f"no store at {missing}" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()


def test_replay_is_a_writer_and_creates_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new" / "gridhook.db"
    # Nothing quarantined there yet: an error about the id, not about the store.
    assert main(["quarantine", "replay", "--all", "--store", f"sqlite:///{path}"]) == 0
    assert "no store" not in capsys.readouterr().err
    assert path.is_file()


def test_a_reader_reads_a_store_a_writer_made(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    writer = open_store(url)
    writer.add_event(normalise(copy.deepcopy(SEED_PAYLOAD), datetime.now(UTC)))
    writer.close()
    assert main(["events", "--store", url, "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_open_store_for_a_reader_raises_store_not_found(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="no store at"):
        open_store(f"sqlite:///{tmp_path}/none.db", create=False)
    assert not (tmp_path / "none.db").exists()


# -- power_report, in-process through the real functions-framework app ----------------------


@pytest.fixture
def report_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[flask.Flask, Path]]:
    from functions_framework import create_app

    missing = tmp_path / "nowhere" / "gridhook.db"
    monkeypatch.setenv("FUNCTION_TARGET", "power_report")
    monkeypatch.setenv("GRIDHOOK_STORE", f"sqlite:///{missing}")
    for name in ("GRIDHOOK_WEBHOOK_TOKENS", "GRIDHOOK_WEBHOOK_TOKENS_FILE", "GRIDHOOK_DEV_CLOCK"):
        monkeypatch.delenv(name, raising=False)
    # Settings and the report service are process-wide singletons: start from this env.
    get_settings.cache_clear()
    monkeypatch.setattr(report_http, "_service", None)
    yield create_app("power_report", str(FUNCTIONS / "main.py")), missing
    get_settings.cache_clear()


@pytest.mark.parametrize("path", ["/", "/report", "/episodes"])
def test_power_report_without_a_store_is_a_503_naming_the_setting(
    report_app: tuple[flask.Flask, Path], path: str
) -> None:
    app, missing = report_app
    for _ in range(2):  # it keeps saying so, and never creates the file
        response = app.test_client().get(path)
        assert response.status_code == 503
        assert response.content_type == "application/json"
        error = response.get_json()["error"]
        assert error["code"] == "store_not_found"
        assert "GRIDHOOK_STORE" in error["message"]
    assert not missing.exists() and not missing.parent.exists()


def test_power_report_answers_once_the_receiver_has_made_the_store(
    report_app: tuple[flask.Flask, Path],
) -> None:
    app, missing = report_app
    assert app.test_client().get("/episodes").status_code == 503
    open_store(f"sqlite:///{missing}").close()  # the receiver's first event makes it
    assert app.test_client().get("/episodes").status_code == 200


# -- store URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("sqlite:///var/gridhook.db", SQLiteURL("var/gridhook.db")),
        ("sqlite:////var/lib/gridhook.db", SQLiteURL("/var/lib/gridhook.db")),
        ("firestore://my-project", FirestoreURL("my-project", "(default)")),
        ("firestore://my-project/gridhook", FirestoreURL("my-project", "gridhook")),
        ("firestore://example.com:my-project/(default)", FirestoreURL("example.com:my-project")),
        ("dynamodb://events.v1?region=eu-west-1", DynamoDBURL("events.v1", "eu-west-1")),
    ],
)
def test_store_urls_parse(url: str, parsed: object) -> None:
    assert parse_store_url(url) == parsed


MALFORMED = [
    ("firestore://proj-x/a/b", "firestore://PROJECT[/DATABASE]"),
    ("firestore://", "firestore://PROJECT[/DATABASE]"),
    ("firestore://Bad_Project/gridhook", "not a Google Cloud project id"),
    ("firestore://my-project/Bad", "not a Firestore database id"),
    ("firestore://my-project/gridhook?x=1", "takes no options"),
    ("sqlite://var/gridhook.db", "sqlite:////absolute/path.db"),
    ("sqlite:///", "names no file"),
    ("dynamodb://x", "dynamodb://TABLE"),
    ("postgres://db", "unknown store scheme"),
    ("gridhook.db", "not a store URL"),
]


@pytest.mark.parametrize(("url", "says"), MALFORMED)
def test_a_malformed_store_url_is_refused_by_settings_at_start_up(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="GRIDHOOK_STORE") as raised:
        load_settings({"GRIDHOOK_STORE": url})
    assert says in str(raised.value)


@pytest.mark.parametrize(("url", "says"), MALFORMED)
def test_a_malformed_store_url_is_refused_by_open_store_before_any_query(
    url: str, says: str
) -> None:
    with pytest.raises(ValueError) as raised:
        open_store(url)
    assert says in str(raised.value)


def test_a_malformed_store_url_is_refused_by_a_command(capsys) -> None:
    assert main(["events", "--store", "firestore://proj-x/a/b"]) == 2
    assert "firestore://PROJECT[/DATABASE]" in capsys.readouterr().err


def test_sqlite_paths_follow_sqlalchemy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three slashes: relative to the working directory; four: absolute."""
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///rel/events.db").close()
    assert (tmp_path / "rel" / "events.db").is_file()
    absolute = tmp_path / "abs" / "events.db"
    open_store(f"sqlite:///{absolute}").close()  # "/" + "/tmp/..." = four slashes
    assert str(f"sqlite:///{absolute}").startswith("sqlite:////")
    assert absolute.is_file()


# -- stores written by the code before the codecs ------------------------------------------


def test_a_sqlite_store_from_before_the_codecs_reads_and_migrates(tmp_path: Path) -> None:
    """A file made by the previous release (its schema and rows, verbatim): its rows read
    back, the renamed and new columns appear, and new writes go beside the old ones."""
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": "old"}
    conn.execute(
        "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            "e" * 32,
            "2026-01-01T12:00:00.000000Z",
            "start_ramp_down",
            payload["feed_tag"],
            "old",
            "2025-10-24T17:00:00.000000Z",
            None,
            6.5e6,
            None,
            None,
            1,
            json.dumps(payload),
        ),
    )
    alert = {
        "alert_id": "a1",
        "kind": "episode_stalled",
        "detected_at": "2026-01-01T12:00:00Z",
        "message": "stalled",
        "feed_tag": None,
        "correlation_id": "old",
        "details": {"deadline_s": 1800},
    }
    conn.execute(
        "INSERT INTO alerts VALUES (?, ?, ?)",
        ("a1", "2026-01-01T12:00:00.000000Z", json.dumps(alert)),
    )
    subscription = {
        "subscription_id": "s1",
        "url": "https://example.test/hook",
        "events": ["start_ramp_down"],
        "token_fingerprint": None,
        "desired": True,
        "registered": False,
        "last_attempt": "2026-01-01T12:00:00Z",
        "last_success": None,
        "last_error": "boom",
        "consecutive_failures": 2,
    }
    conn.execute("INSERT INTO subscriptions VALUES (?, ?)", ("s1", json.dumps(subscription)))
    conn.commit()
    conn.close()

    store = open_store(f"sqlite:///{path}", create=False)
    old = store.get_event("e" * 32)
    assert old is not None and old.payload == payload and old.compliant is True
    assert old.stored_at is None  # stored before write order existed
    new = normalise(copy.deepcopy(SEED_PAYLOAD), datetime.now(UTC))
    store.add_event(new)
    assert [e.event_id for e in store.events(EventQuery()).events] == ["e" * 32, new.event_id]
    # Write order lists only what was stored with a write time.
    stored = store.events(EventQuery(order=EventOrder.STORED))
    assert [e.event_id for e in stored.events] == [new.event_id]
    [got_alert] = store.alerts()
    assert got_alert.details == {"deadline_s": 1800}
    assert got_alert.detected_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    [got_subscription] = store.subscriptions()
    assert got_subscription.events == ("start_ramp_down",)
    assert got_subscription.consecutive_failures == 2
    store.close()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(events)")}
    assert {"payload_json", "stored_at"} <= columns and "payload" not in columns


#: The previous release's schema (commit 4930bc8), as a store it made has it.
OLD_SCHEMA = """
CREATE TABLE events (
    event_id TEXT PRIMARY KEY, received_at TEXT NOT NULL, event TEXT NOT NULL,
    feed_tag TEXT, correlation_id TEXT, start_time TEXT, end_time TEXT, target_w REAL,
    prev_target_w REAL, calculated_w REAL, compliant INTEGER, payload TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_by_time ON events (received_at, event_id);
CREATE INDEX events_by_feed ON events (feed_tag, received_at, event_id);
CREATE INDEX events_by_correlation ON events (correlation_id, received_at, event_id);
CREATE TABLE quarantine (
    quarantine_id TEXT PRIMARY KEY, received_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    reason TEXT NOT NULL, errors TEXT NOT NULL, body TEXT NOT NULL,
    body_bytes INTEGER NOT NULL, body_sha256 TEXT NOT NULL
);
CREATE TABLE samples (
    sample_id TEXT PRIMARY KEY, feed_tag TEXT NOT NULL, sampled_at TEXT NOT NULL,
    calculated_w REAL, target_w REAL, correlation_id TEXT, expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, detected_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE subscriptions (subscription_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE drift (drift_id TEXT PRIMARY KEY, detected_at TEXT NOT NULL, record TEXT NOT NULL);
"""


def test_quarantine_from_before_replay_columns_reads(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    now = datetime.now(UTC)
    conn.execute(
        "INSERT INTO quarantine VALUES (?,?,?,?,?,?,?,?)",
        ("q" * 32, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
         (now + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
         "schema_violation", "[]", "{}", 2, "d" * 64),
    )  # fmt: skip
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    got = store.get_quarantined("q" * 32)
    assert isinstance(got, QuarantinedPayload) and got.replayed_at is None
    store.close()


# -- Firestore documents and DynamoDB items written before the codecs ------------------------

NOW = datetime.now(UTC).replace(microsecond=0)
OLD_PAYLOAD = {**SEED_PAYLOAD, "correlation_id": "old-episode"}


def _check_old_records(store) -> None:
    """What each old record reads back as, through the store's own API."""
    event = store.get_event("e" * 32)
    assert event is not None
    assert (event.payload, event.target_w, event.compliant) == (OLD_PAYLOAD, 6.5e6, True)
    assert event.received_at == NOW - timedelta(hours=1) and event.stored_at is None
    assert [e.event_id for e in store.events(EventQuery(correlation_id="old-episode")).events] == [
        "e" * 32
    ]
    quarantined = store.get_quarantined("q" * 32)
    assert quarantined is not None and quarantined.errors == [{"path": "", "message": "m"}]
    assert [q.quarantine_id for q in store.quarantined().items] == ["q" * 32]
    [sample] = store.samples(SampleQuery(feed_tag="feed_a")).samples
    assert (sample.calculated_w, sample.target_w) == (4.2e6, None)
    [alert] = store.alerts()
    assert alert.details == {"deadline_s": 1800}
    [subscription] = store.subscriptions()
    assert subscription.events == ("start_ramp_down",) and subscription.consecutive_failures == 2
    # Old and new drift together, newest first.
    store.add_drift(DriftRecord("d-new", "feed_a", NOW, "new", {"target_w": 1.0}))
    assert [(d.drift_id, d.dps_view) for d in store.drift()] == [
        ("d-new", {"target_w": 1.0}),
        ("d-old", {"target_w": 5e6}),
    ]
    store.add_alert(AlertRecord("a-new", "episode_stalled", NOW, "new", details={"x": [1]}))
    assert [a.alert_id for a in store.alerts()] == ["a-new", "a-old"]


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _sortable(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.firestore
def test_firestore_documents_from_before_the_codecs_read(firestore_env) -> None:
    from google.cloud import firestore

    project, database = parse_store_url(firestore_env["GRIDHOOK_STORE"]).project, "gridhook"
    client = firestore.Client(project=project, database=database)
    received = NOW - timedelta(hours=1)
    # As the previous release's firestore.py wrote them.
    client.collection("power_events").document("e" * 32).set({
        "sort_key": f"{_sortable(received)}|{'e' * 32}", "event_id": "e" * 32,
        "received_at": received, "event": "start_ramp_down", "feed_tag": "feed_a",
        "correlation_id": "old-episode", "start_time": None, "end_time": None,
        "target_w": 6.5e6, "prev_target_w": None, "calculated_w": None, "compliant": True,
        "payload_json": json.dumps(OLD_PAYLOAD),
    })  # fmt: skip
    client.collection("quarantine").document("q" * 32).set({
        "quarantine_id": "q" * 32, "sort_key": f"{_sortable(received)}|{'q' * 32}",
        "received_at": received, "expires_at": NOW + timedelta(days=7), "reason": "r",
        "errors": json.dumps([{"path": "", "message": "m"}]), "body": "{}", "body_bytes": 2,
        "body_sha256": "d" * 64, "replayed_at": None, "replayed_event_id": None,
    })  # fmt: skip
    client.collection("samples").document("s" * 32).set({
        "sample_id": "s" * 32, "sort_key": f"{_sortable(received)}|{'s' * 32}",
        "feed_tag": "feed_a", "sampled_at": received, "calculated_w": 4.2e6, "target_w": None,
        "correlation_id": None, "expires_at": NOW + timedelta(days=7),
    })  # fmt: skip
    client.collection("alerts").document("a-old").set({
        "alert_id": "a-old", "sort_key": f"{_sortable(received)}|a-old",
        "kind": "episode_stalled", "detected_at": received, "message": "m", "feed_tag": None,
        "correlation_id": None, "details_json": json.dumps({"deadline_s": 1800}),
    })  # fmt: skip
    client.collection("subscriptions").document("s1").set({
        "subscription_id": "s1", "url": "https://example.test/hook",
        "events": ["start_ramp_down"], "token_fingerprint": None, "desired": True,
        "registered": False, "last_attempt": _rfc3339(received), "last_success": None,
        "last_error": "boom", "consecutive_failures": 2,
    })  # fmt: skip
    client.collection("drift").document("d-old").set({
        "drift_id": "d-old", "feed_tag": "feed_a", "detected_at": _rfc3339(received),
        "message": "old", "dps_view": {"target_w": 5e6}, "our_view": {"phase": "steady"},
    })  # fmt: skip
    client.close()
    store = open_store(firestore_env["GRIDHOOK_STORE"])
    try:
        _check_old_records(store)
    finally:
        store.close()


@pytest.mark.dynamodb
def test_dynamodb_items_from_before_the_codecs_read(dynamodb_env) -> None:
    store = open_store(dynamodb_env["GRIDHOOK_STORE"])
    received = NOW - timedelta(hours=1)
    expires = NOW + timedelta(days=7)

    def s(value: str) -> dict[str, str]:
        return {"S": value}

    def header(kind: str, item_id: str, at: datetime) -> dict[str, dict[str, str]]:
        return {
            "pk": s(f"{kind}#{item_id}"), "sk": s(kind), "kind": s(kind),
            "sort_key": s(f"{_sortable(at)}|{item_id}"),
        }  # fmt: skip

    expiry = {"expires_at": s(_sortable(expires)), "expires_at_epoch": {"N": "1999999999"}}
    sample = {
        "sample_id": "s" * 32, "feed_tag": "feed_a", "sampled_at": _rfc3339(received),
        "calculated_w": 4.2e6, "target_w": None, "correlation_id": None,
        "expires_at": _rfc3339(expires),
    }  # fmt: skip
    alert = {
        "alert_id": "a-old", "kind": "episode_stalled", "detected_at": _rfc3339(received),
        "message": "m", "feed_tag": None, "correlation_id": None,
        "details": {"deadline_s": 1800},
    }  # fmt: skip
    subscription = {
        "subscription_id": "s1", "url": "https://example.test/hook",
        "events": ["start_ramp_down"], "token_fingerprint": None, "desired": True,
        "registered": False, "last_attempt": _rfc3339(received), "last_success": None,
        "last_error": "boom", "consecutive_failures": 2,
    }  # fmt: skip
    drift = {
        "drift_id": "d-old", "feed_tag": "feed_a", "detected_at": _rfc3339(received),
        "message": "old", "dps_view": {"target_w": 5e6}, "our_view": {},
    }  # fmt: skip
    # As the previous release's dynamodb.py wrote them.
    for item in (
        {
            **header("EVENT", "e" * 32, received), "event_id": s("e" * 32),
            "received_at": s(_sortable(received)), "event": s("start_ramp_down"),
            "payload_json": s(json.dumps(OLD_PAYLOAD)), "feed_tag": s("feed_a"),
            "correlation_id": s("old-episode"), "target_w": {"N": "6500000.0"},
            "compliant": {"BOOL": True},
        },
        {
            **header("QUARANTINE", "q" * 32, received), "quarantine_id": s("q" * 32),
            "received_at": s(_sortable(received)), **expiry, "reason": s("r"),
            "errors": s(json.dumps([{"path": "", "message": "m"}])), "body": s("{}"),
            "body_bytes": {"N": "2"}, "body_sha256": s("d" * 64),
        },
        {
            **header("SAMPLE", "s" * 32, received), "sample_feed": s("feed_a"), **expiry,
            "record_json": s(json.dumps(sample)),
        },
        {**header("ALERT", "a-old", received), "record_json": s(json.dumps(alert))},
        {
            "pk": s("SUBSCRIPTIONS"), "sk": s("SUBSCRIPTION#s1"),
            "record_json": s(json.dumps(subscription)),
        },
        {**header("DRIFT", "d-old", received), "record_json": s(json.dumps(drift))},
    ):  # fmt: skip
        store.client.put_item(TableName=store.table, Item=item)
    try:
        _check_old_records(store)
    finally:
        store.close()
