"""Real servers for tests: the Firestore emulator and functions-framework processes; the
same functions in-process (the real functions-framework app through Flask's test client);
and the one clean environment every test and child process starts from.

Servers run as child processes on free loopback ports and are stopped by the fixtures
that start them, so a test run leaves nothing behind. Starting, waiting for and stopping
a process is `demo.processes` (one implementation, shared with `make demo`); the
emulator is `demo.firestore_emulator`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

# Re-exported (`X as X`) for the tests that import them from here.
from demo.firestore_emulator import FirestoreEmulator as FirestoreEmulator
from demo.processes import ChildProcess, free_port, wait_for_port
from demo.processes import stop_process_group as stop_process_group

if TYPE_CHECKING:
    import flask

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


# Variables from outside the code's own list that still change what it does: the libraries'
# (Firestore emulator, AWS credentials and endpoints) and proxies (loopback gRPC and HTTP
# must never go through one).
_AMBIENT_PREFIXES = ("GRIDHOOK_", "NVGRID_", "FIRESTORE_", "AWS_")
_PROXIES = {"http_proxy", "https_proxy", "all_proxy", "grpc_proxy", "no_proxy"}
# What a bare environment keeps (a clean venv must not find this repo through PYTHONPATH).
_BARE_KEEPS = ("PATH", "HOME", "LANG", "TMPDIR")


def _ambient(name: str) -> bool:
    from gridhook.settings import DEV_ENV_VARS, ENV_VARS

    return (
        name in ENV_VARS
        or name in DEV_ENV_VARS
        or name.startswith(_AMBIENT_PREFIXES)
        or name.lower() in _PROXIES
    )


def clean_env(
    environ: Mapping[str, str] | None = None, *, bare: bool = False, **extra: str
) -> dict[str, str]:
    """The environment a test or child process starts from: ``environ`` (default the
    process's) without any setting gridhook or its libraries read (every name in
    ``gridhook.settings.ENV_VARS``/``DEV_ENV_VARS``, every GRIDHOOK_*, NVGRID_*,
    FIRESTORE_*, AWS_* and proxy variable), plus ``extra``. ``bare=True`` keeps only
    PATH, HOME, LANG and TMPDIR (a clean venv that must not see this repo)."""
    source = os.environ if environ is None else environ
    if bare:
        kept = {k: source[k] for k in _BARE_KEEPS if k in source}
    else:
        kept = {k: v for k, v in source.items() if not _ambient(k)}
    return {**kept, **extra}


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


class Reply:
    """A Flask test response seen as a ``requests.Response`` (the assertions read the same)."""

    def __init__(self, response: Any) -> None:
        self.status_code: int = response.status_code
        self.headers = response.headers  # werkzeug Headers: case-insensitive, like requests'
        self.content: bytes = response.get_data()
        self.text: str = self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` set in os.environ for the block, everything restored after."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        yield


class FunctionApp:
    """One Cloud Function target as the real functions-framework app (``create_app``),
    called in-process through Flask's test client: the same WSGI app gunicorn serves, with
    no process, port or socket. ``get``/``post``/``request`` take requests' arguments.

    Like a server process, the function sees the test's environment plus ``env`` — but
    only while it builds and while it answers, so nothing of ``env`` leaks into other
    fixtures (a server started beside it, say)."""

    url = "http://localhost"

    def __init__(self, app: flask.Flask, target: str, env: Mapping[str, str]) -> None:
        self.app = app
        self.target = target
        self.env = {**env, "FUNCTION_TARGET": target}
        self._client = app.test_client()

    def request(
        self,
        method: str,
        path: str = "/",
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # accepted for requests' signature; nothing waits
    ) -> Reply:
        if path.startswith(self.url):
            path = path[len(self.url) :]
        path, _, query = path.partition("?")
        with _environ(self.env):
            response = self._client.open(
                path,
                method=method,
                query_string=params if params is not None else query,
                json=json,
                data=data,
                headers=dict(headers or {}),
            )
        return Reply(response)

    def get(self, path: str = "/", **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def head(self, path: str = "/", **kwargs: Any) -> Reply:
        return self.request("HEAD", path, **kwargs)

    def post(self, path: str = "/nvgrid/webhook", **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The app as a WSGI callable, with ``env`` set while it answers (for a tool that
        drives a WSGI app itself, such as schemathesis)."""
        with _environ(self.env):
            return list(self.app(environ, start_response))

    @contextlib.contextmanager
    def serve(self) -> Iterator[ServedFunction]:
        """The same app answering real HTTP on a free loopback port, from a thread of this
        process (werkzeug's server, not gunicorn): for a caller that needs a URL, such as
        the simulator delivering webhooks. ``env`` stays set while it serves."""
        from werkzeug.serving import make_server

        with _environ(self.env):
            server = make_server("127.0.0.1", 0, self.app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            thread.start()
            try:
                yield ServedFunction(f"http://127.0.0.1:{server.server_port}", self.env)
            finally:
                server.shutdown()
                server.server_close()
                thread.join()


@dataclass(frozen=True)
class ServedFunction:
    """Where :meth:`FunctionApp.serve` answers, and the environment it was built from."""

    url: str
    env: Mapping[str, str]


def _close_held_store(holder: Any) -> None:
    """Close the store a process-wide receiver or report service opened, if it did."""
    lazy = getattr(holder, "_store", None)
    opened = getattr(lazy, "_store", None)
    if opened is not None:
        opened.close()


@contextlib.contextmanager
def function_app(
    target: str, env: Mapping[str, str], source: Path | None = None
) -> Iterator[FunctionApp]:
    """``target`` of ``source`` (default functions/main.py) as a :class:`FunctionApp`, built
    as a cold start would: the process-wide settings, receiver, report service and clock
    are reset before and after. Import errors and start-up refusals raise here, as they
    would stop a server from starting. One at a time per process (they share those)."""
    import pytest
    from functions_framework import create_app

    from gridhook import clock, receiver, report_http
    from gridhook.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        # Only this target's own singletons: a receiver served beside a job keeps its own.
        if target == "receive_power_event":
            mp.setattr(receiver, "_receiver", None)
        if target == "power_report":
            mp.setattr(report_http, "_service", None)
            mp.setattr(report_http, "_started", False)
        get_settings.cache_clear()
        try:
            # create_app sets FUNCTION_TARGET and FUNCTION_SIGNATURE_TYPE in os.environ for
            # good; set here first, _environ restores both after.
            with _environ({**env, "FUNCTION_TARGET": target, "FUNCTION_SIGNATURE_TYPE": "http"}):
                app = create_app(target, str(source or FUNCTIONS / "main.py"))
            yield FunctionApp(app, target, env)
        finally:
            if target == "receive_power_event":
                _close_held_store(receiver._receiver)
            if target == "power_report":
                _close_held_store(report_http._service)
            get_settings.cache_clear()
            clock.configure(None)


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
