"""The interval-data part of the store contract (hourly and day rollups, meter intervals): every
backend (SQLite, the Firestore emulator, DynamoDB on moto) must pass it all, and a listing
of a range must cost O(records in the range) on each, read from what the backend itself
reports (SQLite's plans and VM steps, Firestore's documents on the wire, DynamoDB's
ScannedCount)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhook.store import (
    DayRollupQuery,
    DayRollupRecord,
    EventStore,
    MeterQuery,
    MeterRecord,
    RollupQuery,
    RollupRecord,
    current_meter,
    open_store,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    """The shared store fixture's, with a longer timeout: moto takes seconds to answer a
    Query of a few hundred items when the suite keeps the machine busy."""
    opened = open_store(store_url, timeout_seconds=60.0)
    yield opened
    opened.close()


HOUR = timedelta(hours=1)
LATER = datetime.now(UTC) + timedelta(days=30)


def rollup(
    feed: str, hour: int, *, site: str = "default", watts: float = 1e6, expires: datetime = LATER
) -> RollupRecord:
    means: list[float | None] = [watts + k for k in range(12)]
    means[5] = None  # a bucket without samples
    return RollupRecord(
        site=site,
        feed=feed,
        hour_start=T0 + hour * HOUR,
        counts=tuple(0 if m is None else 5 for m in means),
        means=tuple(means),
        minima=tuple(None if m is None else m - 1.5 for m in means),
        maxima=tuple(None if m is None else m + 0.25 for m in means),
        covered_s=tuple(0.0 if m is None else 300.0 for m in means),
        expires_at=expires,
    )


def meter(
    feed: str,
    minute: int,
    watts: float | None,
    *,
    revision: int = 1,
    site: str = "default",
    length: int = 15,
) -> MeterRecord:
    start = T0 + timedelta(minutes=minute)
    return MeterRecord(
        site=site,
        feed=feed,
        interval_start=start,
        interval_end=start + timedelta(minutes=length),
        mean_w=watts,
        revision=revision,
        imported_at=T0 + timedelta(days=revision),
        source=f"meter.csv:{minute // 15 + 2}",
    )


# -- rollups ---------------------------------------------------------------------------------


def test_rollups_insert_if_absent_and_round_trip(store: EventStore) -> None:
    first = rollup("main", 0)
    assert store.add_rollups([first, rollup("main", 1)]) == 2
    # The same feed and hour is the same rollup: the first written is kept.
    again = rollup("main", 0, watts=9e9)
    assert store.add_rollups([again, rollup("main", 2)]) == 1
    got = store.rollups(RollupQuery(since=T0, until=T0 + 3 * HOUR, feed="main"))
    assert got == [first, rollup("main", 1), rollup("main", 2)]
    assert got[0].means[5] is None and got[0].means[0] == 1e6 and got[0].counts[5] == 0
    assert store.add_rollups([]) == 0


def test_rollups_list_a_range_of_one_feed_or_every_feed(store: EventStore) -> None:
    written = [rollup(feed, hour) for hour in range(6) for feed in ("b_feed", "a_feed")]
    assert store.add_rollups(written) == 12

    def listed(since: int, until: int, feed: str | None = None) -> list[tuple[str, int]]:
        query = RollupQuery(since=T0 + since * HOUR, until=T0 + until * HOUR, feed=feed)
        return [(r.feed, (r.hour_start - T0) // HOUR) for r in store.rollups(query)]

    # [since, until) by hour start, ordered by (hour, feed).
    assert listed(2, 4) == [("a_feed", 2), ("b_feed", 2), ("a_feed", 3), ("b_feed", 3)]
    assert listed(2, 4, "b_feed") == [("b_feed", 2), ("b_feed", 3)]
    assert listed(0, 6, "nope") == []
    assert listed(3, 3) == []
    # A bound off the hour: the hours that start inside it.
    query = RollupQuery(since=T0 + 90 * timedelta(minutes=1), until=T0 + 3 * HOUR, feed="a_feed")
    assert [r.hour_start for r in store.rollups(query)] == [T0 + 2 * HOUR]


def test_more_rollups_than_one_write_or_one_page_holds(store: EventStore, store_url: str) -> None:
    # Past Firestore's 500 writes to a batch and a listing's page of 1000; some stored.
    # (moto takes seconds to answer a Query of a thousand items: a smaller run there.)
    hours = range(300 if store_url.startswith("dynamodb") else 1100)
    assert store.add_rollups([rollup("main", h) for h in hours[100:200]]) == 100
    assert store.add_rollups([rollup("main", h) for h in hours]) == len(hours) - 100
    got = store.rollups(RollupQuery(since=T0, until=T0 + 2000 * HOUR, feed="main"))
    assert [(r.hour_start - T0) // HOUR for r in got] == list(hours)


def test_expired_rollups_are_never_listed_and_make_way(store: EventStore) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    old = rollup("main", 0, watts=5.0, expires=past)
    assert store.add_rollups([old, rollup("main", 1)]) == 2
    query = RollupQuery(since=T0, until=T0 + 2 * HOUR)
    assert [r.hour_start for r in store.rollups(query)] == [T0 + HOUR]
    fresh = rollup("main", 0)
    assert store.add_rollups([fresh]) == 1
    assert store.rollups(query) == [fresh, rollup("main", 1)]


def test_rollups_of_one_site_are_never_another_sites(store: EventStore) -> None:
    here, there = rollup("main", 0), rollup("main", 0, site="phx1", watts=7e6)
    assert store.add_rollups([here]) == 1
    assert store.add_rollups([there]) == 1  # same feed and hour, another site: another rollup
    since, until = T0, T0 + HOUR
    assert store.rollups(RollupQuery(since=since, until=until)) == [here]
    assert store.rollups(RollupQuery(since=since, until=until, site="phx1")) == [there]
    assert store.rollups(RollupQuery(since=since, until=until, feed="main", site="phx1")) == [there]
    assert store.rollups(RollupQuery(since=since, until=until, site="ams2")) == []


def test_queries_refuse_what_no_store_could_answer() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RollupQuery(since=datetime(2026, 1, 1), until=T0)  # naive: the point
    with pytest.raises(ValueError, match="until must not be before since"):
        MeterQuery(feed="main", since=T0 + HOUR, until=T0)
    with pytest.raises(ValueError, match="not a site name"):
        RollupQuery(since=T0, until=T0 + HOUR, site="../x")
    with pytest.raises(ValueError, match="12 buckets"):
        replace(rollup("main", 0), counts=(1, 2))
    with pytest.raises(ValueError, match="on the hour"):
        replace(rollup("main", 0), hour_start=T0 + timedelta(minutes=5))
    with pytest.raises(ValueError, match="at most a day"):
        replace(meter("main", 0, 1.0), interval_end=T0 + timedelta(days=2))


# -- day rollups ------------------------------------------------------------------------------

DAY = timedelta(days=1)


def day(
    feed: str,
    index: int,
    *,
    site: str = "default",
    hours: range = range(24),
    feeds: tuple[str, ...] = ("main", "aux"),
    watts: float = 1e6,
) -> DayRollupRecord:
    """Day ``index`` (from T0) of one feed: its hourly rollups packed."""
    return DayRollupRecord.pack(
        [rollup(feed, 24 * index + h, site=site, watts=watts + h) for h in hours], feeds
    )


def test_day_rollups_insert_if_absent_and_round_trip(store: EventStore) -> None:
    first = day("main", 0, hours=range(3, 24))  # a feed that appeared at 03:00
    assert store.add_day_rollups([first, day("aux", 0), day("main", 1)]) == 3
    # The same feed and day is the same record: the first written is kept.
    assert store.add_day_rollups([day("main", 0, watts=9e9), day("main", 2)]) == 1
    got = store.day_rollups(DayRollupQuery(since=T0, until=T0 + 3 * DAY, feed="main"))
    assert got == [first, day("main", 1), day("main", 2)]
    # Every hourly rollup comes back as it was packed, its empty bucket and expiry too.
    assert got[0].rollups == tuple(rollup("main", h, watts=1e6 + h) for h in range(3, 24))
    assert got[0].rollups[0].means[5] is None and got[0].feeds == ("aux", "main")
    # Expiries keep their microseconds exactly.
    odd = (LATER + DAY).replace(microsecond=999_999)
    exact = DayRollupRecord.pack([rollup("main", 24 * 9 + 1, expires=odd)], ["main"])
    assert store.add_day_rollups([exact]) == 1
    (back,) = store.day_rollups(DayRollupQuery(since=T0 + 9 * DAY, until=T0 + 10 * DAY))
    assert back == exact and back.rollups[0].expires_at == odd
    assert store.add_day_rollups([]) == 0


def test_day_rollups_list_a_range_of_one_feed_or_every_feed(store: EventStore) -> None:
    assert store.add_day_rollups([day(feed, d) for d in range(5) for feed in ("main", "aux")])

    def listed(since: int, until: int, feed: str | None = None) -> list[tuple[str, int]]:
        query = DayRollupQuery(since=T0 + since * DAY, until=T0 + until * DAY, feed=feed)
        return [(d.feed, (d.day_start - T0) // DAY) for d in store.day_rollups(query)]

    assert listed(1, 3) == [("aux", 1), ("main", 1), ("aux", 2), ("main", 2)]
    assert listed(1, 3, "main") == [("main", 1), ("main", 2)]
    assert listed(0, 5, "nope") == [] and listed(2, 2) == []
    # A bound off midnight: the days that start inside it.
    query = DayRollupQuery(since=T0 + 30 * HOUR, until=T0 + 3 * DAY, feed="aux")
    assert [d.day_start for d in store.day_rollups(query)] == [T0 + 2 * DAY]


def test_expired_day_rollups_are_never_listed_and_make_way(store: EventStore) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    old = DayRollupRecord.pack([rollup("main", 1, expires=past), rollup("main", 2)], ["main"])
    assert old.expires_at == past  # its first hour's expiry: it goes when that hour would
    assert store.add_day_rollups([old, day("main", 1)]) == 2
    query = DayRollupQuery(since=T0, until=T0 + 2 * DAY)
    assert [d.day_start for d in store.day_rollups(query)] == [T0 + DAY]
    assert store.add_day_rollups([day("main", 0)]) == 1
    assert store.day_rollups(query) == [day("main", 0), day("main", 1)]


def test_day_rollups_of_one_site_are_never_another_sites(store: EventStore) -> None:
    here, there = day("main", 0), day("main", 0, site="phx1", watts=7e6)
    assert store.add_day_rollups([here]) == 1
    assert store.add_day_rollups([there]) == 1
    since, until = T0, T0 + DAY
    assert store.day_rollups(DayRollupQuery(since=since, until=until)) == [here]
    assert store.day_rollups(DayRollupQuery(since=since, until=until, site="phx1")) == [there]
    assert store.day_rollups(DayRollupQuery(since=since, until=until, site="ams2")) == []


def test_a_day_rollup_refuses_what_is_not_one_day_of_one_feed() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DayRollupRecord.pack([], ["main"])
    with pytest.raises(ValueError, match="one site's and feed's"):
        DayRollupRecord.pack([rollup("main", 0), rollup("aux", 1)], ["main", "aux"])
    with pytest.raises(ValueError, match="not in the day"):
        DayRollupRecord.pack([rollup("main", 23), rollup("main", 24)], ["main"])
    with pytest.raises(ValueError, match="distinct"):
        replace(day("main", 0), rollups=(rollup("main", 1), rollup("main", 1)))
    with pytest.raises(ValueError, match="UTC midnight"):
        replace(day("main", 0), day_start=T0 + HOUR)
    with pytest.raises(ValueError, match="its own"):
        DayRollupRecord.pack([rollup("main", 0)], ["aux"])
    with pytest.raises(ValueError, match="no later than its first hour"):
        replace(day("main", 0), expires_at=LATER + DAY)


# -- meter intervals ---------------------------------------------------------------------


def test_meter_records_insert_if_absent_with_revisions(store: EventStore) -> None:
    first = [meter("main", m, 1e6 + m) for m in range(0, 60, 15)]
    assert store.add_meter_records(first) == 4
    assert store.add_meter_records(first) == 0  # the same again: nothing new
    # A replacement is a new revision; the old one is kept.
    replaced = meter("main", 15, 2e6, revision=2)
    withdrawn = meter("main", 30, None, revision=2)
    assert store.add_meter_records([replaced, withdrawn]) == 2
    # Another writer's revision 2 of the same interval: the first one stays.
    assert store.add_meter_records([meter("main", 15, 3e6, revision=2)]) == 0
    listed = store.meter_records(MeterQuery(feed="main", since=T0, until=T0 + HOUR))
    assert listed == sorted(
        [*first, replaced, withdrawn], key=lambda r: (r.interval_start, r.revision)
    )
    assert current_meter(listed) == [first[0], replaced, first[3]]
    # [since, until) by interval start; another feed or site sees none of it.
    narrow = MeterQuery(
        feed="main", since=T0 + timedelta(minutes=15), until=T0 + timedelta(minutes=30)
    )
    assert store.meter_records(narrow) == [first[1], replaced]
    assert store.meter_records(MeterQuery(feed="other", since=T0, until=T0 + HOUR)) == []
    assert (
        store.meter_records(MeterQuery(feed="main", since=T0, until=T0 + HOUR, site="phx1")) == []
    )


def test_meter_records_of_one_site_are_never_another_sites(store: EventStore) -> None:
    here, there = meter("main", 0, 1.0), meter("main", 0, 2.0, site="phx1")
    assert store.add_meter_records([here, there]) == 2
    window = {"feed": "main", "since": T0, "until": T0 + HOUR}
    assert store.meter_records(MeterQuery(**window)) == [here]
    assert store.meter_records(MeterQuery(**window, site="phx1")) == [there]


def test_many_meter_records_round_trip(store: EventStore, store_url: str) -> None:
    # A week of 15-minute data in one call (past a Firestore batch); three days on moto.
    days = 3 if store_url.startswith("dynamodb") else 7
    records = [meter("main", 15 * k, 1e6 + k * 0.5) for k in range(96 * days)]
    assert store.add_meter_records(records) == len(records)
    got = store.meter_records(MeterQuery(feed="main", since=T0, until=T0 + timedelta(days=7)))
    assert got == records


# -- what a listing costs, per backend -----------------------------------------------------

IN_RANGE = 24  # one day of hours, or six hours of 15-minute meter data


def _fill(store: EventStore, history_hours: int) -> None:
    """Two feeds' rollups and meter data over ``history_hours`` before and after the day
    a listing asks for (which starts at T0 + history_hours)."""
    hours = range(2 * history_hours + 24)
    store.add_rollups([rollup(feed, h) for h in hours for feed in ("main", "aux")])
    minutes = range(0, 60 * (2 * history_hours + 6), 15)
    store.add_meter_records([meter(feed, m, 1e6) for m in minutes for feed in ("main", "aux")])
    # Day rollups: as many days as hours above, each a day of one hour (small records).
    days = range(2 * history_hours + 24)
    store.add_day_rollups(
        [
            DayRollupRecord.pack([rollup(f, 24 * d)], ("main", "aux"))
            for d in days
            for f in ("main", "aux")
        ]
    )


def _range_reads(store: EventStore, history_hours: int) -> list[Any]:
    since, at = T0 + history_hours * HOUR, T0 + history_hours * DAY
    return [
        lambda: store.rollups(RollupQuery(since=since, until=since + 24 * HOUR, feed="main")),
        lambda: store.rollups(RollupQuery(since=since, until=since + 12 * HOUR)),
        lambda: store.meter_records(MeterQuery(feed="main", since=since, until=since + 6 * HOUR)),
        lambda: store.day_rollups(DayRollupQuery(since=at, until=at + 24 * DAY, feed="main")),
        lambda: store.day_rollups(DayRollupQuery(since=at, until=at + 12 * DAY)),
    ]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Any]:
    from gridhook.store.sqlite import SQLiteEventStore

    store = SQLiteEventStore(tmp_path / "intervals.db")
    store._connection().execute("PRAGMA synchronous=OFF")  # set-up speed; plans are the same
    yield store
    store.close()


def test_sqlite_listings_are_one_index_range(sqlite_store: Any) -> None:
    from tests.integration.test_store_sqlite_plans import plans, vm_steps

    store = sqlite_store
    _fill(store, 48)
    for read, index in zip(
        _range_reads(store, 48),
        (
            "PRIMARY KEY",
            "INDEX rollups_by_time",
            "PRIMARY KEY",
            "PRIMARY KEY",
            "INDEX day_rollups_by_time",
        ),
        strict=True,
    ):
        lines = plans(store, read)
        assert len(lines) == 1 and f"USING {index} (site=? AND " in lines[0], lines
        assert lines[0].startswith("SEARCH") and "TEMP B-TREE" not in lines[0], lines
        assert len(read()) == IN_RANGE
    # Thirty times the history, the same range: about the same work.
    small = [vm_steps(store, read) for read in _range_reads(store, 48)]
    _fill(store, 48 * 30)
    large = [vm_steps(store, read) for read in _range_reads(store, 48 * 30)]
    for before, after in zip(small, large, strict=True):
        assert after < 1.5 * before + 10, (small, large)


@pytest.mark.firestore
def test_firestore_listings_read_only_the_range(firestore_env: dict[str, str]) -> None:
    from tests.firestore_counts import counted_documents_store

    store, counter = counted_documents_store(f"iv-{uuid.uuid4().hex[:10]}")
    try:
        _fill(store, 12)
        for read in _range_reads(store, 12):
            counter.clear()
            assert len(read()) == IN_RANGE
            assert counter.calls == Counter({"RunQuery": 1}) and counter.documents == IN_RANGE
    finally:
        store.close()


@pytest.mark.dynamodb
def test_dynamodb_listings_read_only_the_range(dynamodb_env: dict[str, str]) -> None:
    store = open_store(dynamodb_env["GRIDHOOK_STORE"], timeout_seconds=60.0)
    calls: Counter[str] = Counter()
    scanned: list[int] = []

    def count(event_name: str, **_: object) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    def read(parsed: dict[str, Any], **_: object) -> None:
        scanned.append(parsed.get("ScannedCount", 0))

    try:
        _fill(store, 12)
        store.client.meta.events.register("before-send.dynamodb.*", count)
        store.client.meta.events.register("after-call.dynamodb.Query", read)
        for listing in _range_reads(store, 12):
            calls.clear()
            scanned.clear()
            assert len(listing()) == IN_RANGE
            # One Query of one key range, which reads the range and nothing else.
            assert calls == Counter({"Query": 1}) and scanned == [IN_RANGE]
    finally:
        store.close()
