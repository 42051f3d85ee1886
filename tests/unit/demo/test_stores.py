"""Which store the demo plays into: its own SQLite file, or the one GRIDHOOK_STORE names —
Firestore only through the emulator — and never one that already holds events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from demo.errors import DemoError
from demo.stores import (
    DemoStore,
    choose_store,
    emulator_address,
    may_start_emulator,
    require_empty,
)
from gridhook.events import normalise
from gridhook.store import open_store
from tests.harness import SEED_PAYLOAD


def test_without_gridhook_store_the_demo_uses_its_own_sqlite_file(tmp_path: Path) -> None:
    chosen = choose_store({}, tmp_path / "demo/gridhook.db")
    assert chosen == DemoStore(f"sqlite:///{tmp_path}/demo/gridhook.db", own=True)
    assert chosen.env == {"GRIDHOOK_STORE": chosen.url}


def test_a_firestore_store_goes_with_its_emulator(tmp_path: Path) -> None:
    environ = {
        "GRIDHOOK_STORE": "firestore://demo-day/gridhook",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8085",
    }
    chosen = choose_store(environ, tmp_path / "own.db")
    assert chosen == DemoStore("firestore://demo-day/gridhook", emulator_host="127.0.0.1:8085")
    assert chosen.env == environ  # what the receiver, reconcile and the CLI are given


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GRIDHOOK_STORE": "firestore://demo-day/gridhook"}, "without FIRESTORE_EMULATOR_HOST"),
        (
            {"GRIDHOOK_STORE": "firestore://demo", "FIRESTORE_EMULATOR_HOST": "localhost"},
            "FIRESTORE_EMULATOR_HOST=localhost is not HOST:PORT",
        ),
        ({"GRIDHOOK_STORE": "dynamodb://table"}, "plays into SQLite (sqlite:///PATH) or"),
        ({"GRIDHOOK_STORE": "events.db"}, "plays into SQLite (sqlite:///PATH) or"),
    ],
)
def test_stores_the_demo_does_not_play_into_are_refused(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(DemoError) as refused:
        choose_store(environ, tmp_path / "own.db")
    assert message in str(refused.value)


def test_the_emulator_address() -> None:
    assert emulator_address("127.0.0.1:8085") == ("127.0.0.1", 8085)
    assert emulator_address("localhost:9000") == ("localhost", 9000)
    assert may_start_emulator("127.0.0.1:8085") and may_start_emulator("localhost:1")
    # start.js listens on 127.0.0.1 only: an emulator started for another address would
    # never answer there.
    assert not may_start_emulator("10.0.0.5:8085")
    assert not may_start_emulator("[::1]:8085")
    for bad in ("8085", "127.0.0.1:", "127.0.0.1:port", ":8085"):
        with pytest.raises(DemoError, match="is not HOST:PORT"):
            emulator_address(bad)


def test_a_store_that_holds_events_is_refused_and_an_empty_one_taken(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mine.db"
    sites = ["phx1", "ams1"]
    require_empty(DemoStore(url), sites)  # new: nothing in it
    store = open_store(url)
    try:
        store.add_event(normalise(dict(SEED_PAYLOAD), datetime.now(UTC), site="ams1"))
    finally:
        store.close()
    with pytest.raises(DemoError, match=f"GRIDHOOK_STORE={url} already holds events of ams1"):
        require_empty(DemoStore(url), sites)
    require_empty(DemoStore(url), ["phx1"])  # another site's events are not the demo's sites'
