"""SQLite answers from its indexes: what each query costs, read from SQLite's own plans.

The statements are the ones the store really runs (captured with a trace callback on
its connection), explained by ``EXPLAIN QUERY PLAN`` on a populated file, before and
after ``ANALYZE`` (statistics can change the planner's mind). Cost in proportion to the
rows asked for, not the history, is what keeps ``gridhook state`` O(feeds) and a 30-day
report independent of a year of events (tests/bench measures the times).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.events import normalise
from gridhook.store import AlertRecord, EventOrder, EventQuery, LoadSample, SampleQuery
from gridhook.store.sqlite import SQLiteEventStore
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["fresh", "analyzed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteEventStore]:
    store = SQLiteEventStore(tmp_path / "plans.db")
    store._connection().execute("PRAGMA synchronous=OFF")  # set-up speed; plans are the same
    later = datetime.now(UTC) + timedelta(days=30)
    for i in range(600):
        payload = copy.deepcopy(SEED_PAYLOAD)
        payload.update(feed_tag=f"feed_{i % 4}", correlation_id=f"c{i // 8}", seq=i)
        store.add_event(normalise(payload, T0 + timedelta(seconds=i)))
        store.add_sample(
            LoadSample(f"feed_{i % 4}", T0 + timedelta(seconds=i), 1.0, 2.0, None, later)
        )
    for i in range(50):
        store.add_alert(AlertRecord(f"a{i}", "episode_stalled", T0 + timedelta(minutes=i), "m"))
    if request.param == "analyzed":
        store._connection().execute("ANALYZE")
    yield store
    store.close()


def plans(store: SQLiteEventStore, run: Callable[[], object]) -> list[str]:
    """The query plan lines of every statement ``run`` makes the store execute."""
    # White-box: the store's connection for this thread, to see the SQL it sends.
    conn = store._connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    assert statements, "the store ran no SQL"
    return [row[3] for sql in statements for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def vm_steps(store: SQLiteEventStore, run: Callable[[], object]) -> int:
    """How many virtual-machine instructions (in tens) SQLite executes for ``run``."""
    conn = store._connection()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 10)
    try:
        run()
    finally:
        conn.set_progress_handler(None, 10)
    return steps


def test_latest_by_feed_skips_from_feed_to_feed(store: SQLiteEventStore) -> None:
    lines = plans(store, store.latest_by_feed)
    # Nothing is read in full (only the few-row list of feed tags is scanned), and
    # nothing is sorted: each step seeks the next feed tag, then that feed's newest event.
    assert not [line for line in lines if line.startswith("SCAN") and line != "SCAN tags"], lines
    assert any("events_by_feed (site=? AND feed_tag>?)" in line for line in lines), lines
    assert any("events_by_feed (site=? AND feed_tag=?)" in line for line in lines), lines
    assert not any("TEMP B-TREE" in line for line in lines), lines
    # And what it costs: ten times the events on the same four feeds, about the same work.
    before = vm_steps(store, store.latest_by_feed)
    for i in range(600, 6000):
        payload = {**copy.deepcopy(SEED_PAYLOAD), "feed_tag": f"feed_{i % 4}", "seq": i}
        store.add_event(normalise(payload, T0 + timedelta(seconds=i)))
    after = vm_steps(store, store.latest_by_feed)
    assert after < 1.5 * before, (before, after)
    latest = store.latest_by_feed()
    assert {tag: e.payload["seq"] for tag, e in latest.items()} == {
        f"feed_{k}": 5996 + k for k in range(4)
    }


SINCE, UNTIL = T0 + timedelta(seconds=100), T0 + timedelta(seconds=200)


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "events_by_time"),
        ({"feed_tag": "feed_1"}, "events_by_feed"),
        ({"correlation_id": "c15"}, "events_by_correlation"),
        ({"feed_tag": "feed_1", "correlation_id": "c15"}, "events_by_correlation"),
    ],
)
def test_event_pages_are_index_range_searches(
    store: SQLiteEventStore, filters: dict[str, str], index: str, newest_first: bool
) -> None:
    query = EventQuery(since=SINCE, until=UNTIL, limit=5, newest_first=newest_first, **filters)
    page = store.events(query)
    assert page.events
    lines = plans(
        store, lambda: store.events(EventQuery(**{**_fields(query), "cursor": page.next_cursor}))
    )
    assert len(lines) == 1 and lines[0].startswith(f"SEARCH events USING INDEX {index} ("), lines
    # Read in index order, either way: no sort of the whole range before the LIMIT.
    assert not any("TEMP B-TREE" in line for line in lines), lines


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("feed_tag", [None, "feed_1"])
def test_a_later_page_costs_what_the_first_did(
    store: SQLiteEventStore, feed_tag: str | None, newest_first: bool
) -> None:
    # A cursor must move the index seek, not just filter: the last page of a range
    # costs about what the first did (were it to scan from ``since`` again, paging a
    # range would be quadratic — 31 s instead of 1.4 s for 190,000 events once).
    since, until = T0, T0 + timedelta(seconds=600)
    query = EventQuery(
        feed_tag=feed_tag, since=since, until=until, limit=10, newest_first=newest_first
    )
    pages = []
    cursor = None
    while True:
        page = store.events(EventQuery(**{**_fields(query), "cursor": cursor}))
        pages.append(cursor)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(pages) >= 15
    first = vm_steps(
        store, lambda: store.events(EventQuery(**{**_fields(query), "cursor": pages[1]}))
    )
    last = vm_steps(
        store, lambda: store.events(EventQuery(**{**_fields(query), "cursor": pages[-1]}))
    )
    assert last < 2 * first + 5, (first, last)


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize(
    "filters", [{}, {"feed_tag": "feed_1"}, {"feed_tag": "feed_1", "correlation_id": "c15"}]
)
def test_write_order_pages_search_its_own_index(
    store: SQLiteEventStore, filters: dict[str, str], newest_first: bool
) -> None:
    """A tail's look at the last minutes of writes reads those minutes from the write-order
    index, whatever its filters: never a feed's history, never sorted."""
    newest = store.events(EventQuery(order=EventOrder.STORED, newest_first=True, limit=1))
    stored_at = newest.events[0].stored_at
    assert stored_at is not None
    query = EventQuery(
        since=stored_at - timedelta(minutes=2),
        limit=1,
        newest_first=newest_first,
        order=EventOrder.STORED,
        **filters,
    )
    page = store.events(query)
    assert page.events and page.next_cursor
    lines = plans(store, lambda: store.events(replace(query, cursor=page.next_cursor)))
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "SEARCH events USING INDEX events_by_storage (site=? AND stored_at"
    ), lines
    assert not any("TEMP B-TREE" in line for line in lines), lines


def _fields(query: EventQuery) -> dict[str, object]:
    names = ("feed_tag", "correlation_id", "since", "until", "limit", "newest_first")
    return {name: getattr(query, name) for name in names}


def test_samples_and_alerts_are_index_searches(store: SQLiteEventStore) -> None:
    query = SampleQuery(feed_tag="feed_2", since=SINCE, until=UNTIL, limit=5)
    lines = plans(store, lambda: store.samples(query))
    assert len(lines) == 1 and lines[0].startswith("SEARCH samples USING INDEX samples_by_feed")
    lines = plans(store, lambda: store.alerts(limit=3))
    # The site's newest 3, in index order (no sort).
    assert lines == ["SEARCH alerts USING INDEX alerts_by_time (site=?)"], lines
