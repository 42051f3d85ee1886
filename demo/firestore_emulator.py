"""The Firestore emulator of `tools/firestore-emulator` (the npm `@firestore-emulator/server`),
as a child process on a loopback port: what the demo starts when `FIRESTORE_EMULATOR_HOST`
names a port where none runs, and what the tests start for their Firestore stores.

It keeps everything in memory: stopped, its data is gone; restarted on the same port, it is
empty. It listens on 127.0.0.1 only (`start.js`): it has no authentication.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from demo.processes import LOOPBACK, ChildProcess, ProcessExited, free_port, wait_for_port

__all__ = ["EMULATOR_DIR", "EmulatorError", "FirestoreEmulator"]

EMULATOR_DIR = Path(__file__).resolve().parents[1] / "tools" / "firestore-emulator"
EMULATOR_PACKAGE = EMULATOR_DIR / "node_modules" / "@firestore-emulator" / "server"
START_TIMEOUT = 20.0  # seconds for node to load the emulator and listen


class EmulatorError(Exception):
    """The emulator could not be installed or started; the message says why."""


class FirestoreEmulator:
    """One emulator on a fixed loopback port; can be stopped and started again on it."""

    def __init__(
        self, port: int | None = None, *, log_path: Path | None = None, cwd: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.host = f"{LOOPBACK}:{self.port}"  # what FIRESTORE_EMULATOR_HOST says
        self.log_path = log_path
        self.cwd = cwd
        self._child: ChildProcess | None = None

    def start(
        self, timeout: float = START_TIMEOUT, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Start it and return once it listens (installing its npm packages first if they
        are missing); raises EmulatorError naming what failed."""
        node = shutil.which("node")
        if node is None:
            raise EmulatorError(
                "the Firestore emulator needs Node.js (`node` is not on PATH); "
                f"it runs {EMULATOR_DIR / 'start.js'}"
            )
        _install_packages()
        self._child = ChildProcess(
            "firestore-emulator",
            [node, str(EMULATOR_DIR / "start.js"), str(self.port)],
            env=os.environ,
            cwd=self.cwd,
            log_path=self.log_path,
        )
        try:
            wait_for_port(self.port, timeout, self._child, sleep=sleep)
        except (ProcessExited, TimeoutError) as exc:
            tail = self._child.tail()
            self.stop()
            raise EmulatorError(
                f"the Firestore emulator did not start on {self.host} ({exc}):\n{tail}"
            ) from None
        except BaseException:  # a Ctrl-C while waiting: leave nothing behind
            self.stop()
            raise

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None

    @property
    def pid(self) -> int | None:
        """Its process id while started (the bench reads its CPU time from /proc)."""
        return None if self._child is None else self._child.pid

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.poll() is None


def _install_packages() -> None:
    """`npm ci` once, as `make emulator` does, when the emulator's package is missing (an
    empty or half-removed node_modules included)."""
    if (EMULATOR_PACKAGE / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise EmulatorError(
            f"the Firestore emulator's packages are not installed ({EMULATOR_DIR}/node_modules) "
            "and npm is not on PATH to install them: install Node.js, then `make emulator`"
        )
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=EMULATOR_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise EmulatorError(f"npm ci in {EMULATOR_DIR} failed:\n{done.stderr.strip()}")
