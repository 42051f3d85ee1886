"""Shared fixtures: a clean environment, stores on every backend, the Firestore emulator,
moto, the DPS simulator. Every fixture here is safe under pytest-xdist (docs/design.md,
"Development": how to write an xdist-safe test)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from gridhook.store import EventStore, open_store
from simulator import Simulator, SimulatorConfig, start_simulator
from tests.harness import FirestoreEmulator, clean_env

# Hypothesis profiles, chosen by GRIDHOOK_HYPOTHESIS_PROFILE (or pytest --hypothesis-profile).
# "ci", the default (so `make test`): the same examples every run, no example database, so a
# run never fails by chance; a failure prints the blob that reproduces it. "dev": new random
# examples each run, failures kept in .hypothesis/ and replayed first. Neither has a deadline
# or the too_slow health check: both are timed, and this machine is shared. A test's own
# @settings(...) overrides only what it names (a suppress_health_check list replaces this one).
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_UNTIMED)
settings.register_profile("dev", **_UNTIMED)
settings.load_profile(os.environ.get("GRIDHOOK_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    """No developer or CI setting (GRIDHOOK_*, NVGRID_*, FIRESTORE_*, AWS_*, proxies) leaks
    into a test or the processes it starts: the whole run starts from ``clean_env()``."""
    kept = clean_env()
    with pytest.MonkeyPatch.context() as mp:
        for name in [name for name in os.environ if name not in kept]:
            mp.delenv(name)
        yield


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """One emulator per session, so one per xdist worker (one shared through a file lock was
    measured no faster); tests isolate themselves by project id."""
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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on a free loopback port: the real boto3 client speaks real HTTP.

    One request at a time: DynamoDB applies a conditional write atomically, moto does not
    across its server threads (under load two PutItems of one new event, each with
    ``attribute_not_exists(pk)``, both succeeded). Serving one at a time gives back the
    atomicity the store relies on; the receiver still sends them concurrently."""
    try:
        from moto.server import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
    except ModuleNotFoundError as exc:  # moto[dynamodb] alone lacks the server's flask-cors
        pytest.fail(f"moto server mode needs {exc.name}: pip install flask-cors")
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    moto = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with one_at_a_time:
            return list(moto(environ, start_response))

    server = make_server(
        "127.0.0.1", 0, serialised, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dynamodb_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment pointing boto3 at moto (fake credentials), with a fresh, empty table."""
    from gridhook.store.dynamodb import DynamoDBEventStore

    table = f"gridhook-test-{uuid.uuid4().hex[:12]}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "GRIDHOOK_STORE": f"dynamodb://{table}",
    }
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    admin = DynamoDBEventStore(table, timeout_seconds=5.0)
    admin.create_table()
    yield env
    admin.delete_table()
    admin.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("firestore", marks=pytest.mark.firestore),
        pytest.param("dynamodb", marks=pytest.mark.dynamodb),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    env = request.getfixturevalue(f"{request.param}_env")
    return env["GRIDHOOK_STORE"]


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_store(store_url, timeout_seconds=5.0)
    yield opened
    opened.close()


# -- the DPS simulator -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated CA for the session (the simulator reuses valid files)."""
    return tmp_path_factory.mktemp("sim-tls")


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    """What ``make_sim`` starts a simulator with unless told otherwise; a directory's
    conftest overrides this fixture to give its tests other defaults."""
    return {}


@pytest.fixture
def make_sim(tls_dir: Path, sim_defaults: dict[str, Any]) -> Iterator[Callable[..., Simulator]]:
    """``make_sim(**overrides)``: an in-process DPS simulator on a free port (TLS with the
    session's CA unless ``insecure=True``); every one is stopped after the test."""
    started: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        settings: dict[str, Any] = {"port": 0, "tls_dir": tls_dir, **sim_defaults, **overrides}
        sim = start_simulator(SimulatorConfig(**settings))
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop(grace=0)
