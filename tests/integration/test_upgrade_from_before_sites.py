"""Upgrading to sites: stores written by gridhook before sites (c82de6c, its own receiver
and store code: tests/fixtures/upgrade/make_pre_sites_stores.py made them), read and written
by today's code, on SQLite and Firestore. Every old record reads back as it was, as the
default site's; a redelivery of an old event to ``/nvgrid/webhook`` is a duplicate with its
old id; nothing is lost or stored twice; a site added afterwards stays apart from them."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from gridhook import receiver
from gridhook.settings import get_settings
from gridhook.sites import DEFAULT_SITE
from gridhook.state.load import current_feed_states
from gridhook.store import (
    EventQuery,
    EventStore,
    SampleQuery,
    StoreError,
    iter_events,
    iter_quarantined,
    iter_samples,
    open_store,
    parse_store_url,
)
from tests.harness import FUNCTIONS, REPO

FIXTURES = REPO / "tests" / "fixtures" / "upgrade"
EXPECTED = json.loads((FIXTURES / "pre-sites.expected.json").read_text(encoding="utf-8"))
TOKEN = EXPECTED["token"]
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _sqlite_store(tmp_path: Path) -> str:
    """The old SQLite file, rebuilt from its dump (schema, indexes and rows verbatim)."""
    path = tmp_path / "pre-sites.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "pre-sites.sqlite.sql").read_text(encoding="utf-8"))
    conn.close()
    return f"sqlite:///{path}"


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$timestamp"}:
            return datetime.fromisoformat(value["$timestamp"])
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return value


def _firestore_store(url: str) -> str:
    """The old Firestore documents, written as they were into a fresh emulator project."""
    from google.cloud import firestore

    parsed = parse_store_url(url)
    client = firestore.Client(project=parsed.project, database=parsed.database)
    documents = json.loads((FIXTURES / "pre-sites.firestore.json").read_text(encoding="utf-8"))
    for path, fields in documents["documents"].items():
        client.document(path).set(_typed(fields))
    client.close()
    return url


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """(the URL of a store the old code wrote, what the old code read back from it)."""
    if request.param == "sqlite":
        return _sqlite_store(tmp_path), EXPECTED["sqlite"]
    env = request.getfixturevalue("firestore_env")
    return _firestore_store(env["GRIDHOOK_STORE"]), EXPECTED["firestore"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., FlaskClient]]:
    """serve(store_url, **env): today's receiver, the real app for main.py, in process."""
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:

        def start(store_url: str, **env: str) -> FlaskClient:
            env = {"GRIDHOOK_STORE": store_url, "GRIDHOOK_WEBHOOK_TOKENS": TOKEN, **env}
            for name, value in env.items():
                mp.setenv(name, value)
            mp.delenv("GRIDHOOK_WEBHOOK_TOKENS_FILE", raising=False)
            mp.setenv("FUNCTION_TARGET", "receive_power_event")
            get_settings.cache_clear()
            if receiver._receiver is not None:
                with contextlib.suppress(StoreError):
                    receiver._receiver.store().close()
            mp.setattr(receiver, "_receiver", None)
            return create_app("receive_power_event", str(FUNCTIONS / "main.py")).test_client()

        yield start
        if receiver._receiver is not None:
            with contextlib.suppress(StoreError):
                receiver._receiver.store().close()
    get_settings.cache_clear()


@pytest.fixture
def opened() -> Iterator[Callable[[str], EventStore]]:
    stores: list[EventStore] = []

    def open_(url: str) -> EventStore:
        stores.append(open_store(url, create=False))
        return stores[-1]

    yield open_
    for store in stores:
        store.close()


def as_before(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the old code showed it: everything but its site, which must be default."""
    assert record["site"] == DEFAULT_SITE, record
    return {k: v for k, v in record.items() if k != "site"}


def read_all(store: EventStore) -> dict[str, Any]:
    """Everything in the default site, as the old code's fixture lists it."""
    return {
        "events": [as_before(e.to_dict()) for e in iter_events(store, EventQuery(limit=1000))],
        "latest_by_feed": {t: e.event_id for t, e in store.latest_by_feed().items()},
        "quarantine": [as_before(q.to_dict()) for q in iter_quarantined(store)],
        "samples": [as_before(s.to_dict()) for s in iter_samples(store, SampleQuery())],
        "subscriptions": [as_before(s.to_dict()) for s in store.subscriptions()],
        "drift": [as_before(d.to_dict()) for d in store.drift()],
        "alerts": [as_before(a.to_dict()) for a in store.alerts()],
    }


def test_every_old_record_reads_back_as_it_was_as_the_default_sites(
    old_store: tuple[str, dict[str, Any]], opened: Callable[[str], EventStore]
) -> None:
    url, before = old_store
    read = read_all(opened(url))
    assert read == {name: value for name, value in before.items() if name != "answers"}
    assert len(read["events"]) == 6 and len(read["quarantine"]) == 1


def test_old_events_are_redelivered_as_duplicates_and_nothing_is_stored_twice(
    old_store: tuple[str, dict[str, Any]],
    serve: Callable[..., FlaskClient],
    opened: Callable[[str], EventStore],
) -> None:
    url, before = old_store
    client = serve(url)
    for body, old in zip(EXPECTED["deliveries"], before["answers"], strict=True):
        # The same bytes as the first time (json.dumps): a quarantine id is the body's hash.
        reply = client.post("/nvgrid/webhook", data=json.dumps(body), headers=AUTH)
        if old["status"] == 422:
            # Rejected again: the same quarantine record (the first receipt is kept).
            assert reply.status_code == 422
            assert (
                reply.get_json()["error"]["quarantine_id"] == old["body"]["error"]["quarantine_id"]
            )
        else:
            assert reply.get_json() == {"status": "duplicate", "event_id": old["body"]["event_id"]}
    new = {**EXPECTED["deliveries"][0], "seq": 99}
    accepted = client.post("/nvgrid/webhook", json=new, headers=AUTH).get_json()
    assert accepted["status"] == "accepted"

    store = opened(url)
    read = read_all(store)
    old_events = before["events"]
    assert [e for e in read["events"] if e["event_id"] != accepted["event_id"]] == old_events
    assert len(read["events"]) == len(old_events) + 1
    assert read["quarantine"] == before["quarantine"]
    for name in ("samples", "subscriptions", "drift", "alerts"):
        assert read[name] == before[name], name
    # Today's readers derive the old curtailment from the old events.
    states = current_feed_states(
        store, now=datetime(2090, 1, 2, tzinfo=UTC), ramp_deadline=timedelta(hours=1)
    )
    assert states["main_power_feed"].phase == "steady"
    assert states["backup_feed"].last_event_id == before["latest_by_feed"]["backup_feed"]


def test_a_site_added_after_the_upgrade_stays_apart_from_the_old_records(
    old_store: tuple[str, dict[str, Any]],
    serve: Callable[..., FlaskClient],
    opened: Callable[[str], EventStore],
    tmp_path: Path,
) -> None:
    url, before = old_store
    sites = tmp_path / "sites.toml"
    for site in ("default", "phx1"):
        (tmp_path / site).mkdir()
        (tmp_path / site / "webhook-tokens").write_text(f"{site}-{TOKEN}\n")
    sites.write_text(
        "".join(
            f'[sites.{site}]\ntimezone = "UTC"\nnvgrid_host = "dps.{site}.test:443"\n'
            f'nvgrid_credentials_file = "{tmp_path / site / "credentials"}"\n'
            f'webhook_tokens_file = "{tmp_path / site / "webhook-tokens"}"\n\n'
            for site in ("default", "phx1")
        )
    )
    client = serve(url, GRIDHOOK_SITES_FILE=str(sites))
    body = EXPECTED["deliveries"][0]
    old_id = before["answers"][0]["body"]["event_id"]
    default = {**AUTH, "Authorization": f"Bearer default-{TOKEN}"}
    phx1 = {**AUTH, "Authorization": f"Bearer phx1-{TOKEN}"}
    assert client.post("/nvgrid/webhook", json=body, headers=default).get_json() == {
        "status": "duplicate",
        "event_id": old_id,
    }
    on_phx1 = client.post("/nvgrid/webhook/phx1", json=body, headers=phx1).get_json()
    assert on_phx1["status"] == "accepted" and on_phx1["event_id"] != old_id

    store = opened(url)
    assert read_all(store)["events"] == before["events"]
    [event] = store.events(EventQuery(site="phx1")).events
    assert (event.event_id, event.site, event.payload) == (on_phx1["event_id"], "phx1", body)
    assert store.quarantined(site="phx1").items == []
    assert store.samples(SampleQuery(site="phx1")).samples == []
    assert (store.subscriptions(site="phx1"), store.drift(site="phx1")) == ([], [])
    assert store.alerts(site="phx1") == []


def test_an_old_sqlite_file_is_rebuilt_once_keyed_by_site(tmp_path: Path) -> None:
    from gridhook.store.sqlite import _schema_changes

    url = _sqlite_store(tmp_path)
    path = tmp_path / "pre-sites.db"
    before = sqlite3.connect(path).execute("SELECT COUNT(*) FROM events").fetchone()
    open_store(url, create=False).close()
    conn = sqlite3.connect(path)
    for table, key in (
        ("events", ["site", "event_id"]),
        ("quarantine", ["site", "quarantine_id"]),
        ("samples", ["site", "sample_id"]),
        ("alerts", ["site", "alert_id"]),
        ("subscriptions", ["site", "subscription_id"]),
        ("drift", ["site", "drift_id"]),
    ):
        info = conn.execute(f"PRAGMA table_info({table})").fetchall()
        assert [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]] == key, table
        sites = conn.execute(f"SELECT DISTINCT site FROM {table}").fetchall()  # noqa: S608
        assert sites == [(DEFAULT_SITE,)], table
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    assert indexes and all("(site, " in sql for _, sql in indexes), indexes
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == before
    assert _schema_changes(conn) == []  # opened again: nothing left to change
    conn.close()
