"""Fixtures: an in-process DPS simulator (TLS with its generated CA, or plaintext) and clients
that talk to it through real gRPC. Helpers are fixtures (not imports) because pytest runs with
--import-mode=importlib, where test modules cannot import their conftest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gridhook.nvgrid import CallPolicy, Credentials, NvGridEndpoint, make_endpoint
from gridhook.nvgrid.client import NvGridClient
from simulator import Simulator

# Short deadlines and backoffs keep the retry tests fast; the semantics are the same.
FAST_POLICY = CallPolicy(
    call_timeout=2.0, overall_timeout=5.0, max_attempts=4, initial_backoff=0.01, max_backoff=0.05
)
ADMIN = Credentials("admin", "password")

SimFactory = Callable[..., Simulator]


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
