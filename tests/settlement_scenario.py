"""A store worth settling: three weeks of a site's load and a few curtailments in it.

One ``default`` site in New York (``TZ``; set ``GRIDHOOK_TIMEZONE`` to it), three feeds:

- ``main``: 21 days of DPS samples as the sampling job stores them (hourly rollups of
  1-minute samples), 10 MW on weekdays (8 MW at weekends) with a small daily shape; three
  curtailments to 7 MW, 14:00-16:00 local on Tue 12, Wed 13 and Thu 14 May 2026.
- ``aux``: the same shape at 4 MW from samples *and* from the revenue meter (hourly
  intervals, 2 % above the samples: the two sources differ); one curtailment to 3 MW,
  14:00-15:00 on Wed 13 May.
- ``young``: samples for the last two days only; one curtailment on Thu 14 May, which
  has too few days before it for any day-matching baseline (``insufficient_history``).

Each curtailment is the four webhooks the simulator sends (tests/bench/settlement_store's
``episode_events``). Rollups rather than raw samples keep the store small enough for the
Firestore emulator (what the loader reads for complete hours either way).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gridhook.intervals.rollups import rollup_record
from gridhook.settlement import rollup_hours
from gridhook.store import EventStore, MeterRecord, open_store
from tests.bench.settlement import BenchEpisode
from tests.bench.settlement_store import episode_events

__all__ = [
    "CURTAILMENTS",
    "HISTORY_SINCE",
    "NOW",
    "RANGE_SINCE",
    "RANGE_UNTIL",
    "TIMEZONE",
    "TZ",
    "Curtailment",
    "seed_settlement",
    "settlement_store_url",
]

TIMEZONE = "America/New_York"
TZ = ZoneInfo(TIMEZONE)
NOW = datetime(2026, 5, 15, 21, 30, tzinfo=UTC)  # Friday 17:30 EDT
HISTORY_SINCE = datetime(2026, 4, 24, 21, tzinfo=UTC)  # 21 days before, on the hour
YOUNG_SINCE = datetime(2026, 5, 13, 21, tzinfo=UTC)
#: A range holding every curtailment: Monday 11 May to Friday 15 May, local.
RANGE_SINCE = datetime(2026, 5, 11, 4, tzinfo=UTC)
RANGE_UNTIL = datetime(2026, 5, 15, 4, tzinfo=UTC)
KEEP = timedelta(days=3650)
BASE_W = {"main": 10e6, "aux": 4e6, "young": 2e6}
METER_FACTOR = 1.02


@dataclass(frozen=True)
class Curtailment:
    feed: str
    day: int  # of May 2026
    hour: int  # local start
    hours: int
    target_w: float

    @property
    def start(self) -> datetime:
        return datetime(2026, 5, self.day, self.hour, tzinfo=TZ).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)

    @property
    def correlation_id(self) -> str:
        return f"{self.feed}-{self.day}-{self.hour}"


CURTAILMENTS = (
    Curtailment("main", 12, 14, 2, 7e6),
    Curtailment("main", 13, 14, 2, 7e6),
    Curtailment("main", 14, 14, 2, 7e6),
    Curtailment("aux", 13, 14, 1, 3e6),
    Curtailment("young", 14, 14, 1, 1.5e6),
)


def _load(feed: str, times: np.ndarray) -> np.ndarray:
    """The feed's load at these POSIX times: the daily shape, lower at weekends, held at
    the target while curtailed."""
    base = BASE_W[feed]
    local = [datetime.fromtimestamp(t, UTC).astimezone(TZ) for t in times[::60]]
    hours = np.repeat([d.hour for d in local], 60)[: times.size]
    weekday = np.repeat([d.weekday() < 5 for d in local], 60)[: times.size]
    load = base * (1.0 + 0.05 * np.sin((hours - 8) / 24 * 2 * math.pi))
    load = load * np.where(weekday, 1.0, 0.8)
    for c in CURTAILMENTS:
        if c.feed == feed:
            held = (times >= c.start.timestamp()) & (times < c.end.timestamp())
            load[held] = np.minimum(load[held], c.target_w)
    return load


def _samples(feed: str, since: datetime) -> tuple[np.ndarray, np.ndarray]:
    minutes = int((NOW - since).total_seconds() // 60)
    times = since.timestamp() + 60.0 * np.arange(minutes) + 7.0
    return times, _load(feed, times)


def seed_settlement(store: EventStore) -> None:
    """The scenario's rollups, meter intervals and webhooks, in ``store``."""
    complete = NOW.replace(minute=0)  # every hour before the open one is rolled up
    for feed in BASE_W:
        since = YOUNG_SINCE if feed == "young" else HISTORY_SINCE
        hours = rollup_hours(
            _samples(feed, since), site="default", feed=feed, since=since, until=complete
        )
        store.add_rollups([rollup_record(r, KEEP) for r in hours])
    _, watts = _samples("aux", HISTORY_SINCE)
    meter = []
    for k in range(int((complete - HISTORY_SINCE).total_seconds() // 3600)):
        start = HISTORY_SINCE + timedelta(hours=k)
        mean = float(np.mean(watts[k * 60 : (k + 1) * 60])) * METER_FACTOR
        meter.append(
            MeterRecord("default", "aux", start, start + timedelta(hours=1), mean, 1, NOW, "m.csv")
        )
    store.add_meter_records(meter)
    for c in CURTAILMENTS:
        episode = BenchEpisode(
            c.correlation_id,
            c.feed,
            c.start,
            c.end,
            c.target_w,
            c.start - timedelta(minutes=3),
        )
        for event in episode_events(episode):
            store.add_event(event)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def settlement_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The scenario seeded once per test module in a store of each backend (the tests only
    read it). For Firestore, FIRESTORE_EMULATOR_HOST is set for the module: this process
    and the commands it starts read it."""
    with pytest.MonkeyPatch.context() as env:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('settlement') / 'events.db'}"
        else:
            emulator = request.getfixturevalue("firestore_emulator")
            env.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
            url = f"firestore://settle-{uuid.uuid4().hex[:12]}/gridhook"
        store = open_store(url, timeout_seconds=60.0)
        try:
            seed_settlement(store)
        finally:
            store.close()
        yield url
