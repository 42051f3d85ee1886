"""Real servers for tests: the Firestore emulator and functions-framework processes.

Both run as child processes on free loopback ports and are stopped by the fixtures
that start them, so a test run leaves nothing behind. Starting, waiting for and stopping
a process is `demo.processes` (one implementation, shared with `make demo`); the
emulator is `demo.firestore_emulator`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import requests

# Re-exported (`X as X`) for the tests that import them from here.
from demo.firestore_emulator import FirestoreEmulator as FirestoreEmulator
from demo.processes import ChildProcess, free_port, wait_for_port
from demo.processes import stop_process_group as stop_process_group

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO / "functions"
TEST_TOKEN = "test-token-0123456789abcdef"
OLD_TOKEN = "old-token-0123456789abcdef"

SEED_PAYLOAD = {
    "event": "start_ramp_down",
    "feed_tag": "main_power_feed",
    "start_time": "2025-10-24T17:00:00Z",
    "end_time": "2025-10-24T18:00:00Z",
    "strategy": "best_effort",
    "target_load": {"value": 6.5, "unit": "mw"},
    "prev_target_load": {"value": 10.0, "unit": "mw"},
    "calculated_load": {"value": 9.2, "unit": "mw"},
    "compliant": False,
    "correlation_id": "curtailment-20251024-170000",
}


class FunctionServer:
    """One Cloud Function target served by the real functions-framework server."""

    def __init__(
        self,
        target: str,
        env: Mapping[str, str],
        cwd: Path | None = None,
        source: Path | None = None,
    ) -> None:
        self.target = target
        self.source = source or FUNCTIONS / "main.py"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.cwd = cwd or REPO
        self.log_path = self.cwd / f".ff-{self.target}-{self.port}.log"
        self._proc: ChildProcess | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._proc = ChildProcess(
            self.target,
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--source",
                str(self.source),
                "--target",
                self.target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            cwd=self.cwd,
            log_path=self.log_path,
        )
        try:
            wait_for_port(self.port, timeout, proc=self._proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.target} did not start:\n{self.logs()}") from None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def post(self, path: str = "/nvgrid/webhook", **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.post(self.url + path, **kwargs)  # noqa: S113 - timeout set above

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        """The server's main (gunicorn arbiter) process id, while it runs."""
        return None if self._proc is None else self._proc.pid


@contextlib.contextmanager
def function_server(
    target: str, env: Mapping[str, str], cwd: Path | None = None, source: Path | None = None
) -> Iterator[FunctionServer]:
    server = FunctionServer(target, env, cwd, source)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            server.log_path.unlink()


def assert_one_round_trip_per_add(store, round_trips: Callable[[], int]) -> None:
    """New events and their redeliveries each cost exactly one store round trip."""
    from gridhook.events import normalise
    from gridhook.store import AddOutcome

    for i in range(5):
        event = normalise({**copy.deepcopy(SEED_PAYLOAD), "seq": i}, datetime.now(UTC))
        for expected in (AddOutcome.ACCEPTED, AddOutcome.DUPLICATE):
            before = round_trips()
            assert store.add_event(event) is expected
            assert round_trips() - before == 1


def assert_receiver_hot_path_is_one_round_trip(store, round_trips: Callable[[], int]) -> None:
    """The whole receiver, in-process on ``store``: one round trip per delivery."""
    import flask

    from gridhook.receiver import Receiver
    from gridhook.settings import Settings

    receiver = Receiver(Settings(webhook_tokens=(TEST_TOKEN,)), store=store)
    app = flask.Flask(__name__)
    payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": "hot-path"}
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    statuses = []
    for _ in range(2):
        with app.test_request_context(
            "/nvgrid/webhook", method="POST", json=payload, headers=headers
        ):
            before = round_trips()
            response = receiver.handle(flask.request)
            statuses.append((response.status_code, response.get_json()["status"]))
            assert round_trips() - before == 1
    assert statuses == [(200, "accepted"), (200, "duplicate")]


class GrpcCallCounter:
    """A gRPC client interceptor that counts every RPC by method name."""

    def __init__(self) -> None:
        from collections import Counter

        self.calls: Counter[str] = Counter()

    def _count(self, continuation, client_call_details, request):
        self.calls[client_call_details.method.rsplit("/", 1)[-1]] += 1
        return continuation(client_call_details, request)

    def total(self) -> int:
        return sum(self.calls.values())


def counted_firestore_store(project: str, database: str = "gridhook"):
    """A FirestoreEventStore on the emulator whose every RPC is counted on the wire.

    Test-only instrumentation: the channel the real client builds for the emulator
    (FIRESTORE_EMULATOR_HOST must be set) is wrapped with the counter.
    """
    import grpc
    from google.cloud import firestore

    from gridhook.store.firestore import FirestoreEventStore

    class Counting(
        GrpcCallCounter, grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor
    ):
        intercept_unary_unary = GrpcCallCounter._count
        intercept_unary_stream = GrpcCallCounter._count

    counter = Counting()
    client = firestore.Client(project=project, database=database)
    make_channel = client._emulator_channel
    client._emulator_channel = lambda transport: grpc.intercept_channel(
        make_channel(transport), counter
    )
    return FirestoreEventStore(project, database, client=client), counter
