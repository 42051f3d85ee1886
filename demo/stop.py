"""Ctrl-C (and SIGTERM, SIGHUP) for the demo: recorded by a handler, acted on between steps."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from types import FrameType

__all__ = ["TICK", "Interrupted", "StopFlag"]

TICK = 0.05  # real seconds between checks of the stop flag
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopFlag:
    """Set by SIGINT / SIGTERM / SIGHUP. The handler only records the signal; the demo checks
    the flag between steps, so it never stops half-way through starting or stopping a child."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        previous = {signum: signal.signal(signum, self._record) for signum in _SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    def sleep(self, seconds: float) -> None:
        """Sleep, waking every TICK to notice a signal."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.check()
            time.sleep(min(TICK, remaining))
        self.check()
