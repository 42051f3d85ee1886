"""Feed states read from a real store, on every backend: ``current_feed_states`` says what
deriving the whole history says (the episode derivation every episode list uses, stalled
and target met included), and reading it costs the same store calls however long the
history is: O(feeds)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridhook.events import StoredEvent
from gridhook.state import FeedState, feed_states
from gridhook.state import load as state_load
from gridhook.state.load import current_feed_states
from gridhook.store import EventStore, open_store
from tests.integration.test_episodes_store import CountingStore, a_day, history, store_all
from tests.unit.test_episodes import DEADLINE, T0, at, curtailment, ev, histories, redelivered
from tests.unit.test_episodes_simulator import run_day, schedules

DAY = 86_400
NOW = at(DAY + 3600)


def read(store: EventStore, now: datetime = NOW) -> dict[str, FeedState]:
    return current_feed_states(store, now=now, ramp_deadline=DEADLINE)


def oracle(events: list[StoredEvent], now: datetime = NOW) -> dict[str, FeedState]:
    """Derived from every event ever stored: what the loader must match."""
    return feed_states(events, now=now, ramp_deadline=DEADLINE)


@contextmanager
def newest_page_of(size: int) -> Iterator[None]:
    """The loader's first page per feed, made small so that short histories cross it (a
    constant of ours, not a part: the store it reads is real)."""
    with mock.patch.object(state_load, "RECENT_EVENTS", size):
        yield


def test_the_state_is_what_the_whole_history_says(store: EventStore) -> None:
    events = a_day()
    for event in reversed(events):  # stored in any order: receipt times decide
        store.add_event(event)
    states = read(store)
    assert states == oracle(events)
    f1, f2 = states["f1"], states["f2"]
    assert (f1.phase, f1.correlation_id, f1.episode_status, f1.stalled) == (
        "constrained",
        "c6",
        "in_progress",
        False,
    )
    assert f1.compliant is True
    # d2's ramp down started at 70 000 s and nothing followed: stalled, not yet judged.
    assert (f2.phase, f2.correlation_id, f2.episode_status, f2.stalled) == (
        "ramping_down",
        "d2",
        "stalled",
        True,
    )
    assert f2.compliant is None
    with newest_page_of(2):
        assert read(store) == states


def test_the_state_at_each_step_of_a_curtailment(store: EventStore) -> None:
    # A 30-day history before it, on the same feed.
    store_all(store, history(-40 * DAY, 100, "old"))
    srd, erd, sru, eru = curtailment("now", 0)
    stored = [*history(-40 * DAY, 100, "old")]
    for event, phase in ((srd, "ramping_down"), (erd, "constrained"), (sru, "ramping_up")):
        store.add_event(event)
        stored.append(event)
        now = event.received_at + timedelta(seconds=30)
        state = read(store, now)["f1"]
        assert (state.phase, state.correlation_id, state.stalled) == (phase, "now", False)
        assert state == oracle(stored, now)["f1"]
        late = event.received_at + DEADLINE + timedelta(seconds=1)
        assert read(store, late)["f1"].stalled is event.event.startswith("start_")
    store.add_event(redelivered(eru, 4000))
    assert read(store, at(5000))["f1"].phase == "steady"


def test_the_cost_is_per_feed_not_per_event(store: EventStore) -> None:
    store_all(store, [*history(-DAY * 5, 5, "old"), *a_day()])

    def measured() -> tuple[Counter[str], dict[str, FeedState]]:
        counting = CountingStore(store)
        states = current_feed_states(
            counting,  # type: ignore[arg-type]
            now=NOW,
            ramp_deadline=DEADLINE,
        )
        return counting.calls, states

    calls, states = measured()
    # One latest-by-feed; per feed one page of its newest events, and (each feed's last
    # curtailment is going on: only part of it is in the store) one query by correlation id.
    assert calls == Counter({"latest_by_feed": 1, "events": 2 + 2})
    # Ten times the history before it: not one store call more, the same states.
    store_all(store, history(-DAY * 50, 50, "older"))
    assert measured() == (calls, states)
    # A feed whose last curtailment is over needs its page only.
    store_all(store, curtailment("c7", DAY))
    calls, states = measured()
    assert calls == Counter({"latest_by_feed": 1, "events": 2 + 1})
    assert states["f1"].correlation_id == "c7" and states["f1"].phase == "steady"


def test_the_latest_episode_longer_than_the_page_is_read_whole(store: EventStore) -> None:
    # The newest page holds only the end of "long": its opening lies before it, and so
    # does what replaced the older target.
    long = curtailment("long", 10_000, held=20_000)
    repeats = [
        ev("end_ramp_down", 10_100 + 100 * i, corr="long", calc=6.5 - 0.01 * i, end=30_060)
        for i in range(1, 6)
    ]
    events = [*curtailment("before", 0), *long[:2], *repeats, long[2]]
    store_all(store, events)
    with newest_page_of(3):
        states = read(store)
    assert states == oracle(events)
    assert states["f1"].phase == "ramping_up" and states["f1"].episode_status == "stalled"


def test_what_took_the_feed_before_the_page_is_read(store: EventStore) -> None:
    # "outer" (10 -> 6.5 MW) lost its end_ramp_down; "inner" (6.5 -> 5 MW) took the feed at
    # 8 MW, short of 6.5 (so outer's ramp was interrupted: target not met), and gave it back;
    # outer's ramp up comes much later. The newest page holds neither outer's start nor
    # inner's: the page from outer's opening brings inner's.
    down = {"corr": "outer", "target": 6.5, "prev": 10.0, "end": None}
    inner = {"corr": "inner", "start": 100, "end": 200}
    events = [
        ev("start_ramp_down", 0, calc=10.0, **down),
        ev("start_ramp_down", 100, target=5.0, prev=6.5, calc=8.0, **inner),
        ev("end_ramp_down", 160, target=5.0, prev=6.5, calc=5.0, **inner),
        ev("start_ramp_up", 200, target=6.5, prev=5.0, calc=5.0, **inner),
        ev("end_ramp_up", 260, target=6.5, prev=5.0, calc=6.5, **inner),
        ev("start_ramp_up", 3000, corr="outer", target=10.0, prev=6.5, start=3000, end=None),
    ]
    store_all(store, events)
    with newest_page_of(3):
        states = read(store)
    assert states == oracle(events)
    outer = states["f1"]
    assert (outer.correlation_id, outer.phase, outer.compliant) == ("outer", "ramping_up", False)


# Property tests on SQLite (each example a fresh file): the loader and the whole history
# agree at any moment, for histories with lost, reordered, nested and overlapping targets.


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False), st.data())
def test_any_history_at_any_moment_matches_the_whole_history_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
    history: list[list[StoredEvent]],
    rng: random.Random,
    data: st.DataObject,
) -> None:
    events: list[StoredEvent] = []
    for episode in history:  # receipt times shuffled within each episode
        times = [e.received_at for e in episode]
        rng.shuffle(times)
        events.extend(
            redelivered(e, (t - T0).total_seconds()) for e, t in zip(episode, times, strict=True)
        )
    last = max(int((e.received_at - T0).total_seconds()) for e in events)
    now = at(last + data.draw(st.integers(0, 2 * int(DEADLINE.total_seconds())), label="now"))
    page = data.draw(st.integers(1, 6), label="page")
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('state')}/events.db")
    try:
        store_all(store, events)
        with newest_page_of(page):
            assert read(store, now) == oracle(events, now)
    finally:
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.data())
def test_any_moment_of_a_simulated_day_matches_the_whole_day_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory, targets: list[dict], data: st.DataObject
) -> None:
    # Overlapping, nested and open-ended targets, as the simulator's ramp model plays them.
    events = run_day([{**t, "id": t["id"] or f"sim-{i}"} for i, t in enumerate(targets)], 330)
    if not events:
        return
    last = events[-1].received_at
    now = last + timedelta(minutes=data.draw(st.integers(0, 90), label="minutes after"))
    page = data.draw(st.sampled_from([2, 5, state_load.RECENT_EVENTS]), label="page")
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('simulated')}/events.db")
    try:
        store_all(store, events)
        with newest_page_of(page):
            assert read(store, now) == oracle(events, now)
    finally:
        store.close()
