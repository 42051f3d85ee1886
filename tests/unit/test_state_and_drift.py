"""Feed state derived from events, and drift rules (pure logic; the simulator tests in
tests/integration/test_subscriptions.py cover the same through real gRPC, and
tests/integration/test_state_store.py the state read from every store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from gridhook.episodes import derive_episodes
from gridhook.episodes.ordering import order_events
from gridhook.events import StoredEvent, normalise
from gridhook.observe import check_drift
from gridhook.state import FeedState, feed_state, feed_states
from gridhook.subscriptions import url_with_token
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEADLINE = timedelta(minutes=30)


def ev(
    event: str,
    seconds: float,
    corr: str = "c1",
    target: float = 6.5,
    feed: str = "f1",
    *,
    prev: float = 10.0,
    calc: float | None = None,
    compliant: bool | None = None,
):
    payload = {
        **SEED_PAYLOAD,
        "event": event,
        "feed_tag": feed,
        "correlation_id": corr,
        "target_load": {"value": target, "unit": "mw"},
        "prev_target_load": {"value": prev, "unit": "mw"},
    }
    if calc is not None:
        payload["calculated_load"] = {"value": calc, "unit": "mw"}
    if compliant is not None:
        payload["compliant"] = compliant
    return normalise(payload, T0 + timedelta(seconds=seconds))


def state_of(events: list[StoredEvent], now: datetime = T0 + timedelta(minutes=10)):
    """The feed's state judged at ``now`` (by default well inside the ramp deadline)."""
    return feed_state(events, now=now, ramp_deadline=DEADLINE)


def test_phases_follow_the_events() -> None:
    assert state_of([]) is None
    assert state_of([ev("start_ramp_down", 0)]).phase == "ramping_down"
    state = state_of([ev("start_ramp_down", 0), ev("end_ramp_down", 5)])
    assert state.phase == "constrained" and state.since == T0 + timedelta(seconds=5)
    assert state_of([ev("start_ramp_up", 9), ev("end_ramp_up", 12)]).phase == "steady"


def test_end_follows_start_even_when_it_arrived_first() -> None:
    end = ev("end_ramp_down", 1)
    start = ev("start_ramp_down", 2)  # delivered late
    assert [e.event for e in order_events([end, start])] == ["start_ramp_down", "end_ramp_down"]
    assert state_of([end, start]).phase == "constrained"


def test_reordering_only_within_an_episode() -> None:
    # An old episode's late start does not reopen it after a newer episode ended.
    events = [ev("end_ramp_up", 10, corr="c2"), ev("start_ramp_down", 11, corr="c1")]
    assert state_of(events).phase == "ramping_down"


# -- the episode's verdicts: stalled and target met ------------------------------------


def a_curtailment(corr: str, begin: float, *, reached: float, target: float = 4.5):
    """The four events of a curtailment from 8 MW to ``target``, reaching ``reached``."""
    down, up = dict(target=target, prev=8.0), dict(target=8.0, prev=target)
    met = reached <= target
    return [
        ev("start_ramp_down", begin, corr, **down, calc=8.0, compliant=False),
        ev("end_ramp_down", begin + 600, corr, **down, calc=reached, compliant=met),
        ev("start_ramp_up", begin + 4000, corr, **up, calc=reached, compliant=True),
        ev("end_ramp_up", begin + 4600, corr, **up, calc=8.0, compliant=True),
    ]


def test_a_ramp_up_that_lost_its_end_is_stalled_past_the_deadline() -> None:
    # The demo's evening peak: target met, then the end_ramp_up webhook is dropped.
    srd, erd, sru, _lost = a_curtailment("evening", 0, reached=4.5)
    events = [srd, erd, sru]
    inside = state_of(events, now=sru.received_at + DEADLINE)
    assert (inside.phase, inside.stalled, inside.episode_status) == (
        "ramping_up",
        False,
        "in_progress",
    )
    three_hours = state_of(events, now=sru.received_at + timedelta(hours=3))
    assert three_hours.phase == "ramping_up" and three_hours.since == sru.received_at
    assert three_hours.stalled and three_hours.episode_status == "stalled"
    assert three_hours.compliant is True  # its target was met; the ramp up stalled
    # The episode derivation says the same: one episode, that one.
    (episode,) = derive_episodes(
        events, now=sru.received_at + timedelta(hours=3), ramp_deadline=DEADLINE
    )
    assert (three_hours.episode_id, three_hours.episode_status) == (
        episode.episode_id,
        episode.status,
    )
    # Its end, once received, explains it.
    assert not state_of([*events, _lost], now=sru.received_at + timedelta(hours=3)).stalled


def test_target_met_is_the_episodes_verdict_not_the_last_events_flag() -> None:
    missed = a_curtailment("missed", 0, reached=5.2)  # 4.5 MW asked, 5.2 MW reached
    assert missed[-1].compliant is True  # what the ramp-up events carry
    ramping_down = state_of(missed[:1])
    assert ramping_down.compliant is None  # not judged until the ramp down ends
    for count in (2, 3, 4):  # constrained, ramping up, steady: the target was not met
        state = state_of(missed[:count], now=T0 + timedelta(hours=2))
        assert state.compliant is False, state.phase
    # The next curtailment's own verdict replaces it.
    met = a_curtailment("met", 9000, reached=4.4)
    after = state_of([*missed, *met[:2]], now=T0 + timedelta(hours=3))
    assert (after.correlation_id, after.phase, after.compliant) == ("met", "constrained", True)


def test_feed_states_keeps_feeds_apart_and_feed_state_wants_one() -> None:
    events = [ev("start_ramp_down", 0, "a", feed="f1"), ev("end_ramp_up", 5, "b", feed="f2")]
    states = feed_states(events, now=T0 + timedelta(minutes=1), ramp_deadline=DEADLINE)
    assert {tag: s.phase for tag, s in states.items()} == {"f1": "ramping_down", "f2": "steady"}
    assert states["f2"].last_received_at == T0 + timedelta(seconds=5)
    with pytest.raises(ValueError, match="one feed"):
        state_of(events)


def status(corr: str | None, mw: float | None, started: datetime | None = None):
    load = None if mw is None else SimpleNamespace(value=mw, unit="mw")
    target = SimpleNamespace(target_load=load, correlation_id=corr or "", start_time=started)
    return SimpleNamespace(current_target=target, calculated_load=None)


def test_drift_rules() -> None:
    constrained = state_of([ev("start_ramp_down", 0), ev("end_ramp_down", 5)])
    ours = {"f1": constrained}
    assert check_drift({"f1": status("c1", 6.5)}, ours) == []
    assert check_drift({"f1": status(None, None)}, {}) == []  # nothing happened anywhere
    (unseen,) = check_drift({"f1": status("c9", 6.5)}, ours)
    assert "c9" in unseen["message"]
    (value,) = check_drift({"f1": status("c1", 7.0)}, ours)
    assert "7e+06 W" in value["message"] or "7000000" in value["message"]
    (missed_up,) = check_drift({"f1": status(None, None)}, ours)
    assert "start_ramp_up" in missed_up["message"]
    (never,) = check_drift({"f2": status("c1", 6.5)}, ours)
    assert never["feed_tag"] == "f2" and never["ours"] == {"phase": "no events received"}


def test_recent_targets_get_a_grace_period() -> None:
    now = T0 + timedelta(minutes=10)
    recent = status("c9", 6.5, started=now - timedelta(seconds=30))
    grace = timedelta(minutes=2)
    assert check_drift({"f1": recent}, {}, now=now, grace=grace) == []
    old = status("c9", 6.5, started=now - timedelta(minutes=5))
    assert len(check_drift({"f1": old}, {}, now=now, grace=grace)) == 1


def test_url_with_token_replaces_only_the_token() -> None:
    assert url_with_token("https://h/p?a=1&token=REDACTED", "T") == "https://h/p?a=1&token=T"
    assert url_with_token("https://h/p", None) == "https://h/p"


# -- a snapshot older than our events is no evidence --------------------------------------


def test_no_drift_from_a_snapshot_older_than_our_last_event() -> None:
    """DPS was asked at ``asked``; a curtailment began after: its start_ramp_down is in our
    view and not in DPS's. That is the race of issue 15 item 13, not a lost webhook."""
    asked = T0 + timedelta(seconds=100)
    back_at_default = {"f1": status(None, None)}
    started_after = {"f1": state_of([ev("start_ramp_down", 101)])}
    assert check_drift(back_at_default, started_after, snapshot_at=asked) == []
    # Without the snapshot's time it looked like a lost start_ramp_up (the old behaviour).
    (false_drift,) = check_drift(back_at_default, started_after)
    assert "start_ramp_up was not received" in false_drift["message"]
    # An event received at the moment we asked may be missing from the snapshot as well.
    at_once = {"f1": state_of([ev("start_ramp_down", 100)])}
    assert check_drift(back_at_default, at_once, snapshot_at=asked) == []
    # A target replaced after the snapshot, or ended after it: no evidence either.
    replaced = {
        "f1": state_of(
            [ev("start_ramp_down", 10, "c1"), ev("start_ramp_down", 150, "c2", target=5.0)]
        )
    }
    assert check_drift({"f1": status("c1", 6.5)}, replaced, snapshot_at=asked) == []
    ending = {
        "f1": state_of([ev("end_ramp_down", 10), ev("start_ramp_up", 120, target=10.0, prev=6.5)])
    }
    assert check_drift({"f1": status("c1", 6.5)}, ending, snapshot_at=asked) == []


def test_a_snapshot_newer_than_our_events_is_still_compared() -> None:
    asked = T0 + timedelta(hours=1)
    ours = {"f1": state_of([ev("start_ramp_down", 0), ev("end_ramp_down", 60)])}
    (lost_up,) = check_drift({"f1": status(None, None)}, ours, snapshot_at=asked)
    assert "start_ramp_up was not received" in lost_up["message"]
    (unseen,) = check_drift({"f1": status("c9", 5.0)}, ours, snapshot_at=asked)
    assert "c9" in unseen["message"]
    # A state without a receipt time (built by hand) is compared as before.
    bare = FeedState("f1", "constrained", T0, "c1", 6.5e6, 1e7, 6.5e6, True, "end_ramp_down", "x")
    assert len(check_drift({"f1": status(None, None)}, {"f1": bare}, snapshot_at=asked)) == 1
