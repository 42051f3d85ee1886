"""Episodes loaded from a real store, on every backend: what ``load_episodes`` returns for a
range is what deriving the whole history would say about that range, and reading it costs
the same number of store calls however much history lies outside the range."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridhook.episodes import Episode, derive_episodes
from gridhook.episodes.load import load_episodes
from gridhook.events import StoredEvent
from gridhook.store import AddOutcome, EventStore, open_store
from tests.unit.test_episodes import (
    _OMIT,
    DEADLINE,
    T0,
    at,
    curtailment,
    ev,
    histories,
    redelivered,
)
from tests.unit.test_episodes_simulator import run_day, schedules

DAY = 86_400
NOW = at(DAY + 3600)


def store_all(store: EventStore, events: list[StoredEvent]) -> None:
    for event in events:
        store.add_event(event)


def load(store: EventStore, since: float, until: float, **filters: Any) -> list[Episode]:
    return load_episodes(
        store, since=at(since), until=at(until), now=NOW, ramp_deadline=DEADLINE, **filters
    )


def oracle(events: list[StoredEvent], since: float, until: float) -> list[Episode]:
    """Derived from everything, then cut to the range: what the loader must match."""
    every = derive_episodes(events, now=NOW, ramp_deadline=DEADLINE)  # first receipts win
    return [e for e in every if e.overlaps(at(since), at(until))]


def a_day() -> list[StoredEvent]:
    """A day on two feeds with everything that goes wrong in it, in arrival order."""
    c2 = curtailment("c2", 10_000, held=7200)[:2]  # replaced while held...
    c3 = [  # ...by c3 at 12 000, whose ramp down starts from c2's 6.5 MW
        ev(
            e.event,
            (e.received_at - T0).total_seconds(),
            corr="c3",
            target=t,
            prev=p,
            start=s,
            end=end,
        )
        for e, t, p, s, end in zip(
            curtailment("c3", 12_000, target=5.0),
            (5.0, 5.0, 10.0, 10.0),
            (6.5, 6.5, 5.0, 5.0),
            (12_000, 12_000, 15_660, 15_660),
            (15_660, 15_660, None, None),
            strict=True,
        )
    ]
    c4 = curtailment("c4", 40_000)[1:]  # its start_ramp_down never arrived
    c5 = curtailment("c5", 50_000)
    c5 = [redelivered(c5[1], 49_995), redelivered(c5[0], 50_003), *c5[2:]]  # end first
    d0 = curtailment("d0", 500, feed="f2", held=1000)
    d0_late_end = redelivered(d0[3], 5_100)  # delivered after d1 began
    d1 = curtailment("d1", 5_000, feed="f2", target=4.0, default=8.0, held=55_000)
    d1_repeat = ev(
        "end_ramp_down",
        5_070,
        corr="d1",
        feed="f2",
        target=4.0,
        prev=8.0,
        calc=4.1,
        start=5_000,
        end=60_060,
    )
    return sorted(
        [
            *curtailment("c1", 1_000),
            *c2,
            *c3,
            *curtailment(_OMIT, 20_000),
            *curtailment(_OMIT, 30_000),
            *c4,
            *c5,
            *curtailment("c6", 80_000)[:2],  # still held at the end of the day
            *d0[:3],
            d0_late_end,
            *d1,
            d1_repeat,
            ev("start_ramp_down", 70_000, corr="d2", feed="f2", target=3.0, prev=8.0),  # stalls
        ],
        key=lambda e: e.received_at,
    )


RANGES = [
    (0, DAY + 1),  # everything
    (2_000, 4_000),  # inside c1's hold: no event of f1 in range
    (4_000, 11_000),  # d0's late end, d1 opening, c2 opening
    (11_000, 13_000),  # c2 replaced by c3
    (25_000, 35_000),  # an uncorrelated curtailment, cut by nothing
    (20_030, 30_030),  # uncorrelated ones cut at both edges
    (49_990, 50_001),  # c5's end arrived before its start, across the edge
    (52_000, 58_000),  # d1 held across the whole range, no event on f2 in it
    (75_000, 79_000),  # d2 stalled across the whole range
    (85_000, 90_000),  # after the last event: c6 and d2 still open
]


def test_a_range_tells_what_the_whole_history_tells(store: EventStore) -> None:
    events = a_day()
    for event in reversed(events):  # stored in any order: receipt times decide
        store.add_event(event)
    for since, until in RANGES:
        assert load(store, since, until) == oracle(events, since, until), (since, until)
    whole = load(store, 0, DAY + 1)
    statuses = {(e.feed_tag, e.correlation_id): e.status for e in whole}
    assert statuses == {
        ("f1", "c1"): "complete",
        ("f1", "c2"): "complete",  # replaced by c3
        ("f1", "c3"): "complete",
        ("f1", None): "complete",  # the two uncorrelated ones (one key)
        ("f1", "c4"): "partial",
        ("f1", "c5"): "complete",
        ("f1", "c6"): "in_progress",
        ("f2", "d0"): "complete",
        ("f2", "d1"): "complete",
        ("f2", "d2"): "stalled",
    }
    by_corr = {e.correlation_id: e for e in whole}
    assert by_corr["c2"].superseded_by == by_corr["c3"].episode_id
    assert by_corr["c4"].missing == ("start_ramp_down",)
    assert any(f.startswith("reordered:") for f in by_corr["c5"].flags)
    assert any(f.startswith("late:") for f in by_corr["d0"].flags)
    assert any(f.startswith("repeated:") for f in by_corr["d1"].flags)
    assert len(by_corr["d1"].ignored_events) == 1
    assert len([e for e in whole if e.correlation_id is None]) == 2


def test_an_episode_open_across_the_whole_range_is_found(store: EventStore) -> None:
    events = curtailment("held", 0, held=50_000)
    store_all(store, events)
    (episode,) = load(store, 10_000, 20_000)
    assert episode.correlation_id == "held" and episode.status == "complete"
    assert episode.constrained_seconds == 50_000 and len(episode.events) == 4
    store.add_event(ev("start_ramp_down", 60_000, corr="open", target=5.0))
    store.add_event(ev("end_ramp_down", 60_100, corr="open", target=5.0))
    (still,) = load(store, 70_000, 80_000)
    assert still.correlation_id == "open" and still.open and still.status == "in_progress"
    assert still.constrained_seconds == (NOW - at(60_100)).total_seconds()


def test_a_very_late_event_brings_its_whole_episode(store: EventStore) -> None:
    # c0's end_ramp_up arrives days late, after more curtailments than the look-back holds.
    c0 = curtailment("c0", 0)
    later = [e for i in range(20) for e in curtailment(f"n{i}", 10_000 * (i + 1))]
    late = redelivered(c0[3], 400_000)
    events = [*c0[:3], *later, late]
    store_all(store, events)
    (episode,) = load(store, 390_000, 410_000)
    assert episode == next(e for e in oracle(events, 0, DAY * 9) if e.correlation_id == "c0")
    assert len(episode.events) == 4 and episode.status == "complete"
    assert any(f.startswith("late: end_ramp_up") for f in episode.flags)


def test_filters_by_feed_correlation_id_and_status(store: EventStore) -> None:
    events = a_day()
    store_all(store, events)
    f2 = load(store, 0, DAY + 1, feed_tag="f2")
    assert [e.correlation_id for e in f2] == ["d0", "d1", "d2"]
    assert [e.correlation_id for e in load(store, 0, DAY + 1, status="partial")] == ["c4"]
    (c2,) = load(store, 0, DAY + 1, correlation_id="c2")
    assert c2 == next(e for e in oracle(events, 0, DAY + 1) if e.correlation_id == "c2")
    assert c2.superseded_by is not None  # the look-ahead found c3
    assert load(store, 0, 5_000, correlation_id="c3") == []  # not in that range
    with pytest.raises(ValueError, match="unknown status"):
        load(store, 0, 1, status="done")
    with pytest.raises(ValueError, match="until must be after since"):
        load(store, 5, 5)


def test_redelivered_events_are_one_event(store: EventStore) -> None:
    events = curtailment("c1", 0)
    store_all(store, events)
    assert store.add_event(redelivered(events[1], 30)) is AddOutcome.DUPLICATE
    (episode,) = load(store, 0, DAY)
    assert episode.status == "complete" and episode.flags == () and len(episode.events) == 4


def test_events_without_a_feed_tag(store: EventStore) -> None:
    # The seed's curl test payload has no feed_tag.
    seed = ev("start_ramp_down", 100, feed=_OMIT, corr="test-001", calc=9.8, compliant=False)
    store_all(store, [seed, *curtailment("test-001", 200)])
    untagged, tagged = load(store, 0, 1_000)
    assert (untagged.feed_tag, untagged.correlation_id, untagged.status) == (
        None,
        "test-001",
        "stalled",
    )
    assert [e.event_id for e in untagged.events] == [seed.event_id]
    assert tagged.feed_tag == "f1" and len(tagged.events) == 4


class CountingStore:
    """A real store that counts the calls made to it."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


def history(first: int, count: int, corr: str) -> list[StoredEvent]:
    """``count`` curtailments on each feed, one every 10 000 s from ``first``."""
    return [
        e
        for i in range(count)
        for feed in ("f1", "f2")
        for e in curtailment(f"{corr}-{feed}-{i}", first + i * 10_000, feed=feed, held=3_000)
    ]


def test_the_cost_follows_the_range_not_the_history(store: EventStore) -> None:
    since, until = 1_000_000, 1_100_000
    in_range = [
        *curtailment("crosses-since", since - 500, feed="f1", held=2_000),
        *curtailment("inside", since + 20_000, feed="f1"),
        *curtailment("no-start", since + 50_000, feed="f1")[1:],  # start_ramp_down lost
        *curtailment("crosses-until", until - 100, feed="f1"),
        *curtailment("across", since - 2_000, feed="f2", held=150_000),
    ]
    store_all(store, in_range + history(0, 2, "old") + history(2_000_000, 2, "new"))

    def measured() -> tuple[Counter[str], list[Episode]]:
        counting = CountingStore(store)
        episodes = load_episodes(
            counting,  # type: ignore[arg-type]
            since=at(since),
            until=at(until),
            now=at(3_000_000),
            ramp_deadline=DEADLINE,
        )
        return counting.calls, episodes

    calls, episodes = measured()
    assert [e.correlation_id for e in episodes] == [
        "across",
        "crosses-since",
        "inside",
        "no-start",
        "crosses-until",
    ]
    assert [e.status for e in episodes] == ["complete"] * 3 + ["partial", "complete"]
    assert [len(e.events) for e in episodes] == [4, 4, 4, 3, 4]
    # Ten times the history outside the range: not one store call more.
    store_all(store, history(0, 20, "older") + history(2_200_000, 20, "newer"))
    more_calls, same = measured()
    assert same == episodes
    assert more_calls == calls
    # One range page, one latest-by-feed, per feed one look-back (completes crosses-since)
    # and one look-ahead (completes crosses-until and across), and one query by correlation
    # id for no-start: nothing says its start is not before the range.
    assert calls == Counter({"events": 1 + 2 + 2 + 1, "latest_by_feed": 1})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False), st.data())
def test_any_range_of_any_history_matches_the_whole_history_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
    history: list[list[StoredEvent]],
    rng: random.Random,
    data: st.DataObject,
) -> None:
    # Receipt times shuffled within each episode: reordered arrivals across the edges too.
    events: list[StoredEvent] = []
    for episode in history:
        times = [e.received_at for e in episode]
        rng.shuffle(times)
        events.extend(
            redelivered(e, (t - T0).total_seconds()) for e, t in zip(episode, times, strict=True)
        )
    last = max(int((e.received_at - T0).total_seconds()) for e in events)
    since = data.draw(st.integers(0, last + 10), label="since")
    until = data.draw(st.integers(since + 1, last + 20), label="until")
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('episodes')}/events.db")
    try:
        store_all(store, events)
        assert load(store, since, until) == oracle(events, since, until)
    finally:
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.data())
def test_any_range_of_a_simulated_day_matches_the_whole_day_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory, targets: list[dict], data: st.DataObject
) -> None:
    # Overlapping, nested and open-ended targets, as the simulator's ramp model plays them.
    events = run_day([{**t, "id": t["id"] or f"sim-{i}"} for i, t in enumerate(targets)], 330)
    if not events:
        return
    first, last = events[0].received_at, events[-1].received_at
    span = int((last - first).total_seconds())
    since = first + timedelta(seconds=data.draw(st.integers(-60, span + 60), label="since"))
    until = since + timedelta(seconds=data.draw(st.integers(1, span + 120), label="until"))
    now = last + timedelta(minutes=10)
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('simulated')}/events.db")
    try:
        store_all(store, events)
        loaded = load_episodes(store, since=since, until=until, now=now, ramp_deadline=DEADLINE)
        every = derive_episodes(events, now=now, ramp_deadline=DEADLINE)
        assert loaded == [e for e in every if e.overlaps(since, until)]
    finally:
        store.close()
