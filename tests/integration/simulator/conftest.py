"""Fixtures: simulators (plaintext and TLS), real gRPC channels, a real HTTP webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from simulator import Simulator

from .support import PASSWORD, USER, Client, SimFactory, connect


@dataclass
class Received:
    path: str  # including the query string
    body: dict[str, Any]
    content_type: str


@dataclass
class WebhookReceiver:
    """A real HTTP server recording POSTs; answers `status` (or the next of `statuses`)."""

    base_url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/nvgrid/webhook") -> str:
        return self.base_url + path

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"got {len(self.received)} of {count} POSTs: {self.events()}"
                    )
                self.lock.wait(remaining)
            return list(self.received)

    def events(self) -> list[str]:
        return [r.body.get("event") for r in self.received]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state: WebhookReceiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert state is not None
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                state.in_flight -= 1
                state.received.append(Received(self.path, body, self.headers["Content-Type"]))
                status = state.statuses.pop(0) if state.statuses else state.status
                state.lock.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = WebhookReceiver(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    """Test-friendly defaults for ``make_sim`` (tests/conftest.py) in this directory."""
    return {
        "insecure": True,
        "users": {USER: PASSWORD},
        "speed": 60.0,
        "ramp_rate_mw_per_minute": 60.0,  # 1 MW per simulated second
        "call_timeout": 5.0,
    }


@pytest.fixture(params=["plaintext", "tls"])
def sim_and_client(
    request: pytest.FixtureRequest, make_sim: SimFactory
) -> Iterator[tuple[Simulator, Client]]:
    """The same simulator behaviour, over plaintext and over TLS with the generated CA."""
    sim = make_sim(insecure=request.param == "plaintext")
    client = connect(sim)
    yield sim, client
    client.channel.close()


@pytest.fixture
def sim_client(make_sim: SimFactory) -> Iterator[tuple[Simulator, Client]]:
    """A plaintext simulator and a logged-in client (for behaviour independent of transport)."""
    sim = make_sim()
    client = connect(sim)
    yield sim, client
    client.channel.close()
