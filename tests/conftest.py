"""Shared fixtures: stores on every backend, the Firestore emulator, real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridhook.store import EventStore, open_store
from tests.harness import FirestoreEmulator


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """One emulator for the session; tests isolate themselves by project id."""
    emulator = FirestoreEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def firestore_env(
    firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment pointing the real Firestore client at the emulator, fresh project."""
    env = {
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "GRIDHOOK_STORE": f"firestore://test-{uuid.uuid4().hex[:12]}/gridhook",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    env = request.getfixturevalue("firestore_env")
    return env["GRIDHOOK_STORE"]


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_store(store_url, timeout_seconds=5.0)
    yield opened
    opened.close()
