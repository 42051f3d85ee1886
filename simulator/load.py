"""The natural load of a feed: what the datacenter would draw with no curtailment.

A seeded model, a pure function of (seed, site, feed, instant) — never of when or how often
it is asked — so the live simulator, the history files (`simulator.history`) and a second
run with the same seed all see exactly the same load:

    load(t) = default_constraint x clip(level(t), 0, 1)
    level(t) = (base + daily_amplitude x daily(local hour)) x (weekend if Sat/Sun)
               x (1 + day_to_day x z(local day)) + noise x z(t, interpolated over 5 minutes)

`daily` is a cosine that is 1 at `peak_hour` and 0 twelve hours away, in the site's local
time (so a DST day's shape follows the wall clock, as a workforce does); `z` are standard
normal draws (clipped to ±3) from a hash of the seed, site, feed and day or 5-minute slot.
The load never exceeds the default constraint: that is the cap DPS holds it under.
Holidays load like the weekday they fall on (the model knows weekends only).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from zoneinfo import ZoneInfo

__all__ = ["LoadModel", "LoadShape", "mean_over"]

NOISE_SLOT_SECONDS = 300  # noise is drawn per 5-minute slot and interpolated between them
_STANDARD_NORMAL = NormalDist()
_Z_LIMIT = 3.0


@dataclass(frozen=True)
class LoadShape:
    """A feed's load shape, in fractions of its default constraint (see the module doc)."""

    base: float = 0.70  # the weekday level at the daily trough
    daily_amplitude: float = 0.20  # added at the daily peak
    peak_hour: float = 15.0  # local hour of the peak (the trough is twelve hours away)
    weekend: float = 0.85  # Saturday and Sunday levels are multiplied by this
    day_to_day: float = 0.03  # a day's level varies by this (one standard deviation)
    noise: float = 0.015  # 5-minute noise, one standard deviation

    def __post_init__(self) -> None:
        for name in ("base", "daily_amplitude", "weekend", "day_to_day", "noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"load {name} must be a finite number >= 0, not {value!r}")
        if not 0 <= self.peak_hour < 24:
            raise ValueError(f"load peak_hour must be in [0, 24), not {self.peak_hour!r}")

    @classmethod
    def parse(cls, document: Mapping[str, object]) -> LoadShape:
        """From a feeds file's `"load": {...}` object; ValueError naming an unknown key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"unknown load key(s) {', '.join(unknown)}; known: {sorted(known)}")
        values: dict[str, float] = {}
        for key, value in document.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"load {key} must be a number, not {value!r}")
            values[key] = float(value)
        return cls(**values)


class LoadModel:
    """The natural load of every feed of one site. Thread-safe (it holds no mutable state
    but a cache of pure values)."""

    def __init__(
        self,
        seed: int,
        site: str,
        timezone: ZoneInfo,
        feeds: Iterable[tuple[str, float, LoadShape]],  # (tag, default watts, shape)
    ) -> None:
        self.seed = seed
        self.site = site
        self.timezone = timezone
        self._feeds = {tag: (default_watts, shape) for tag, default_watts, shape in feeds}

    @property
    def feed_tags(self) -> list[str]:
        return list(self._feeds)

    def shape(self, feed_tag: str) -> LoadShape:
        return self._feeds[feed_tag][1]

    def watts(self, feed_tag: str, moment: datetime) -> float:
        """The feed's natural load at `moment` (an aware datetime)."""
        default_watts, shape = self._feeds[feed_tag]
        local = moment.astimezone(self.timezone)
        hour = local.hour + local.minute / 60 + local.second / 3600
        daily = 0.5 * (1 + math.cos(2 * math.pi * (hour - shape.peak_hour) / 24))
        level = shape.base + shape.daily_amplitude * daily
        day = local.date()
        if day.weekday() >= 5:
            level *= shape.weekend
        level *= 1 + shape.day_to_day * self._day_z(feed_tag, day)
        level += shape.noise * self._noise_z(feed_tag, moment)
        return default_watts * min(1.0, max(0.0, level))

    def mean_watts(
        self, feed_tag: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)
    ) -> float:
        """The mean over [start, end), by the midpoint rule at `step` (what a meter measures)."""
        return mean_over(lambda moment: self.watts(feed_tag, moment), start, end, step)

    def _day_z(self, feed_tag: str, day: date) -> float:
        return _z(self.seed, self.site, feed_tag, f"day:{day.isoformat()}")

    def _noise_z(self, feed_tag: str, moment: datetime) -> float:
        seconds = (moment.astimezone(UTC) - _EPOCH).total_seconds()
        slot, into = divmod(seconds, NOISE_SLOT_SECONDS)
        before = _z(self.seed, self.site, feed_tag, f"slot:{int(slot)}")
        after = _z(self.seed, self.site, feed_tag, f"slot:{int(slot) + 1}")
        weight = into / NOISE_SLOT_SECONDS
        return before + (after - before) * weight


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mean_over(
    watts: Callable[[datetime], float],
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(minutes=1),
) -> float:
    """The mean of `watts` over [start, end), by the midpoint rule at `step` (what a meter
    measures)."""
    count = max(1, math.ceil((end - start) / step))
    width = (end - start) / count
    return sum(watts(start + width * (i + 0.5)) for i in range(count)) / count


@functools.lru_cache(maxsize=65536)
def _z(seed: int, site: str, feed_tag: str, key: str) -> float:
    """A standard normal draw (clipped to ±3) that depends only on its arguments."""
    digest = hashlib.blake2b(f"{seed}\0{site}\0{feed_tag}\0{key}".encode(), digest_size=8).digest()
    # 53 bits into (0, 1): never 0 or 1, where the inverse CDF is infinite.
    uniform = ((int.from_bytes(digest, "big") >> 11) + 0.5) / (1 << 53)
    return max(-_Z_LIMIT, min(_Z_LIMIT, _STANDARD_NORMAL.inv_cdf(uniform)))
