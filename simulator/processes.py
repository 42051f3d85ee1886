"""Child processes the demo starts: each in its own process group (so a Ctrl-C reaches only
the demo, which then stops them in order), its output in a log file, stopped with SIGTERM and,
if it lingers, SIGKILL to the whole group (gunicorn's workers included)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

__all__ = ["ChildProcess"]


class ChildProcess:
    """One started child; stderr goes to `log_path`, and so does stdout unless `stdout` is
    "pipe" (readable, e.g. for a "listening" line) or a file of its own."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        stdout: Literal["log", "pipe"] | Path = "log",
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._files: list[IO[bytes]] = [open(log_path, "wb")]  # noqa: SIM115 - closed in stop()
        out: IO[bytes] | int = self._files[0]
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
                stderr=self._files[0],
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
        """SIGTERM the group, then SIGKILL it if the child has not exited within `timeout`.
        Idempotent. The group is signalled even after the leader exited: a worker may linger."""
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout)
        self._signal_group(signal.SIGKILL)  # anything left in the group (orphaned workers)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._close_files()

    def _close_files(self) -> None:
        for file in self._files:
            file.close()

    def _signal_group(self, signum: int) -> None:
        # The group id is the child's pid (start_new_session); once every member is gone the
        # group no longer exists and killpg says so.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def tail(self, lines: int = 15) -> str:
        """The last lines of its log, for an error message."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        kept = text.rstrip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in kept) if kept else "    (the log is empty)"
