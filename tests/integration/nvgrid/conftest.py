"""Fixtures: an in-process DPS simulator (TLS with its generated CA, or plaintext) and clients
that talk to it through real gRPC. Helpers are fixtures (not imports) because pytest runs with
--import-mode=importlib, where test modules cannot import their conftest."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gridhook.nvgrid import CallPolicy, Credentials, NvGridEndpoint, make_endpoint
from gridhook.nvgrid.client import NvGridClient
from simulator import Simulator, SimulatorConfig, start_simulator

# Short deadlines and backoffs keep the retry tests fast; the semantics are the same.
FAST_POLICY = CallPolicy(
    call_timeout=2.0, overall_timeout=5.0, max_attempts=4, initial_backoff=0.01, max_backoff=0.05
)
ADMIN = Credentials("admin", "password")

SimFactory = Callable[..., Simulator]


@pytest.fixture(autouse=True)
def _no_ambient_nvgrid_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not pick up a developer's NVGRID_* settings."""
    for name in [name for name in os.environ if name.startswith("NVGRID_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated CA for the whole session (the simulator reuses valid files)."""
    return tmp_path_factory.mktemp("sim-tls")


@pytest.fixture
def make_sim(tls_dir: Path) -> Iterator[SimFactory]:
    """Start simulators with overrides (``insecure=True``, ``token_ttl=…``); all stopped after."""
    started: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        settings: dict[str, Any] = {"port": 0, "tls_dir": tls_dir}
        settings.update(overrides)
        sim = start_simulator(SimulatorConfig(**settings))
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop(grace=0)


def _endpoint_for(sim: Simulator, tls: str = "verify", **kwargs: Any) -> NvGridEndpoint:
    """The endpoint of ``sim`` in a TLS mode (the CA is passed only for ``verify``)."""
    ca = sim.ca_cert_path if tls == "verify" else None
    return make_endpoint(
        kwargs.pop("host", sim.address),
        tls=tls,
        ca_cert_path=ca,
        policy=kwargs.pop("policy", FAST_POLICY),
        environ={},
        **kwargs,
    )


@pytest.fixture
def endpoint_for() -> Callable[..., NvGridEndpoint]:
    """``endpoint_for(sim, tls="verify"|"skip-verify"|"plaintext", policy=…)``."""
    return _endpoint_for


@pytest.fixture
def fast_policy() -> CallPolicy:
    return FAST_POLICY


@pytest.fixture
def admin() -> Credentials:
    """The simulator's default user (admin:password, as in the seed)."""
    return ADMIN


@pytest.fixture(params=["verify", "plaintext"], ids=["tls", "plaintext"])
def sim_client(
    request: pytest.FixtureRequest, make_sim: SimFactory
) -> Iterator[tuple[Simulator, NvGridClient]]:
    """A simulator and a client, once over TLS with the generated CA and once in plaintext."""
    tls = request.param
    sim = make_sim(insecure=tls == "plaintext", whitelist=["http://127.0.0.1:8080/nvgrid/"])
    with NvGridClient(_endpoint_for(sim, tls), ADMIN) as client:
        yield sim, client
