"""Real servers for tests: the Firestore emulator and functions-framework processes.

Both run as child processes on free loopback ports and are stopped by the fixtures
that start them, so a test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO / "functions"
EMULATOR_DIR = REPO / "tools" / "firestore-emulator"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def stop_process_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


class FirestoreEmulator:
    """The npm ``@firestore-emulator/server`` on a fixed port; can be stopped and restarted."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        if not (EMULATOR_DIR / "node_modules").is_dir():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=EMULATOR_DIR,
                check=True,
            )
        self._proc = subprocess.Popen(
            ["node", str(EMULATOR_DIR / "start.js"), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, proc=self._proc)

    def stop(self) -> None:
        if self._proc is not None:
            stop_process_group(self._proc)
            self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


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
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
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
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout, proc=self._proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.target} did not start:\n{self.logs()}") from None

    def stop(self) -> None:
        if self._proc is not None:
            stop_process_group(self._proc)
            self._proc = None
            self._log.close()

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


def assert_receiver_hot_path_is_one_round_trip(
    store, round_trips: Callable[[], int], site: str = "default"
) -> None:
    """The whole receiver, in-process on ``store``: one round trip per delivery (to the
    default site's path, or to ``site``'s, configured as GRIDHOOK_SITES would)."""
    import tempfile

    import flask

    from gridhook.receiver import Receiver
    from gridhook.settings import Settings
    from gridhook.sites import Site, Sites

    settings = Settings(webhook_tokens=(TEST_TOKEN,))
    path = "/nvgrid/webhook"
    secrets = tempfile.TemporaryDirectory()
    if site != "default":
        tokens = Path(secrets.name) / "webhook-tokens"
        tokens.write_text(TEST_TOKEN)
        settings = Settings(sites=Sites((Site(site, webhook_tokens_file=str(tokens)),), "test"))
        path += f"/{site}"
    receiver = Receiver(settings, store=store)
    app = flask.Flask(__name__)
    payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": "hot-path"}
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    statuses = []
    for _ in range(2):
        with app.test_request_context(path, method="POST", json=payload, headers=headers):
            before = round_trips()
            response = receiver.handle(flask.request)
            statuses.append((response.status_code, response.get_json()["status"]))
            assert round_trips() - before == 1
    secrets.cleanup()
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
