"""Day rollups (gridhook.intervals.rollups.pack_days / read_rollups), on every backend.

A day rollup is only a faster way to read the same hourly rollups, so the one property
that matters is checked directly: for any range, of one feed or every feed,
``read_rollups`` returns exactly what ``store.rollups`` lists — over days packed, days
not packed (an hour missing, too recent), days half-packed (a writer that stopped
between two feeds' records) and a feed that appeared mid-day. The cost is counted on the
wire: on Firestore a month of one feed is 30 day documents and the edges' hours, not 720.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gridhook.intervals.rollups import RECENT_HOURS, pack_days, read_rollups
from gridhook.store import (
    DayRollupQuery,
    DayRollupRecord,
    EventStore,
    RollupQuery,
    RollupRecord,
    open_store,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LATER = datetime.now(UTC) + timedelta(days=60)
#: Long after the scenario: every day of it is settled.
NOW = T0 + 40 * DAY


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_store(store_url, timeout_seconds=60.0)
    yield opened
    opened.close()


def rollup(feed: str, hour: int, *, site: str = "default") -> RollupRecord:
    watts = 1e6 + 1000 * hour + (7 if feed == "aux" else 0)
    return RollupRecord(
        site=site,
        feed=feed,
        hour_start=T0 + hour * HOUR,
        counts=(5,) * 11 + (0,),
        means=(watts,) * 11 + (None,),
        minima=(watts - 1,) * 11 + (None,),
        maxima=(watts + 1,) * 11 + (None,),
        covered_s=(300.0,) * 11 + (0.0,),
        expires_at=LATER + hour * HOUR,
    )


def scenario(days: int = 8) -> list[RollupRecord]:
    """Two feeds' rollups over ``days`` days, with what a real store holds:

    - day 2 lacks 10:00 entirely (the sampling job was down and nobody rolled it up);
    - ``aux`` appears on day 4 at 15:00 (a feed added to DPS mid-day);
    - day 6 has only ``main`` (``aux`` was out of DPS's view that day).
    """
    records = []
    for hour in range(24 * days):
        if hour == 2 * 24 + 10:
            continue
        records.append(rollup("main", hour))
        if hour >= 4 * 24 + 15 and hour // 24 != 6:
            records.append(rollup("aux", hour))
    return records


def test_pack_days_packs_whole_rolled_up_settled_days_once(store: EventStore) -> None:
    assert store.add_rollups(scenario()) == 24 * 8 - 1 + (24 * 4 - 15 - 24)
    # Seven days are whole and rolled up (day 2 lacks an hour), one record per feed seen
    # that day: days 0, 1, 3 and 6 one, days 4, 5 and 7 two. Day 7 only once it is settled.
    just_after = T0 + 8 * DAY + HOUR  # day 7 ended an hour ago: a sampling run may add to it
    assert pack_days(store, site="default", since=T0, until=just_after, now=just_after) == 8
    settled = T0 + 8 * DAY + (RECENT_HOURS + 1) * HOUR + 2 * timedelta(minutes=2)
    assert pack_days(store, site="default", since=T0, until=settled, now=settled) == 2
    assert pack_days(store, site="default", since=T0, until=NOW, now=NOW) == 0  # idempotent
    days = store.day_rollups(DayRollupQuery(since=T0, until=NOW))
    assert sorted({d.day_start for d in days}) == [T0 + k * DAY for k in (0, 1, 3, 4, 5, 6, 7)]
    day4 = [d for d in days if d.day_start == T0 + 4 * DAY]
    assert [(d.feed, len(d.rollups), d.feeds) for d in day4] == [
        ("aux", 9, ("aux", "main")),
        ("main", 24, ("aux", "main")),
    ]
    # Another site's days are its own: nothing of default's is packed for phx1.
    assert pack_days(store, site="phx1", since=T0, until=NOW, now=NOW) == 0
    assert store.day_rollups(DayRollupQuery(since=T0, until=NOW, site="phx1")) == []


def _ranges(count: int) -> Iterator[tuple[datetime, datetime, str | None]]:
    rng = random.Random(16)
    edges = [T0 - DAY, T0, T0 + 3 * DAY, T0 + 9 * DAY]  # before, at and past the data
    for k in range(count):
        if k < len(edges):
            since = edges[k]
        else:  # anywhere, on the minute: most bounds fall inside a day and off the hour
            since = T0 + timedelta(minutes=rng.randrange(-30, 9 * 24 * 60))
        until = since + timedelta(minutes=rng.randrange(0, 6 * 24 * 60))
        yield since, until, rng.choice([None, "main", "aux", "nope"])


def test_read_rollups_is_exactly_the_hourly_listing(store: EventStore, store_url: str) -> None:
    assert store.add_rollups(scenario())
    pack_days(store, site="default", since=T0, until=NOW, now=NOW)
    # A writer that stopped between two feeds' records of day 8 (DynamoDB writes them one
    # by one): only main's is there, and it names aux too.
    day8 = [rollup(feed, 8 * 24 + h) for h in range(24) for feed in ("main", "aux")]
    store.add_rollups(day8)
    store.add_day_rollups([DayRollupRecord.pack(day8[::2], ("main", "aux"))])
    count = 12 if store_url.startswith("dynamodb") else 40  # moto is slow; the rest fast
    whole = [(T0 - DAY, T0 + 10 * DAY, f) for f in (None, "main", "aux")]
    for since, until, feed in [*whole, *_ranges(count)]:
        query = RollupQuery(since=since, until=until, feed=feed)
        assert read_rollups(store, query) == store.rollups(query), (since, until, feed)


@pytest.mark.firestore
def test_a_month_of_one_feed_reads_thirty_documents_not_seven_hundred(
    firestore_env: dict[str, str],
) -> None:
    from tests.firestore_counts import counted_documents_store

    store, counter = counted_documents_store(f"day-{uuid.uuid4().hex[:10]}")
    try:
        store.add_rollups([rollup("main", h) for h in range(24 * 33)])
        assert pack_days(store, site="default", since=T0, until=NOW, now=NOW) == 33
        since = T0 + 18 * HOUR  # off midnight: the first and last days are edges
        query = RollupQuery(since=since, until=since + 30 * DAY, feed="main")
        counter.clear()
        got = read_rollups(store, query)
        assert len(got) == 30 * 24
        # One day listing (29 whole days), and the edges: 6 hours, then 18.
        assert counter.calls["RunQuery"] == 3
        assert counter.documents == 29 + 6 + 18
        counter.clear()
        assert store.rollups(query) == got
        assert counter.documents == 720
    finally:
        store.close()
