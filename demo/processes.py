"""Child processes on this machine, started and stopped one way: by the demo and by the tests'
harness (`tests/harness.py`), so there is one implementation of starting, waiting and stopping.

Each child runs in its own process group (so a Ctrl-C reaches only its parent, which then stops
it in order), its output in a log file, and is stopped with SIGTERM and, if it lingers, SIGKILL
to the whole group (gunicorn's workers included). Ports are loopback ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal, Protocol

__all__ = [
    "ChildProcess",
    "ProcessExited",
    "answers_http",
    "free_port",
    "port_accepts",
    "port_is_free",
    "stop_process_group",
    "wait_for_port",
    "wait_until",
]

LOOPBACK = "127.0.0.1"
POLL_EVERY = 0.05  # seconds between readiness checks


class ProcessExited(RuntimeError):
    """The child exited while it was being waited for."""


class Pollable(Protocol):
    def poll(self) -> int | None: ...


class ChildProcess:
    """One started child; stderr goes to `log_path`, and so does stdout unless `stdout` is
    "pipe" (readable, e.g. for a "listening" line) or a file of its own. Without a
    `log_path` its output is discarded."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None,
        log_path: Path | None,
        stdout: Literal["log", "pipe"] | Path = "log",
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._files: list[IO[bytes]] = []
        log: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
            self._files.append(log)
        out: IO[bytes] | int = log
        if stdout == "pipe":
            out = subprocess.PIPE
        elif isinstance(stdout, Path):
            out = open(stdout, "wb")  # noqa: SIM115 - closed in stop()
            self._files.append(out)
        try:
            self._process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                start_new_session=True,
            )
        except OSError:
            self._close_files()
            raise

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._process.stdout

    def poll(self) -> int | None:
        return self._process.poll()

    def wait(self, timeout: float) -> int:
        return self._process.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the whole group (see `stop_process_group`) and close its files. Idempotent."""
        stop_process_group(self._process, timeout)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._close_files()

    def _close_files(self) -> None:
        for file in self._files:
            file.close()

    def tail(self, lines: int = 15) -> str:
        """The last lines of its log, for an error message."""
        if self.log_path is None:
            return "    (its output was not kept)"
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        kept = text.rstrip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in kept) if kept else "    (the log is empty)"


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the group of `process` (started with `start_new_session`), then SIGKILL it if
    the leader has not exited within `timeout`. Idempotent. The group is signalled even after
    the leader exited, and SIGKILLed once more at the end: a worker may linger."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    _signal_group(process, signal.SIGKILL)  # anything left in the group (orphaned workers)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # The group id is the child's pid (start_new_session); once every member is gone the
    # group no longer exists and killpg says so.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


# -- ports and readiness ----------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether this process could listen on loopback `port` now."""
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), 0.2):
            return True
    except OSError:
        return False


def answers_http(url: str) -> bool:
    """True once an HTTP server answers `url` (any status: a webhook's GET is a 405)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: Pollable | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once `ready()`; raise ProcessExited if `process` exits first, TimeoutError after
    `timeout` seconds. `sleep` may be one that notices a signal (the demo's)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and (code := process.poll()) is not None:
            raise ProcessExited(f"process exited with {code} before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {timeout:g} s")
        sleep(POLL_EVERY)


def wait_for_port(
    port: int,
    timeout: float = 20.0,
    proc: Pollable | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until something listens on loopback `port` (see `wait_until`)."""
    wait_until(
        lambda: port_accepts(port),
        what=f"listening on port {port}",
        timeout=timeout,
        process=proc,
        sleep=sleep,
    )
