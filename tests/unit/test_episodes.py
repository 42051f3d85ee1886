"""Curtailment episodes derived from events (pure logic; tests/integration/test_episodes_store.py
runs the same through every store backend, and the loader's cost)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridhook.display import format_duration
from gridhook.episodes import Episode, derive_episodes
from gridhook.events import StoredEvent, normalise, rfc3339

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
DEADLINE = timedelta(minutes=30)
MW = 1e6
_OMIT = object()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(
    event: str,
    received: float,
    *,
    corr: Any = "c1",
    feed: Any = "f1",
    target: Any = 6.5,
    prev: Any = 10.0,
    calc: float | None = None,
    start: float = 0,
    end: float | None = 3660,
    compliant: bool | None = None,
    **extra: Any,
) -> StoredEvent:
    """One event as the simulator sends it, received ``received`` seconds after T0.

    ``feed`` or ``corr`` set to _OMIT leave the key out (the seed's curl test has no feed).
    """
    calc = calc if calc is not None else (prev if event.startswith("start_") else target)
    payload: dict[str, Any] = {
        "event": event,
        "feed_tag": feed,
        "start_time": rfc3339(at(start)),
        "end_time": None if end is None else rfc3339(at(end)),
        "strategy": "best_effort",
        "target_load": None if target is None else {"value": target, "unit": "mw"},
        "prev_target_load": None if prev is None else {"value": prev, "unit": "mw"},
        "calculated_load": {"value": calc, "unit": "mw"},
        "compliant": (calc <= (target if target is not None else 10.0))
        if compliant is None
        else compliant,
        "correlation_id": corr,
        **extra,
    }
    payload = {k: v for k, v in payload.items() if v is not _OMIT}
    return normalise(payload, at(received))


def curtailment(
    corr: Any,
    begin: float,
    *,
    feed: Any = "f1",
    target: float = 6.5,
    default: float = 10.0,
    down: float = 60,
    held: float = 3600,
    up: float = 60,
) -> list[StoredEvent]:
    """The four events of one curtailment, as the simulator sends them: the ramp back to
    the default carries the target's end as its start_time and no end_time."""
    end = begin + down + held
    common = {"corr": corr, "feed": feed}
    return [
        ev("start_ramp_down", begin, target=target, prev=default, start=begin, end=end, **common),
        ev(
            "end_ramp_down",
            begin + down,
            target=target,
            prev=default,
            start=begin,
            end=end,
            **common,
        ),
        ev("start_ramp_up", end, target=default, prev=target, start=end, end=None, **common),
        ev("end_ramp_up", end + up, target=default, prev=target, start=end, end=None, **common),
    ]


def derive(events: list[StoredEvent], now: datetime = NOW) -> list[Episode]:
    return derive_episodes(events, now=now, ramp_deadline=DEADLINE)


def one(events: list[StoredEvent], now: datetime = NOW) -> Episode:
    (episode,) = derive(events, now)
    return episode


def redelivered(event: StoredEvent, seconds: float) -> StoredEvent:
    """The same event, received at T0 + ``seconds`` instead."""
    return normalise(event.payload, at(seconds))


# --- one curtailment --------------------------------------------------------------------------


def test_a_complete_curtailment_fills_every_field() -> None:
    events = curtailment("c1", 0, down=60, held=3600, up=90)
    e = one(events)
    assert (e.feed_tag, e.correlation_id, e.kind, e.status, e.open) == (
        "f1",
        "c1",
        "curtailment",
        "complete",
        False,
    )
    assert e.target_load == {"value": 6.5, "unit": "mw"} and e.target_w == 6.5 * MW
    assert e.prev_target_load == {"value": 10.0, "unit": "mw"} and e.prev_target_w == 10 * MW
    assert (e.interval_start, e.interval_end) == (at(0), at(3660))
    assert (e.ramp_down_started_at, e.ramp_down_ended_at, e.ramp_down_seconds) == (
        at(0),
        at(60),
        60.0,
    )
    assert e.constrained_seconds == 3600.0
    assert (e.ramp_up_started_at, e.ramp_up_ended_at, e.ramp_up_seconds) == (
        at(3660),
        at(3750),
        90.0,
    )
    assert e.compliant is True
    assert e.requested_reduction_w == 3.5 * MW
    assert e.requested_energy_wh == pytest.approx(3.5 * MW)  # 3.5 MW for one hour
    assert e.load_w == {
        "start_ramp_down": 10 * MW,
        "end_ramp_down": 6.5 * MW,
        "start_ramp_up": 6.5 * MW,
        "end_ramp_up": 10 * MW,
    }
    assert [x.event_id for x in e.events] == [x.event_id for x in events]
    assert (e.missing, e.flags, e.superseded_by, e.ignored_events) == ((), (), None, ())
    assert e.ended_at == at(3750) and e.started_at == e.opened_at == at(0)
    assert e.to_dict()["event_ids"] == [x.event_id for x in events]


def test_the_episode_id_is_stable_and_names_feed_and_correlation_id() -> None:
    a = one(curtailment("c1", 0))
    assert one(curtailment("c1", 500)).episode_id == a.episode_id  # same feed and id
    assert one(curtailment("c2", 0)).episode_id != a.episode_id
    assert one(curtailment("c1", 0, feed="f2")).episode_id != a.episode_id


def test_an_open_curtailment_is_held_up_to_now() -> None:
    events = curtailment("c1", 0)[:2]
    e = one(events, now=at(60 + 1800))
    assert (e.status, e.open, e.ended_at) == ("in_progress", True, None)
    assert e.constrained_seconds == 1800.0
    assert e.requested_energy_wh == pytest.approx(3.5 * MW / 2)
    assert e.ramp_up_started_at is None and e.missing == ()


def test_a_ramp_without_its_end_stalls_after_the_deadline() -> None:
    start = curtailment("c1", 0)[:1]
    assert one(start, now=at(1800)).status == "in_progress"  # exactly the deadline: on time
    stalled = one(start, now=at(1801))
    assert stalled.status == "stalled" and stalled.open
    assert stalled.compliant is None and stalled.constrained_seconds is None
    assert any(f.startswith("stalled: start_ramp_down") for f in stalled.flags)
    # The ramp back up stalls too.
    three = curtailment("c1", 0)[:3]
    assert one(three, now=at(3660 + 1801)).status == "stalled"
    assert one(three, now=at(3660 + 60)).status == "in_progress"


def test_stalled_wins_over_partial() -> None:
    # The ramp down's start is missing (partial) and the ramp up has stalled.
    events = curtailment("c1", 0)[1:3]
    e = one(events)
    assert e.missing == ("start_ramp_down",)
    assert e.status == "stalled"


def test_an_end_without_its_start_is_partial() -> None:
    e = one(curtailment("c1", 0)[1:2], now=at(120))
    assert (e.status, e.missing, e.kind) == ("partial", ("start_ramp_down",), "curtailment")
    assert e.ramp_down_started_at is None and e.ramp_down_seconds is None
    assert e.target_w == 6.5 * MW and e.compliant is True  # the end carries both


def test_a_missing_ramp_up_start_is_partial_and_its_hold_unknown() -> None:
    events = curtailment("c1", 0)
    e = one([events[0], events[1], events[3]])
    assert (e.status, e.missing, e.open) == ("partial", ("start_ramp_up",), False)
    assert e.constrained_seconds is None and e.requested_energy_wh is None
    assert e.requested_reduction_w == 3.5 * MW


def test_a_lost_end_ramp_down_is_missing_when_the_load_had_reached_the_target() -> None:
    srd, _, sru, eru = curtailment("c1", 0)
    e = one([srd, sru, eru])
    assert (e.status, e.missing) == ("partial", ("end_ramp_down",))
    assert e.compliant is None and e.constrained_seconds is None


def test_a_ramp_down_cut_short_by_the_target_ending_is_not_missing() -> None:
    # The target ended before the load reached it: the simulator ramps back up from 8 MW.
    srd = ev("start_ramp_down", 0, target=6.5, prev=10.0, end=120)
    sru = ev("start_ramp_up", 120, target=10.0, prev=6.5, calc=8.0, start=120, end=None)
    eru = ev("end_ramp_up", 160, target=10.0, prev=6.5, calc=10.0, start=120, end=None)
    e = one([srd, sru, eru])
    assert (e.status, e.missing) == ("complete", ())
    assert e.compliant is False and e.constrained_seconds == 0.0
    assert e.requested_energy_wh == 0.0
    assert any(f.startswith("interrupted: the ramp down stopped at 8 MW") for f in e.flags)


# --- arrivals ---------------------------------------------------------------------------------


def test_an_end_received_before_its_start_is_ordered_and_flagged() -> None:
    srd, erd, sru, eru = curtailment("c1", 0)
    e = one([redelivered(erd, 3), redelivered(srd, 5), sru, eru])
    assert [x.event for x in e.events] == [
        "start_ramp_down",
        "end_ramp_down",
        "start_ramp_up",
        "end_ramp_up",
    ]
    assert e.status == "complete" and e.missing == ()
    assert e.ramp_down_started_at == at(5) and e.ramp_down_ended_at == at(3)
    assert e.ramp_down_seconds is None  # an end received first tells no duration
    assert e.flags == ("reordered: end_ramp_down received 2 s before start_ramp_down",)


def test_the_ramps_are_ordered_by_dps_times_even_when_received_crosswise() -> None:
    # The ramp up's events are received before the ramp down's: start_time still tells.
    srd, erd, sru, eru = curtailment("c1", 0)
    e = one([redelivered(x, i) for i, x in enumerate((sru, eru, srd, erd))])
    assert e.kind == "curtailment"
    assert e.events[0].event == "start_ramp_down"
    assert len([f for f in e.flags if f.startswith("reordered:")]) == 4


def test_an_event_of_an_older_episode_received_after_the_next_began_is_late() -> None:
    c1 = curtailment("c1", 0)
    c2 = curtailment("c2", 10_000)
    late_end = redelivered(c1[3], 10_030)  # c1's end_ramp_up, delivered very late
    first, second = derive([*c1[:3], late_end, *c2])
    assert first.correlation_id == "c1" and first.status == "complete"
    assert first.superseded_by is None  # it did end itself
    assert first.flags == ("late: end_ramp_up received 30 s after c2 took the feed",)
    assert second.flags == ()


def test_a_repeated_event_type_keeps_the_first_received_and_flags_the_other() -> None:
    srd, erd, sru, eru = curtailment("c1", 0)
    again = ev("end_ramp_down", 65, calc=6.4, end=3660)  # same type, other content
    e = one([srd, erd, again, sru, eru])
    assert [x.event_id for x in e.events] == [x.event_id for x in (srd, erd, sru, eru)]
    assert e.ignored_events == (again,)
    assert e.load_w["end_ramp_down"] == 6.5 * MW
    assert e.flags == (
        f"repeated: a second end_ramp_down (event {again.event_id[:12]}) differs in "
        "calculated_load; kept the first received",
    )
    # The one received first wins, whatever the order they are handed over in.
    assert one([again, eru, sru, erd, srd]).events[1].event_id == erd.event_id


def test_the_same_event_twice_is_one_event() -> None:
    events = curtailment("c1", 0)
    assert one(events + events) == one(events)


# --- targets ------------------------------------------------------------------------------------


def test_a_null_target_means_the_default_and_leaves_requested_figures_unknown() -> None:
    srd = ev("start_ramp_down", 0, target=None, prev=12.0, calc=12.0)
    erd = ev("end_ramp_down", 60, target=None, prev=12.0, calc=10.0, compliant=True)
    e = one([srd, erd], now=at(3660))
    assert e.target_load is None and e.target_w is None
    assert e.requested_reduction_w is None and e.requested_energy_wh is None
    assert e.constrained_seconds == 3600.0 and e.status == "in_progress"


def test_a_zero_target_is_the_default_not_zero_watts() -> None:
    # DPS: "--value=0 with any unit also sets the default constraint".
    e = one([ev("start_ramp_down", 0, target=0, prev=12.0, calc=12.0)], now=at(10))
    assert e.target_load == {"value": 0, "unit": "mw"} and e.target_w is None
    assert e.requested_reduction_w is None


def test_an_increase_opens_with_a_ramp_up() -> None:
    # Target 8 MW above a 6.5 MW load: up to 8, held, then down to the 7 MW default.
    sru = ev("start_ramp_up", 0, corr="up", target=8.0, prev=6.5, calc=6.5, start=0, end=600)
    eru = ev("end_ramp_up", 30, corr="up", target=8.0, prev=6.5, calc=8.0, start=0, end=600)
    srd = ev("start_ramp_down", 600, corr="up", target=7.0, prev=8.0, calc=8.0, start=600, end=None)
    erd = ev("end_ramp_down", 620, corr="up", target=7.0, prev=8.0, calc=7.0, start=600, end=None)
    e = one([srd, erd, sru, eru])
    assert (e.kind, e.status, e.open) == ("increase", "complete", False)
    assert [x.event for x in e.events] == [
        "start_ramp_up",
        "end_ramp_up",
        "start_ramp_down",
        "end_ramp_down",
    ]
    assert e.target_w == 8 * MW and e.prev_target_w == 6.5 * MW
    assert e.requested_reduction_w == -1.5 * MW  # negative: more load was allowed
    assert e.constrained_seconds == 570.0
    assert e.requested_energy_wh == pytest.approx(-1.5 * MW * 570 / 3600)
    assert (e.ramp_up_seconds, e.ramp_down_seconds) == (30.0, 20.0)
    assert e.compliant is True
    open_increase = one([sru], now=at(10))
    assert (open_increase.kind, open_increase.status) == ("increase", "in_progress")


# --- several episodes -------------------------------------------------------------------------


def test_a_new_target_while_constrained_supersedes_the_old_one() -> None:
    # The simulator: c1 holds 6.5 MW, then c2 (5 MW) wins; c2's events carry prev 6.5 MW.
    c1 = curtailment("c1", 0, held=7200)[:2]
    c2 = curtailment("c2", 1860, target=5.0)
    c2 = [
        normalise({**e.payload, "prev_target_load": {"value": 6.5, "unit": "mw"}}, e.received_at)
        if e.event.endswith("_down")
        else e
        for e in c2
    ]
    first, second = derive([*c2, *c1])
    assert (first.correlation_id, second.correlation_id) == ("c1", "c2")
    assert first.superseded_by == second.episode_id
    assert (first.status, first.open, first.ended_at) == ("complete", False, at(1860))
    assert first.constrained_seconds == 1800.0  # from its end_ramp_down to c2's start
    assert first.missing == () and first.ramp_up_started_at is None
    assert second.prev_target_w == 6.5 * MW and second.requested_reduction_w == 1.5 * MW
    assert (second.status, second.superseded_by) == ("complete", None)


def test_a_new_target_during_the_ramp_down_interrupts_it() -> None:
    srd = curtailment("c1", 0)[0]
    c2 = ev("start_ramp_down", 30, corr="c2", target=5.0, prev=6.5, calc=8.2, start=30, end=900)
    first, second = derive([srd, c2], now=at(40))
    assert first.superseded_by == second.episode_id
    assert (first.status, first.missing, first.compliant) == ("complete", (), False)
    assert any(f.startswith("interrupted: the ramp down stopped at 8.2 MW") for f in first.flags)
    assert second.status == "in_progress"


def test_a_lost_end_before_a_new_target_is_missing() -> None:
    srd = curtailment("c1", 0)[0]
    c2 = ev("start_ramp_down", 300, corr="c2", target=5.0, prev=6.5, calc=6.5, start=300, end=900)
    first, _ = derive([srd, c2], now=at(310))
    assert (first.status, first.missing) == ("partial", ("end_ramp_down",))


def test_a_nested_target_hands_the_feed_back_to_the_outer_one() -> None:
    # c1 holds 6.5 MW; c2 (5 MW) takes over at 1000 s and ends at 2000 s: the feed goes
    # back to c1's 6.5 MW (an event of c1 from c2's 5 MW), then to the default at 5000 s.
    c1 = dict(corr="c1", start=0, end=5000)
    srd = ev("start_ramp_down", 0, target=6.5, prev=10.0, **c1)
    erd = ev("end_ramp_down", 60, target=6.5, prev=10.0, **c1)
    c2 = dict(corr="c2", start=1000, end=2000)
    c2_srd = ev("start_ramp_down", 1000, target=5.0, prev=6.5, **c2)
    c2_erd = ev("end_ramp_down", 1030, target=5.0, prev=6.5, **c2)
    back = dict(target=6.5, prev=5.0, **c1)
    back_start, back_end = ev("start_ramp_up", 2000, **back), ev("end_ramp_up", 2030, **back)
    up = dict(target=10.0, prev=6.5, corr="c1", start=5000, end=None)
    sru, eru = ev("start_ramp_up", 5000, **up), ev("end_ramp_up", 5070, **up)
    outer, inner = derive([srd, erd, c2_srd, c2_erd, back_start, back_end, sru, eru])
    assert (inner.status, inner.superseded_by, inner.ended_at) == (
        "complete",
        outer.episode_id,
        at(2000),
    )
    assert inner.constrained_seconds == 970  # 1030 .. 2000
    assert (outer.status, outer.superseded_by, outer.missing, outer.flags) == (
        "complete",
        None,
        (),
        (),
    )
    assert [e.event_id for e in outer.events] == [
        x.event_id for x in (srd, erd, back_start, back_end, sru, eru)
    ]
    assert outer.constrained_seconds == (1000 - 60) + (5000 - 2030)  # its own target only
    assert (outer.ramp_up_started_at, outer.ramp_up_seconds) == (at(5000), 70)
    assert outer.load_w["start_ramp_up"] == 6.5 * MW  # its closing ramp, not the way back


def test_an_override_to_the_default_hands_the_feed_back() -> None:
    # c1 holds 3 MW; o1 (a null target: the default) lifts it for a while; then the feed
    # goes back to c1's 3 MW with an event of c1's from the default.
    srd = ev("start_ramp_down", 0, corr="c1", target=3.0, prev=8.0, calc=8.0, end=None)
    erd = ev("end_ramp_down", 300, corr="c1", target=3.0, prev=8.0, calc=3.0, end=None)
    o1 = dict(corr="o1", target=8.0, prev=3.0, start=600, end=900)
    lift = [ev("start_ramp_up", 600, calc=3.0, **o1), ev("end_ramp_up", 900, calc=7.0, **o1)]
    again = ev("start_ramp_down", 900, corr="c1", target=3.0, prev=8.0, calc=7.0, end=None)
    c1, override = derive([srd, erd, *lift, again], now=at(1000))
    assert (override.superseded_by, override.ended_at, override.open) == (
        c1.episode_id,
        at(900),
        False,
    )
    assert (c1.status, c1.open, c1.superseded_by) == ("in_progress", True, None)
    assert c1.ignored_events == (again,)  # a second start_ramp_down, flagged...
    assert any(f.startswith("repeated: a second start_ramp_down") for f in c1.flags)
    assert c1.constrained_seconds == 300 + 100  # ...that gave it the feed back at 900


def test_a_take_back_ends_the_newer_target_even_when_its_own_hand_back_was_not_stored() -> None:
    # c1 holds 3 MW; o1 lifts it to the default; c2 (3 MW) takes over from o1. o1's hand-back
    # when c2 ended was byte-identical to its first event, so stored once (not here). c1's
    # take-back from o1's default at 1180 says the feed has moved on from c2 too.
    c1 = dict(corr="c1", target=3.0, prev=10.0, end=None)
    srd, erd = ev("start_ramp_down", 0, calc=10.0, **c1), ev("end_ramp_down", 420, **c1)
    lift = ev("start_ramp_up", 1000, corr="o1", target=10.0, prev=3.0, calc=3.0, end=1180)
    c2 = dict(corr="c2", target=3.0, prev=10.0, start=1060, end=1120)
    c2_srd, c2_erd = ev("start_ramp_down", 1060, calc=4.0, **c2), ev("end_ramp_down", 1110, **c2)
    back = ev("start_ramp_down", 1180, calc=4.0, **c1)  # its end: c1's first, stored once
    first, override, second = derive([srd, erd, lift, c2_srd, c2_erd, back], now=at(1300))
    assert (override.superseded_by, second.superseded_by) == (second.episode_id, first.episode_id)
    assert (second.status, second.open, second.ended_at) == ("complete", False, at(1180))
    assert (first.status, first.open, first.superseded_by) == ("in_progress", True, None)
    assert first.constrained_seconds == (1000 - 420) + (1300 - 1180)


def test_an_outer_target_takes_the_feed_back_from_whichever_nested_one_held_it_last() -> None:
    # c2 (5 MW) nested in c1 (6.5 MW), c3 (3 MW) nested in c2 but outlasting it: when c2
    # ends c3 keeps the feed (no event); when c3 ends c1 comes back from c3's 3 MW.
    c1 = dict(corr="c1", start=0, end=6000)
    srd, erd = ev("start_ramp_down", 0, **c1), ev("end_ramp_down", 200, **c1)
    c2 = dict(corr="c2", target=5.0, prev=6.5, start=1000, end=3000)
    c3 = dict(corr="c3", target=3.0, prev=5.0, start=2000, end=4000)
    nested = [ev("start_ramp_down", 1000, **c2), ev("end_ramp_down", 1090, **c2)]
    nested += [ev("start_ramp_down", 2000, **c3), ev("end_ramp_down", 2120, **c3)]
    back = dict(corr="c1", target=6.5, prev=3.0, start=0, end=6000)
    back_events = [ev("start_ramp_up", 4000, **back), ev("end_ramp_up", 4210, **back)]
    up = dict(corr="c1", target=10.0, prev=6.5, start=6000, end=None)
    closing = [ev("start_ramp_up", 6000, **up), ev("end_ramp_up", 6210, **up)]
    outer, middle, inner = derive([srd, erd, *nested, *back_events, *closing])
    assert (middle.superseded_by, inner.superseded_by) == (inner.episode_id, outer.episode_id)
    assert inner.ended_at == at(4000)
    assert (outer.status, outer.superseded_by, outer.flags) == ("complete", None, ())
    assert outer.constrained_seconds == (1000 - 200) + (6000 - 4210)


def test_a_restated_ramp_to_the_target_ends_the_ramp_under_way() -> None:
    # o1 lifts the load from 3 MW to the 8 MW default; it ends on the way up, so DPS (the
    # simulator) restates the ramp "from 8 MW to 8 MW": that end is o1's ramp's end.
    o1 = dict(corr="o1", target=8.0)
    sru = ev("start_ramp_up", 0, prev=3.0, calc=3.0, start=0, end=60, **o1)
    again = ev("start_ramp_up", 60, prev=8.0, calc=4.0, start=60, end=None, **o1)
    eru = ev("end_ramp_up", 300, prev=8.0, calc=8.0, start=60, end=None, **o1)
    e = one([sru, again, eru], now=at(400))
    assert [x.event_id for x in e.events] == [sru.event_id, eru.event_id]
    assert e.ignored_events == (again,)
    assert (e.status, e.missing, e.compliant, e.ramp_up_seconds) == ("in_progress", (), True, 300)
    assert e.constrained_seconds == 100
    assert [f.split(" (")[0] for f in e.flags] == ["repeated: a second start_ramp_up"]
    # Without its end the restatement changes nothing: the ramp is still under way.
    assert one([sru, again], now=at(400)).ramp_up_ended_at is None


def test_a_raise_then_back_to_the_default_closes_an_increase() -> None:
    # c1 holds 6.5 MW; c2 allows 8 MW (an increase), then ends: up again, to the default.
    sru = ev("start_ramp_up", 0, corr="c2", target=8.0, prev=6.5, calc=6.5, end=600)
    eru = ev("end_ramp_up", 90, corr="c2", target=8.0, prev=6.5, calc=8.0, end=600)
    back = dict(corr="c2", target=10.0, prev=8.0, start=600, end=None)
    up_again = [ev("start_ramp_up", 600, calc=8.0, **back), ev("end_ramp_up", 720, **back)]
    e = one([sru, eru, *up_again])
    assert (e.kind, e.status, e.open, e.ended_at) == ("increase", "complete", False, at(720))
    assert e.constrained_seconds == 510 and e.ramp_up_seconds == 90
    assert any(f.startswith("closing: a second ramp up to 10 MW") for f in e.flags)


def test_a_ramp_that_fits_no_role_is_ignored_and_flagged() -> None:
    events = curtailment("c1", 0)
    odd = ev("start_ramp_down", 30, target=2.0, prev=4.0, end=3660)  # neither to nor from 6.5
    e = one([*events, odd])
    assert e.status == "complete" and e.ignored_events == (odd,)
    assert any(f.startswith("repeated: a second start_ramp_down") for f in e.flags)
    stray = ev("start_ramp_up", 30, corr="c1", target=2.0, prev=4.0)
    assert any(f.startswith("unexpected: a start_ramp_up") for f in one([*events[:2], stray]).flags)


def test_two_feeds_overlapping_in_time_are_separate_episodes() -> None:
    a = curtailment("grid-1", 0, feed="f1")
    b = curtailment("grid-1", 100, feed="f2", target=4.0, default=8.0, held=60)
    episodes = derive([*a, *b])
    assert [(e.feed_tag, e.correlation_id, e.status) for e in episodes] == [
        ("f1", "grid-1", "complete"),
        ("f2", "grid-1", "complete"),
    ]
    assert episodes[0].superseded_by is None and episodes[1].superseded_by is None
    assert episodes[1].requested_reduction_w == 4 * MW and episodes[1].constrained_seconds == 60


def test_without_a_correlation_id_the_sequence_cuts_episodes() -> None:
    first = curtailment(_OMIT, 0)
    second = curtailment(_OMIT, 10_000)
    a, b = derive([*second, *first])
    assert a.correlation_id is None and a.status == "complete"
    assert [x.event_id for x in a.events] == [x.event_id for x in first]
    assert [x.event_id for x in b.events] == [x.event_id for x in second]
    assert a.episode_id != b.episode_id
    # A start_ramp_down while the previous one is still held opens a new one.
    third = curtailment(_OMIT, 20_000)
    fourth = curtailment(_OMIT, 20_600)
    c, d = derive([*third[:2], *fourth])
    assert c.superseded_by == d.episode_id and c.ended_at == at(20_600)
    # An empty correlation id is no id at all.
    assert one(curtailment("", 0)).correlation_id is None


def test_events_without_a_feed_tag_make_their_own_episodes() -> None:
    # The seed's curl test: no feed_tag.
    seed = ev("start_ramp_down", 0, feed=_OMIT, corr="test-001", calc=9.8, compliant=False)
    untagged, tagged = derive([seed, *curtailment("test-001", 5)])
    assert (untagged.feed_tag, untagged.correlation_id) == (None, "test-001")
    assert [x.event_id for x in untagged.events] == [seed.event_id]
    assert untagged.status == "stalled"  # its ramp down never ended
    assert (tagged.feed_tag, tagged.status) == ("f1", "complete")
    assert untagged.episode_id != tagged.episode_id


def test_episodes_come_oldest_first() -> None:
    episodes = derive([*curtailment("b", 5000, feed="f2"), *curtailment("a", 0)])
    assert [e.correlation_id for e in episodes] == ["a", "b"]


def test_overlaps_a_range() -> None:
    e = one(curtailment("c1", 1000))  # 1000 .. 4720
    assert e.overlaps(at(0), at(1001)) and e.overlaps(at(4719), at(9000))
    assert e.overlaps(at(2000), at(3000))  # inside, no event received then
    assert not e.overlaps(at(0), at(1000)) and not e.overlaps(at(4721), at(9000))
    held = one(curtailment("c1", 1000)[:2])  # open: goes on up to now, no further
    assert held.overlaps(at(90_000), at(99_000)) and held.overlaps(NOW - DEADLINE, NOW)
    assert not held.overlaps(NOW, NOW + timedelta(days=30))  # the future holds none of it
    assert not held.overlaps(at(0), at(1000))  # ends before it began


def test_an_open_episode_goes_on_up_to_now_never_beyond() -> None:
    """Issue 15 item 2: a stalled or held episode's figures stop at the clock."""
    stalled = one(curtailment("c1", 1000)[:1])  # a ramp down that never ended
    held = one(curtailment("c2", 1000, feed="f2")[:2])  # held at its target
    assert stalled.status == "stalled" and held.status == "in_progress"
    assert held.held_spans == ((at(1060), NOW),)
    assert held.constrained_seconds == (NOW - at(1060)).total_seconds()
    future = (NOW + timedelta(days=1), NOW + timedelta(days=31))
    for episode in (stalled, held):
        assert not episode.overlaps(*future)
        assert episode.share(*future).constrained_seconds in (None, 0.0)
    assert held.share(*future).requested_energy_wh == 0.0


def test_format_duration() -> None:
    seconds = (0, 2.5, 42, 89, 90, 252, 1800, 3600, 7500, 90061, 3 * 86400 + 7200)
    assert [format_duration(s) for s in seconds] == [
        "0 s",
        "2.5 s",
        "42 s",
        "89 s",
        "1 min 30 s",
        "4 min 12 s",
        "30 min",
        "1 h 00 min",
        "2 h 05 min",
        "25 h 01 min",
        "3 d 02 h",
    ]
    assert format_duration(None) == "—" and format_duration(None, missing="-") == "-"


# --- arrival order does not change the story --------------------------------------------------

_KINDS = ("curtailment", "increase")


@st.composite
def histories(draw: st.DrawFn) -> list[list[StoredEvent]]:
    """Episodes on two feeds, each a list of its events (some never received)."""
    episodes: list[list[StoredEvent]] = []
    for feed in ("f1", "f2"):
        clock = draw(st.integers(0, 3600))
        for n in range(draw(st.integers(1, 3))):
            corr = f"{feed}-{n}"
            kind = draw(st.sampled_from(_KINDS))
            gaps = draw(st.lists(st.integers(1, 4000), min_size=4, max_size=4))
            calcs = draw(st.lists(st.sampled_from([5.0, 6.5, 8.0, 10.0]), min_size=4, max_size=4))
            kept = draw(st.lists(st.booleans(), min_size=4, max_size=4).filter(any))
            target, other = (6.5, 10.0) if kind == "curtailment" else (8.0, 7.0)
            first, second = ("down", "up") if kind == "curtailment" else ("up", "down")
            times = [clock + sum(gaps[: i + 1]) for i in range(4)]
            turn = times[2]
            spec = [
                (f"start_ramp_{first}", target, other, clock, turn),
                (f"end_ramp_{first}", target, other, clock, turn),
                (f"start_ramp_{second}", other, target, turn, None),
                (f"end_ramp_{second}", other, target, turn, None),
            ]
            events = [
                ev(
                    name,
                    times[i],
                    corr=corr,
                    feed=feed,
                    target=t,
                    prev=p,
                    calc=calcs[i],
                    start=s,
                    end=e,
                )
                for i, (name, t, p, s, e) in enumerate(spec)
                if kept[i]
            ]
            episodes.append(events)
            clock = times[3] + draw(st.integers(1, 4000))
    return episodes


def _story(episodes: list[Episode]) -> dict[str, tuple[Any, ...]]:
    """What must not depend on arrival order: everything but the times and flags."""
    return {
        e.episode_id: (
            e.feed_tag,
            e.correlation_id,
            e.kind,
            e.status,
            e.open,
            tuple(x.event_id for x in e.events),
            e.missing,
            e.superseded_by,
            e.target_w,
            e.prev_target_w,
            e.requested_reduction_w,
            e.compliant,
            e.interval_start,
            e.interval_end,
        )
        for e in episodes
    }


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_tells_the_same_episodes(
    history: list[list[StoredEvent]], rng: random.Random
) -> None:
    in_order = [e for episode in history for e in episode]
    # Each episode's events arrive in another order: they swap receipt times.
    shuffled: list[StoredEvent] = []
    for episode in history:
        times = [e.received_at for e in episode]
        rng.shuffle(times)
        shuffled.extend(normalise(e.payload, t) for e, t in zip(episode, times, strict=True))
    rng.shuffle(shuffled)
    now = max(e.received_at for e in in_order) + timedelta(days=1)
    assert _story(derive(shuffled, now)) == _story(derive(in_order, now))
    # The order events are handed over in changes nothing at all.
    again = list(in_order)
    rng.shuffle(again)
    assert derive(again, now) == derive(in_order, now)


def test_feed_state_follows_the_same_order() -> None:
    # gridhook state and the episodes share one ordering rule (gridhook/episodes/ordering.py).
    from gridhook.state import feed_state

    srd, erd, sru, eru = curtailment("c1", 0)
    crosswise = [redelivered(x, i) for i, x in enumerate((sru, eru, srd, erd))]
    state = feed_state(crosswise, now=NOW, ramp_deadline=DEADLINE)
    assert state is not None and state.phase == "steady"
    assert state.last_event_id == one(crosswise).events[-1].event_id
