"""Feed state derived from events, and drift rules (pure logic; the simulator tests in
tests/integration/test_subscriptions.py cover the same through real gRPC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from gridhook.events import normalise
from gridhook.observe import check_drift
from gridhook.state import feed_state, order_events
from gridhook.subscriptions import url_with_token
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(event: str, seconds: float, corr: str = "c1", target: float = 6.5, feed: str = "f1"):
    payload = {
        **SEED_PAYLOAD,
        "event": event,
        "feed_tag": feed,
        "correlation_id": corr,
        "target_load": {"value": target, "unit": "mw"},
    }
    return normalise(payload, T0 + timedelta(seconds=seconds))


def test_phases_follow_the_events() -> None:
    assert feed_state([]) is None
    assert feed_state([ev("start_ramp_down", 0)]).phase == "ramping_down"
    state = feed_state([ev("start_ramp_down", 0), ev("end_ramp_down", 5)])
    assert state.phase == "constrained" and state.since == T0 + timedelta(seconds=5)
    assert feed_state([ev("start_ramp_up", 9), ev("end_ramp_up", 12)]).phase == "steady"


def test_end_follows_start_even_when_it_arrived_first() -> None:
    end = ev("end_ramp_down", 1)
    start = ev("start_ramp_down", 2)  # delivered late
    assert [e.event for e in order_events([end, start])] == ["start_ramp_down", "end_ramp_down"]
    assert feed_state([end, start]).phase == "constrained"


def test_reordering_only_within_an_episode() -> None:
    # An old episode's late start does not reopen it after a newer episode ended.
    events = [ev("end_ramp_up", 10, corr="c2"), ev("start_ramp_down", 11, corr="c1")]
    assert feed_state(events).phase == "ramping_down"


def status(corr: str | None, mw: float | None, started: datetime | None = None):
    load = None if mw is None else SimpleNamespace(value=mw, unit="mw")
    target = SimpleNamespace(target_load=load, correlation_id=corr or "", start_time=started)
    return SimpleNamespace(current_target=target, calculated_load=None)


def test_drift_rules() -> None:
    constrained = feed_state([ev("start_ramp_down", 0), ev("end_ramp_down", 5)])
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
