"""A large, realistic event history for the scale benchmarks, written fast and cached.

Events are real: ``gridhook.events.normalise`` of payloads in the simulator's shape (the
seed's), four per curtailment with a correlation id, on two feeds. The history has two
parts, so that "cost follows the range, not the history" is shown honestly:

- the RECENT_DAYS before ``DATA_NOW``: 8 curtailments per feed per day, ramps of minutes,
  targets held for up to two hours, about one in eight targets not met; and a GetStatus
  sample per feed every 5 minutes (as the scheduled reconcile keeps them);
- before that, the rest of the events: one curtailment per feed every 30 minutes (denser,
  older), back as far as the size asks (7 years for 1,000,000 events).

Every measurement takes ``DATA_NOW`` as now, so the recent period is always the last
RECENT_DAYS whatever the size. SQLite stores are cached under var/bench/, keyed by the
size and GENERATOR_VERSION (bump it when the shape changes).
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gridhook.events import StoredEvent, normalise
from gridhook.store import EventStore, LoadSample
from tests.harness import REPO

__all__ = [
    "DATA_NOW",
    "FEEDS",
    "GENERATOR_VERSION",
    "RECENT_DAYS",
    "RECENT_PER_FEED_PER_DAY",
    "Curtailment",
    "cached_sqlite_store",
    "history",
    "load_store",
    "recent_event_count",
    "samples",
]

GENERATOR_VERSION = 1
CACHE = REPO / "var" / "bench"

#: The generated history ends here; every measurement takes it as now.
DATA_NOW = datetime(2026, 11, 1, tzinfo=UTC)
RECENT_DAYS = 120
RECENT_PER_FEED_PER_DAY = 8
OLDER_EVERY = timedelta(minutes=30)
SAMPLE_EVERY = timedelta(minutes=5)
#: Feed tag → its default load (MW): what it draws when not curtailed.
FEEDS = {"main_power_feed": 10.0, "backup_power_feed": 8.0}
_FEED_OFFSET = {"main_power_feed": timedelta(0), "backup_power_feed": timedelta(minutes=50)}
_RECENT_START = DATA_NOW - timedelta(days=RECENT_DAYS)
_SAMPLE_RETENTION = timedelta(days=3650)  # samples outlive any run of the bench


@dataclass(frozen=True, slots=True)
class Curtailment:
    """One target on one feed, as DPS carries it out."""

    feed: str
    correlation_id: str
    start: datetime  # DPS's start_time of the target
    down: timedelta
    hold: timedelta
    up: timedelta
    prev_mw: float
    target_mw: float
    reached_mw: float  # above the target: DPS says not compliant

    @property
    def down_end(self) -> datetime:
        return self.start + self.down

    @property
    def up_start(self) -> datetime:
        return self.down_end + self.hold

    @property
    def end(self) -> datetime:
        return self.up_start + self.up

    def load_at(self, at: datetime) -> tuple[float, float] | None:
        """(calculated MW, target MW) at ``at``, None outside the curtailment."""
        if not self.start <= at < self.end:
            return None
        if at < self.down_end:
            done = (at - self.start) / self.down
            return self.prev_mw - (self.prev_mw - self.reached_mw) * done, self.target_mw
        if at < self.up_start:
            return self.reached_mw, self.target_mw
        done = (at - self.up_start) / self.up
        return self.reached_mw + (self.prev_mw - self.reached_mw) * done, self.prev_mw

    def payloads(self, rng: random.Random) -> Iterator[tuple[dict[str, Any], datetime]]:
        """Its four webhooks as the simulator sends them, each with its receipt time."""
        interval_end = _rfc3339(self.up_start)
        down = {"target_load": _mw(self.target_mw), "prev_target_load": _mw(self.prev_mw)}
        up = {"target_load": _mw(self.prev_mw), "prev_target_load": _mw(self.target_mw)}
        met = self.reached_mw <= self.target_mw + 1e-9
        steps = (
            ("start_ramp_down", self.start, _rfc3339(self.start), interval_end, down, self.prev_mw),
            ("end_ramp_down", self.down_end, _rfc3339(self.start), interval_end, down, None),
            ("start_ramp_up", self.up_start, interval_end, None, up, self.reached_mw),
            ("end_ramp_up", self.end, interval_end, None, up, self.prev_mw),
        )
        for event, at, start_time, end_time, targets, load in steps:
            payload = {
                "event": event,
                "feed_tag": self.feed,
                "start_time": start_time,
                "end_time": end_time,
                "strategy": "best_effort",
                **targets,
                "calculated_load": _mw(self.reached_mw if load is None else load),
                "compliant": met if event == "end_ramp_down" else event != "start_ramp_down",
                "correlation_id": self.correlation_id,
            }
            # Webhooks arrive a fraction of a second after DPS sends them.
            yield payload, at + timedelta(milliseconds=rng.randint(80, 1500))


def _mw(value: float) -> dict[str, Any]:
    return {"value": round(value, 6), "unit": "mw"}


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(seconds=rng.randint(low * 60, high * 60))


def _curtailment(
    rng: random.Random, feed: str, start: datetime, down: tuple[int, int], hold: tuple[int, int]
) -> Curtailment:
    prev = FEEDS[feed]
    target = round(prev * rng.uniform(0.5, 0.8), 1)
    missed = rng.random() < 0.125  # DPS cannot always shed enough
    return Curtailment(
        feed=feed,
        correlation_id=f"dr-{feed.split('_')[0]}-{start:%Y%m%dT%H%M%S}",
        start=start,
        down=_minutes(rng, *down),
        hold=_minutes(rng, *hold),
        up=_minutes(rng, *down),
        prev_mw=prev,
        target_mw=target,
        reached_mw=round(target + rng.uniform(0.2, 0.8), 3) if missed else target,
    )


def recent_curtailments() -> list[Curtailment]:
    """The recent period: 8 per feed per day, in 3-hour slots (ends before the next)."""
    rng = random.Random(f"recent-{GENERATOR_VERSION}")
    slot = timedelta(days=1) / RECENT_PER_FEED_PER_DAY
    found = []
    for day in range(RECENT_DAYS):
        for index in range(RECENT_PER_FEED_PER_DAY):
            for feed in FEEDS:
                begins = _RECENT_START + timedelta(days=day) + index * slot + _FEED_OFFSET[feed]
                start = begins + _minutes(rng, 0, 20)
                found.append(_curtailment(rng, feed, start, (3, 12), (25, 100)))
    return found


def recent_event_count() -> int:
    return sum(1 for _ in _events(recent_curtailments(), "recent"))


def older_curtailments(count: int) -> list[Curtailment]:
    """``count`` curtailments before the recent period, one per feed every 30 minutes."""
    rng = random.Random(f"older-{GENERATOR_VERSION}")
    per_feed = -(-count // len(FEEDS))
    first = _RECENT_START - per_feed * OLDER_EVERY
    found = []
    for index in range(per_feed):
        for feed in FEEDS:
            if len(found) < count:
                start = first + index * OLDER_EVERY + _minutes(rng, 0, 3)
                found.append(_curtailment(rng, feed, start, (2, 4), (8, 18)))
    return found


def _events(curtailments: list[Curtailment], seed: str) -> Iterator[StoredEvent]:
    rng = random.Random(f"{seed}-receipts-{GENERATOR_VERSION}")
    for c in curtailments:
        for payload, received_at in c.payloads(rng):
            if received_at < DATA_NOW:  # the last curtailment may still be going on
                yield normalise(payload, received_at)


def history(total_events: int) -> Iterator[StoredEvent]:
    """The events of a history of ``total_events``, oldest first."""
    recent = list(_events(recent_curtailments(), "recent"))
    older_events = total_events - len(recent)
    if older_events < 0:
        raise ValueError(f"{total_events} events: the recent period alone has {len(recent)}")
    older = _events(older_curtailments(-(-older_events // 4)), "older")
    # The oldest curtailment loses its first events when the count is not a multiple of 4.
    yield from itertools.islice(older, (4 - older_events % 4) % 4, None)
    yield from recent


def samples(since: datetime = _RECENT_START) -> Iterator[LoadSample]:
    """One GetStatus sample per feed every 5 minutes from ``since`` to DATA_NOW."""
    by_feed: dict[str, list[Curtailment]] = {feed: [] for feed in FEEDS}
    for c in recent_curtailments():
        by_feed[c.feed].append(c)
    for feed, listed in by_feed.items():
        index = 0
        at = since + timedelta(minutes=2)
        while at < DATA_NOW:
            while index < len(listed) and listed[index].end <= at:
                index += 1
            reading = listed[index].load_at(at) if index < len(listed) else None
            load, target = reading or (FEEDS[feed], FEEDS[feed])
            yield LoadSample(
                feed_tag=feed,
                sampled_at=at,
                calculated_w=round(load, 6) * 1e6,
                target_w=target * 1e6,
                correlation_id=listed[index].correlation_id if reading else None,
                expires_at=at + _SAMPLE_RETENTION,
            )
            at += SAMPLE_EVERY


def write_sqlite(path: Path, total_events: int, progress: Callable[[str], None]) -> None:
    """A new SQLite store at ``path`` holding the history and the recent samples."""
    from gridhook.store.sqlite import SQLiteEventStore

    store = SQLiteEventStore(path)
    try:
        # Loading speed only: the file is renamed into place once whole, so nothing is
        # lost to a crash that matters (the next run starts again).
        conn = store._connection()
        conn.execute("PRAGMA synchronous=OFF")
        # Event ids are hashes: rows land all over the table's B-tree, so keep it in memory.
        conn.execute("PRAGMA cache_size=-524288")
        events = history(total_events)
        written = 0
        while True:
            batch = list(itertools.islice(events, 100_000))
            if not batch:
                break
            written += store.add_events(batch)
            progress(f"{written:,} events")
        if written != total_events:
            raise RuntimeError(f"wrote {written} events, expected {total_events}")
        for sample in samples():
            store.add_sample(sample)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


def cached_sqlite_store(total_events: int, progress: Callable[[str], None] = print) -> Path:
    """The path of a SQLite store with ``total_events``, generated on the first call only."""
    path = CACHE / f"scale-{total_events}-v{GENERATOR_VERSION}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    for stale in CACHE.glob("scale-*-v*.db"):  # another generator's: never read again
        if not stale.name.endswith(f"-v{GENERATOR_VERSION}.db"):
            stale.unlink()
    partial = path.with_suffix(f".partial-{os.getpid()}")
    for leftover in CACHE.glob(f"{partial.name}*"):
        leftover.unlink()
    started = time.perf_counter()
    try:
        write_sqlite(partial, total_events, lambda text: progress(f"    generating: {text}"))
        partial.rename(path)
    finally:
        for leftover in CACHE.glob(f"{partial.name}*"):
            leftover.unlink()
    progress(
        f"    generated {total_events:,} events in {time.perf_counter() - started:.0f} s "
        f"({path.stat().st_size / 2**20:.0f} MiB, cached as {path.relative_to(REPO)})"
    )
    return path


def load_store(store: EventStore, total_events: int, sample_days: int) -> None:
    """The same history written event by event through the port (for the Firestore
    emulator, which has no bulk path): several writers, each insert one round trip."""
    from concurrent.futures import ThreadPoolExecutor

    events = history(total_events)
    since = DATA_NOW - timedelta(days=sample_days)
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(store.add_event, events):
            pass
        for _ in pool.map(store.add_sample, samples(since)):
            pass
