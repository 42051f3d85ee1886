"""Episodes from the events the DPS simulator's own ramp model sends (no network: the engine
is driven step by step on its clock, each event received the moment it is published)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gridhook.episodes import Episode, derive_episodes
from gridhook.events import StoredEvent, normalise
from simulator.clock import SimClock
from simulator.config import default_feeds
from simulator.engine import RampEngine
from simulator.schedule import Schedule

START = datetime(2026, 3, 1, 8, tzinfo=UTC)
MIN = timedelta(minutes=1)


def run_day(targets: list[dict], minutes: int) -> list[StoredEvent]:
    """The events of ``minutes`` simulated minutes with ``targets`` scheduled (in order)."""
    clock = SimClock(speed=1e-9, start=START)  # stands still unless advanced
    schedule = Schedule()
    received: list[StoredEvent] = []
    engine = RampEngine(
        default_feeds(),
        schedule,
        clock,
        ramp_rate_mw_per_minute=1.0,
        publish=lambda _, payload: received.append(normalise(payload, clock.now())),
    )
    schedule.add(
        {
            "start": START + t["at"] * MIN,
            "end": START + t["until"] * MIN if t.get("until") else None,
            "value_watts": t["mw"] * 1e6 if t["mw"] is not None else None,
            "requested_value": t["mw"],
            "requested_unit": 3,
            "best_effort": True,
            "feed_tags": (t.get("feed", "main_power_feed"),),
            "correlation_id": t["id"],
        }
        for t in targets
    )
    for _ in range(minutes * 6):
        clock.advance(timedelta(seconds=10))
        engine.tick()
    return received


def episodes(events: list[StoredEvent]) -> dict[str, Episode]:
    now = events[-1].received_at + timedelta(minutes=1)
    found = derive_episodes(events, now=now, ramp_deadline=timedelta(minutes=30))
    return {e.correlation_id or "": e for e in found}


def test_a_curtailment_from_the_simulator() -> None:
    got = episodes(run_day([{"id": "c1", "at": 10, "until": 70, "mw": 6.5}], 120))
    c1 = got["c1"]
    assert (c1.status, c1.kind, c1.missing, c1.flags) == ("complete", "curtailment", (), ())
    assert (c1.prev_target_w, c1.target_w, c1.compliant) == (10e6, 6.5e6, True)
    # 3.5 MW at 1 MW a minute, seen in 10-second steps.
    assert c1.ramp_down_seconds == pytest.approx(210, abs=10)
    assert c1.ramp_up_seconds == pytest.approx(210, abs=10)
    assert c1.constrained_seconds == 3600 - c1.ramp_down_seconds
    assert c1.requested_energy_wh == 3.5e6 * c1.constrained_seconds / 3600
    assert c1.interval_start == START + 10 * MIN and c1.interval_end == START + 70 * MIN


def test_a_new_target_while_held_replaces_the_old_one() -> None:
    got = episodes(
        run_day(
            [
                {"id": "c1", "at": 10, "until": 70, "mw": 6.5},
                {"id": "c2", "at": 40, "until": 100, "mw": 5.0},  # scheduled later: wins
            ],
            150,
        )
    )
    c1, c2 = got["c1"], got["c2"]
    assert c1.superseded_by == c2.episode_id and c1.status == "complete"
    assert c1.ended_at == START + 40 * MIN and c1.ramp_up_started_at is None
    assert c1.constrained_seconds == (START + 40 * MIN - c1.ramp_down_ended_at).total_seconds()
    assert (c2.prev_target_w, c2.target_w, c2.requested_reduction_w) == (6.5e6, 5e6, 1.5e6)
    # c1's interval ended under c2; when c2 ends the feed goes back to the default.
    assert (c2.status, c2.superseded_by, c2.open) == ("complete", None, False)
    assert c2.ramp_up_started_at == START + 100 * MIN
    assert (c1.flags, c2.flags) == ((), ())


def test_a_nested_target_hands_the_feed_back() -> None:
    # c2 (5 MW) inside c1 (6.5 MW): when c2 ends, the simulator goes back to c1's target with
    # c1's correlation id (a resume), and to the default when c1 ends.
    got = episodes(
        run_day(
            [
                {"id": "c1", "at": 10, "until": 120, "mw": 6.5},
                {"id": "c2", "at": 40, "until": 80, "mw": 5.0},
            ],
            150,
        )
    )
    c1, c2 = got["c1"], got["c2"]
    assert (c2.status, c2.open, c2.superseded_by) == ("complete", False, c1.episode_id)
    assert c2.ended_at == START + 80 * MIN
    assert c2.constrained_seconds == (START + 80 * MIN - c2.ramp_down_ended_at).total_seconds()
    assert (c1.status, c1.open, c1.superseded_by, c1.missing) == ("complete", False, None, ())
    assert len(c1.events) == 6  # its ramp down, the ramp back from c2, its ramp up
    # Held at its own target before c2 and after the ramp back from c2 reached it.
    resumed_at = c1.events[3].received_at  # end of the ramp back up to 6.5 MW
    before = (START + 40 * MIN - c1.ramp_down_ended_at).total_seconds()
    after = (c1.ramp_up_started_at - resumed_at).total_seconds()
    assert c1.constrained_seconds == before + after
    assert c1.ramp_up_started_at == START + 120 * MIN and c1.prev_target_w == 10e6
    assert c1.load_w["start_ramp_up"] == 6.5e6  # its own ramp up, not the ramp back
    assert (c1.flags, c2.flags) == ((), ())


def test_a_target_that_ends_before_it_is_reached() -> None:
    got = episodes(run_day([{"id": "short", "at": 10, "until": 12, "mw": 4.0}], 30))
    short = got["short"]
    assert (short.status, short.missing, short.compliant) == ("complete", (), False)
    assert short.constrained_seconds == 0.0
    assert any(f.startswith("interrupted: the ramp down stopped at 8 MW") for f in short.flags)


def test_a_target_above_the_default_is_an_increase() -> None:
    got = episodes(
        run_day([{"id": "up", "at": 10, "until": 40, "mw": 9.0, "feed": "backup_power_feed"}], 60)
    )
    up = got["up"]
    assert (up.kind, up.status, up.feed_tag) == ("increase", "complete", "backup_power_feed")
    assert (up.prev_target_w, up.target_w, up.requested_reduction_w) == (8e6, 9e6, -1e6)
    assert up.ramp_up_seconds == pytest.approx(60, abs=10)
    assert up.ramp_down_seconds == pytest.approx(60, abs=10)
    assert up.constrained_seconds == 30 * 60 - up.ramp_up_seconds


def test_a_hand_back_sent_as_a_redelivery_still_ends_the_nested_target() -> None:
    # c1 holds 3 MW; o1 lifts it to the default; c2 (3 MW) takes over inside o1 and ends
    # first. o1's hand-back repeats its first start_ramp_up byte for byte (the load was at
    # 3 MW both times), so it is stored once: c2 must still end when c1 takes the feed back.
    got = episodes(
        run_day(
            [
                {"id": "c1", "at": 1, "mw": 3.0},
                {"id": "o1", "at": 185, "until": 188, "mw": None},
                {"id": "c2", "at": 186, "until": 187, "mw": 3.0},
            ],
            200,
        )
    )
    c1, o1, c2 = got["c1"], got["o1"], got["c2"]
    assert (o1.open, o1.superseded_by) == (False, c2.episode_id)
    assert (c2.status, c2.open, c2.superseded_by) == ("complete", False, c1.episode_id)
    assert c2.ended_at == START + 188 * MIN  # when c1 took the feed back from o1's default
    assert (c1.status, c1.open, c1.superseded_by, c1.missing) == ("in_progress", True, None, ())


def test_an_override_ending_before_the_load_got_there_restates_its_ramp() -> None:
    # o1 (the default, 8 MW) takes the feed from c1 at 25 min; it ends at 26 min while the
    # load is still on its way up, so the simulator restates the ramp up "from 8 MW to
    # 8 MW": its end is the end of o1's ramp, not a ramp that fits nothing.
    override = {"id": "o1", "at": 1, "until": 26, "mw": None, "feed": "backup_power_feed"}
    inside = {"id": "c1", "at": 1, "until": 25, "mw": 3.0, "feed": "backup_power_feed"}
    o1 = episodes(run_day([override, inside], 60))["o1"]
    assert (o1.kind, o1.status, o1.open, o1.missing) == ("increase", "in_progress", True, ())
    assert (o1.prev_target_w, o1.target_w, o1.compliant) == (3e6, 8e6, True)
    assert o1.ramp_up_started_at == START + 25 * MIN
    assert o1.ramp_up_seconds == pytest.approx(300, abs=10)  # 5 MW at 1 MW a minute
    assert len(o1.ignored_events) == 1  # the restated start, flagged
    assert [f.split(" (")[0] for f in o1.flags] == ["repeated: a second start_ramp_up"]


@st.composite
def schedules(draw: st.DrawFn) -> list[dict]:
    """Targets on the simulator's two feeds, overlapping, nested, open-ended or not."""
    targets = []
    for n in range(draw(st.integers(1, 5))):
        start = draw(st.integers(1, 200))
        length = draw(st.one_of(st.none(), st.integers(1, 120)))
        targets.append(
            {
                "id": draw(st.sampled_from(["", f"t{n}", f"t{n}"])),  # "" = the simulator's own
                "at": start,
                "until": None if length is None else start + length,
                "mw": draw(st.sampled_from([None, 3.0, 5.0, 6.5, 9.0])),
                "feed": draw(st.sampled_from(["main_power_feed", "backup_power_feed"])),
            }
        )
    return targets


# Schedules that once failed (together about 1 random schedule in 2500, so 1-2% of runs):
# a hand-back stored once as a redelivery; an override to the default ending mid-ramp; a
# takeover that moved no load (no event) before a hand-back stored once, so the ramp cut
# short really is stalled.
@example(
    [
        {"id": "", "at": 1, "until": None, "mw": 3.0, "feed": "main_power_feed"},
        {"id": "", "at": 185, "until": 188, "mw": None, "feed": "main_power_feed"},
        {"id": "", "at": 186, "until": 187, "mw": 3.0, "feed": "main_power_feed"},
    ]
)
@example(
    [
        {"id": "", "at": 1, "until": 26, "mw": None, "feed": "backup_power_feed"},
        {"id": "", "at": 1, "until": None, "mw": None, "feed": "main_power_feed"},
        {"id": "", "at": 1, "until": 78, "mw": 3.0, "feed": "main_power_feed"},
        {"id": "", "at": 1, "until": 25, "mw": 3.0, "feed": "backup_power_feed"},
    ]
)
@example(
    [
        {"id": "t0", "at": 36, "until": 144, "mw": 6.5, "feed": "backup_power_feed"},
        {"id": "", "at": 1, "until": None, "mw": 3.0, "feed": "backup_power_feed"},
        {"id": "t2", "at": 94, "until": 181, "mw": 9.0, "feed": "backup_power_feed"},
        {"id": "t3", "at": 182, "until": 290, "mw": None, "feed": "backup_power_feed"},
        {"id": "t4", "at": 77, "until": 114, "mw": 6.5, "feed": "backup_power_feed"},
    ]
)
@settings(max_examples=40, deadline=None)
@given(schedules())
def test_any_schedule_tells_a_coherent_story(targets: list[dict]) -> None:
    events = run_day([{**t, "id": t["id"] or f"sim-{i}"} for i, t in enumerate(targets)], 330)
    if not events:
        return
    now = events[-1].received_at + timedelta(minutes=1)
    found = derive_episodes(events, now=now, ramp_deadline=timedelta(hours=1))
    stored: dict[str, StoredEvent] = {}
    for e in events:  # an identical payload sent twice is one event, as in a store
        stored.setdefault(e.event_id, e)  # the first receipt wins
    seen = [e.event_id for ep in found for e in (*ep.events, *ep.ignored_events)]
    assert sorted(seen) == sorted(stored)  # each event told once
    for feed in {ep.feed_tag for ep in found}:
        assert len([ep for ep in found if ep.feed_tag == feed and ep.open]) <= 1
    for ep in found:
        assert ep.missing == ()  # the simulator drops nothing
        if ep.status == "stalled":  # only when nothing more was stored on the feed
            last = max(e.received_at for e in stored.values() if e.feed_tag == ep.feed_tag)
            assert ep.open and last == max(e.received_at for e in ep.events)
        else:
            assert ep.status in ("complete", "in_progress")
        for seconds in (ep.ramp_down_seconds, ep.ramp_up_seconds, ep.constrained_seconds):
            assert seconds is None or seconds >= 0
        span = ((ep.ended_at or now) - ep.opened_at).total_seconds()
        assert ep.constrained_seconds is None or ep.constrained_seconds <= span
