"""Reports over adjacent ranges add up to the report over their union, through a real
store and the episode loader (which reads only what each range needs): issue 15 item 1.
The same property over generated histories, without a store: tests/unit/test_report_ranges.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridhook.episodes import EPISODE_STATUSES
from gridhook.events import normalise
from gridhook.report import Report, build_report
from gridhook.store import EventStore, open_store
from tests.report_scenario import assert_adds_up, seed_day

DAY1 = datetime(2026, 11, 30, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
NOW = DAY2 + timedelta(hours=15, minutes=5)  # day 2 seeded up to 15:00
DEADLINE = timedelta(minutes=30)


def _add(store: EventStore, event: str, at: datetime, corr: str, target: float) -> None:
    down = event.endswith("down")
    payload = {
        "event": event,
        "feed_tag": "f3",
        "start_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": None,
        "strategy": "best_effort",
        "target_load": {"value": target if down else 9.0, "unit": "mw"},
        "prev_target_load": {"value": 9.0 if down else target, "unit": "mw"},
        "calculated_load": {"value": target, "unit": "mw"},
        "compliant": True,
        "correlation_id": corr,
    }
    store.add_event(normalise(payload, at))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    """Two days of the report scenario (a stalled ramp, a target not met, day 2 cut off
    mid-ramp: in progress), and on a third feed a partial episode and a stall."""
    path = tmp_path_factory.mktemp("ranges") / "events.db"
    opened = open_store(f"sqlite:///{path}", timeout_seconds=5.0)
    seed_day(opened, DAY1, 24, "-d1")
    seed_day(opened, DAY2, 15, "-d2")
    for event, minute in (("end_ramp_down", 0), ("start_ramp_up", 50), ("end_ramp_up", 55)):
        _add(opened, event, DAY1 + timedelta(hours=3, minutes=minute), "partial", 5.0)
    _add(opened, "start_ramp_down", DAY2 + timedelta(hours=12), "stall", 4.0)
    yield opened
    opened.close()


def _report(store: EventStore, since: datetime, until: datetime) -> Report:
    return build_report(store, since=since, until=until, now=NOW, ramp_deadline=DEADLINE)


def test_the_store_holds_every_status(store: EventStore) -> None:
    whole = _report(store, DAY1 - timedelta(days=1), NOW + timedelta(days=1))
    assert {e.status for e in whole.episodes} == set(EPISODE_STATUSES)


_SPAN_MS = int((NOW - DAY1 + timedelta(hours=6)).total_seconds() * 1000)


@settings(max_examples=40)
@given(
    st.lists(st.integers(0, _SPAN_MS), min_size=1, max_size=3, unique=True),
    st.sampled_from([DAY1 - timedelta(hours=2), DAY1 + timedelta(hours=7)]),
)
def test_adjacent_ranges_add_up_through_the_loader(
    store: EventStore, cuts_ms: list[int], since: datetime
) -> None:
    until = NOW + timedelta(hours=6)  # past now: what lies there is nothing
    cuts = sorted(
        c for c in (DAY1 + timedelta(milliseconds=ms) for ms in cuts_ms) if since < c < until
    )
    bounds = [since, *cuts, until]
    whole = _report(store, since, until)
    parts = [_report(store, a, b) for a, b in itertools.pairwise(bounds)]
    assert_adds_up(whole, parts)
