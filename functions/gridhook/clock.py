"""The one clock gridhook stamps receipts and judges deadlines by.

In production it is the system clock. For local demos against the DPS simulator on a
fast clock, ``GRIDHOOK_DEV_CLOCK`` makes it run like the simulator's: receipt times,
ramp deadlines and "since 7d" then live in the simulated day, so a day compressed into a
minute still reports as a day. It is a development setting: Terraform never sets it, and
a process that uses it says so in its log.

    GRIDHOOK_DEV_CLOCK=SPEED@SIM_TIME@REAL_TIME
    e.g. 1440@2026-11-29T02:00:00Z@2026-11-30T02:00:00Z

reads "at real time REAL_TIME the clock shows SIM_TIME and runs SPEED times as fast".
``gridhook-sim --clock`` takes the same string, so both clocks agree.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gridhook.timestamps import rfc3339

__all__ = ["DevClock", "configure", "now", "parse_dev_clock", "use"]


@dataclass(frozen=True, slots=True)
class DevClock:
    """Shows ``sim_origin`` at real time ``real_origin`` and runs ``speed`` times as fast."""

    speed: float
    sim_origin: datetime
    real_origin: datetime

    def now(self) -> datetime:
        elapsed = time.time() - self.real_origin.timestamp()
        return self.sim_origin + timedelta(seconds=elapsed * self.speed)

    def __str__(self) -> str:
        return f"{self.speed:g}@{rfc3339(self.sim_origin)}@{rfc3339(self.real_origin)}"


def parse_dev_clock(text: str) -> DevClock:
    """Parse ``SPEED@SIM_TIME@REAL_TIME``; ValueError says what is wrong."""
    parts = text.strip().split("@")
    if len(parts) != 3:
        raise ValueError(f"{text!r} is not SPEED@SIM_TIME@REAL_TIME")
    try:
        speed = float(parts[0])
    except ValueError:
        raise ValueError(f"speed {parts[0]!r} is not a number") from None
    if not 0 < speed <= 1_000_000:
        raise ValueError(f"speed {speed:g} must be above 0 and at most 1000000")
    times = []
    for part in parts[1:]:
        try:
            moment = datetime.fromisoformat(part.strip())
        except ValueError:
            raise ValueError(f"{part!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{part!r} needs a UTC offset, e.g. Z")
        times.append(moment.astimezone(UTC))
    return DevClock(speed, times[0], times[1])


_dev_clock: DevClock | None = None


def configure(dev_clock: DevClock | None) -> None:
    """Use ``dev_clock`` from now on (None: the system clock)."""
    global _dev_clock
    _dev_clock = dev_clock


def use(dev_clock: DevClock | None, logger: logging.Logger, follows: str) -> None:
    """Configure the clock for a deployed function, warning when it is a dev clock.

    ``follows`` says what the dev clock would change, e.g. "receipt times". The warning
    is logged once per process, not on every run of a job.
    """
    changed = dev_clock != _dev_clock
    configure(dev_clock)
    if dev_clock is not None and changed:
        logger.warning(
            "GRIDHOOK_DEV_CLOCK=%s: %s follow a development clock, not the system clock; "
            "never set this in production",
            dev_clock,
            follows,
        )


def now() -> datetime:
    """The current time, aware, in UTC."""
    if _dev_clock is None:
        return datetime.now(UTC)
    return _dev_clock.now()
