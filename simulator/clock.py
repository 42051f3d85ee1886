"""Simulated wall clock: real time scaled by `speed`, starting at the real time of creation,
or following a `GRIDHOOK_DEV_CLOCK`-style string (`SPEED@SIM_TIME@REAL_TIME`, gridhook's
`parse_dev_clock`), so the simulator and a receiver given the same string agree."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridhook.clock import DevClock


class SimClock:
    """`speed` 60 means one simulated minute per real second.

    Tests may also jump the clock forward with `advance()`; the ramp model sees such a jump as
    one large time step.
    """

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin_sim = (start or datetime.now(UTC)).astimezone(UTC)
        # Monotonic by default: a wall-clock step must not make simulated time jump.
        self._real_clock = time.monotonic
        self._origin_real = time.monotonic()
        self._offset = timedelta()
        self._lock = threading.Lock()

    @classmethod
    def following(cls, dev_clock: DevClock) -> SimClock:
        """A clock that shows exactly what `dev_clock` (and so a gridhook process given the
        same GRIDHOOK_DEV_CLOCK) shows: same origin, same speed, same wall clock."""
        clock = cls(dev_clock.speed, start=dev_clock.sim_origin)
        clock._real_clock = time.time
        clock._origin_real = dev_clock.real_origin.timestamp()
        return clock

    def now(self) -> datetime:
        elapsed_real = self._real_clock() - self._origin_real
        with self._lock:
            offset = self._offset
        return self._origin_sim + timedelta(seconds=elapsed_real * self.speed) + offset

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta():
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += delta

    def real_seconds(self, simulated: timedelta) -> float:
        """How many real seconds until `simulated` time has passed (at the current speed)."""
        return simulated.total_seconds() / self.speed


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with a 'Z' suffix, like the seed: 2025-10-24T17:00:00Z (ms only if needed)."""
    moment = moment.astimezone(UTC)
    # isoformat, not strftime: strftime("%Y") does not zero-pad years before 1000 on glibc,
    # and a client may schedule from 0001-01-01 (the earliest protobuf Timestamp).
    text = moment.replace(tzinfo=None, microsecond=0).isoformat()
    if moment.microsecond // 1000:
        return f"{text}.{moment.microsecond // 1000:03d}Z"
    return f"{text}Z"
