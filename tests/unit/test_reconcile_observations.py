"""What the jobs keep besides registrations: load samples from DPS's status (sample_load's,
no longer reconcile's) and stalled ramps (reconcile's). Pure rules here;
tests/integration/test_subscriptions.py and test_sample_load.py run the same through the
simulator, real gRPC and the real functions."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.events import normalise
from gridhook.nvgrid.models import FeedStatus, Load, LoadTarget
from gridhook.observe import load_samples, sample_feeds, stalled_ramps
from gridhook.settings import load_settings
from gridhook.state import feed_state
from gridhook.store import SampleQuery, open_store
from gridhook.subscriptions import reconcile
from tests.harness import SEED_PAYLOAD

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
DEADLINE = timedelta(minutes=30)


def ev(event: str, seconds: float, corr: str | None = "c1", target: float = 6.5, feed="f1"):
    payload = {
        **SEED_PAYLOAD,
        "event": event,
        "feed_tag": feed,
        "correlation_id": corr,
        "target_load": {"value": target, "unit": "mw"},
    }
    if corr is None:
        del payload["correlation_id"]
    return normalise(payload, T0 + timedelta(seconds=seconds))


def state_at(events: list, now: datetime):
    """The feed's state as reconcile reads it at ``now``: stalled is judged then."""
    return feed_state(events, now=now, ramp_deadline=DEADLINE)


def dps(calculated_mw: float | None, target_mw: float | None = None, corr: str = "") -> FeedStatus:
    target = LoadTarget(
        start_time=T0,
        target_load=None if target_mw is None else Load(target_mw, "mw"),
        correlation_id=corr,
    )
    calculated = None if calculated_mw is None else Load(calculated_mw, "mw")
    return FeedStatus(current_target=target, calculated_load=calculated)


# -- load samples ---------------------------------------------------------------------


def test_one_sample_per_feed_in_watts_with_dps_target_and_retention() -> None:
    status = {
        "main": dps(6.0, 6.0, corr="cut-1"),
        "backup": dps(8.0),  # on its default: no target load
        "idle": FeedStatus(current_target=None, calculated_load=Load(500, "kw")),
    }
    samples = {s.feed_tag: s for s in load_samples(status, T0, timedelta(days=30))}
    assert set(samples) == {"main", "backup", "idle"}
    main, backup, idle = samples["main"], samples["backup"], samples["idle"]
    assert (main.calculated_w, main.target_w, main.correlation_id) == (6e6, 6e6, "cut-1")
    assert (backup.calculated_w, backup.target_w, backup.correlation_id) == (8e6, None, None)
    assert (idle.calculated_w, idle.target_w, idle.correlation_id) == (5e5, None, None)
    assert all(
        s.sampled_at == T0 and s.expires_at == T0 + timedelta(days=30) for s in samples.values()
    )
    # One run, one time: one sample id per feed, distinct across feeds.
    assert len({s.sample_id for s in samples.values()}) == 3


# -- stalled ramps --------------------------------------------------------------------


def test_a_ramp_is_stalled_only_past_the_deadline() -> None:
    events = [ev("start_ramp_down", 0)]
    at_deadline = T0 + DEADLINE
    on_time = {"f1": state_at(events, at_deadline)}
    assert stalled_ramps(on_time, now=at_deadline, deadline=DEADLINE) == []
    past = at_deadline + timedelta(seconds=1)
    ours = {"f1": state_at(events, past)}
    (stall,) = stalled_ramps(ours, now=past, deadline=DEADLINE)
    assert stall["feed_tag"] == "f1" and stall["correlation_id"] == "c1"
    assert stall["missing"] == "end_ramp_down" and stall["phase"] == "ramping_down"
    assert stall["since"] == "2026-01-01T12:00:00Z"
    assert stall["start_event_id"] == ours["f1"].last_event_id
    assert stall["likely_cause"] == "unknown"  # no DPS status to compare with
    assert "missed" in stall["message"] and "mid-ramp" in stall["message"]


def test_only_ramping_phases_can_stall() -> None:
    later = T0 + timedelta(days=2)
    ours = {
        "constrained": state_at([ev("start_ramp_down", 0), ev("end_ramp_down", 60)], later),
        "steady": state_at(
            [ev("start_ramp_up", 0, feed="s"), ev("end_ramp_up", 60, feed="s")], later
        ),
        "up": state_at([ev("start_ramp_up", 0, corr="c2", target=10.0, feed="up")], later),
    }
    (stall,) = stalled_ramps(ours, now=later, deadline=DEADLINE)
    assert stall["feed_tag"] == "up" and stall["missing"] == "end_ramp_up"


def test_dps_status_says_which_cause_is_likelier() -> None:
    later = T0 + timedelta(hours=1)
    down = {"f1": state_at([ev("start_ramp_down", 0, target=6.5)], later)}
    up = {"f1": state_at([ev("start_ramp_up", 0, target=10.0)], later)}

    def cause(ours, calculated_mw):
        (stall,) = stalled_ramps(
            ours, now=later, deadline=DEADLINE, dps_status={"f1": dps(calculated_mw)}
        )
        return stall["likely_cause"], stall["dps_calculated_w"] and round(stall["dps_calculated_w"])

    assert cause(down, 6.5) == ("missed_webhook", 6.5e6)  # DPS got there: the end was lost
    assert cause(down, 6.0) == ("missed_webhook", 6e6)
    assert cause(down, 8.2) == ("dps_stopped_mid_ramp", 8.2e6)
    assert cause(up, 10.0) == ("missed_webhook", 1e7)
    assert cause(up, 7.0) == ("dps_stopped_mid_ramp", 7e6)
    assert cause(down, None) == ("unknown", None)


def test_one_stall_has_one_alert_id() -> None:
    later = T0 + timedelta(hours=1)
    first = [ev("start_ramp_down", 0)]
    (a,) = stalled_ramps({"f1": state_at(first, later)}, now=later, deadline=DEADLINE)
    even_later = later + timedelta(hours=5)
    (again,) = stalled_ramps({"f1": state_at(first, even_later)}, now=even_later, deadline=DEADLINE)
    assert a["alert_id"] == again["alert_id"]
    # Another ramp (another start event) on the same feed and correlation id is another alert.
    other = {"f1": state_at([ev("start_ramp_down", 5, target=6.0)], later)}
    (b,) = stalled_ramps(other, now=later, deadline=DEADLINE)
    assert b["alert_id"] != a["alert_id"]
    # Without a correlation id the start event still identifies the stall.
    (c,) = stalled_ramps(
        {"f1": state_at([ev("start_ramp_down", 0, corr=None)], later)}, now=later, deadline=DEADLINE
    )
    assert c["correlation_id"] is None and "no correlation id" in c["message"]


# -- reconcile with a DPS that does not tell its clock -----------------------------------


class ClocklessDps:
    """A DPS that never sends its time. The simulator always sends it (x-gridhook-sim-now),
    so no real part here can play a real DPS in this respect: a stand-in, on purpose."""

    server_clock_offset = None

    def __init__(self, status: dict[str, FeedStatus]) -> None:
        self.status = status

    def register_webhook(self, url, events=None):
        return None

    def unregister_webhook(self, url):
        return None

    def get_status(self):
        return self.status

    def server_now(self) -> datetime:
        raise AssertionError("server_now() without a server clock is the local clock, not ours")


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(
        {
            "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/events.db",
            "GRIDHOOK_WEBHOOK_URL": "http://127.0.0.1:9/nvgrid/webhook",
            "GRIDHOOK_ALLOW_UNAUTHENTICATED": "1",
            "GRIDHOOK_SAMPLE_RETENTION_DAYS": "10",
            "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS": "5",
            "GRIDHOOK_RAMP_DEADLINE_SECONDS": "60",
        }
    )


def test_without_dps_time_samples_take_our_clock(settings) -> None:
    ours = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    store = open_store(settings.store_url)
    try:
        report = sample_feeds(
            settings, store, ClocklessDps({"f1": dps(9.0)}), lambda: ours, "default"
        )
        (sample,) = store.samples(SampleQuery()).samples
    finally:
        store.close()
    assert report.status == "ok" and (report.feeds, report.samples) == (1, 1)
    assert report.sampled_at == ours and report.to_dict()["site"] == "default"
    # Raw samples keep the short retention (their hourly rollups the long one).
    assert sample.sampled_at == ours and sample.expires_at == ours + timedelta(days=5)


def test_reconcile_keeps_no_samples(settings) -> None:
    store = open_store(settings.store_url)
    try:
        report = reconcile(settings, store, ClocklessDps({"f1": dps(9.0)}), now=lambda: T0)
        samples = store.samples(SampleQuery()).samples
    finally:
        store.close()
    assert report.status == "ok" and samples == []
    assert "samples" not in report.to_dict()


def refuse_samples(settings) -> None:
    """A real SQLite failure on sample inserts only (an abort, as a full disk would give)."""
    with sqlite3.connect(settings.store_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON samples "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )


def test_a_sample_store_failure_is_reported_as_unavailable(settings) -> None:
    store = open_store(settings.store_url)
    try:
        refuse_samples(settings)
        report = sample_feeds(
            settings, store, ClocklessDps({"f1": dps(9.0)}), lambda: T0, "default"
        )
    finally:
        store.close()
    assert report.status == "unavailable"  # the job answers 503: the next run retries
    assert report.error["code"] == "store_unavailable"
    assert "storing load samples" in report.error["message"]
    assert (report.feeds, report.samples) == (1, 0)


def test_a_store_refusing_samples_does_not_touch_reconcile(settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="gridhook")
    store = open_store(settings.store_url)
    try:
        store.add_event(ev("start_ramp_down", 0))
        refuse_samples(settings)
        later = T0 + timedelta(hours=1)
        status = {"f1": dps(6.5, 6.5, corr="c1")}  # DPS agrees with our events: no drift
        report = reconcile(settings, store, ClocklessDps(status), now=lambda: later)
        alerts = store.alerts()
    finally:
        store.close()
    # Reconcile stores no sample any more: a store refusing them is no failure of its.
    assert report.status == "ok", report.to_dict()
    assert report.registered == ["http://127.0.0.1:9/nvgrid/webhook"]
    assert [s["feed_tag"] for s in report.stalled] == ["f1"] and len(alerts) == 1
    summary = [r for r in caplog.records if getattr(r, "fields", {}).get("outcome")]
    assert [r.fields["outcome"] for r in summary] == ["episode_stalled", "reconcile_ok"]
    assert "samples" not in summary[-1].fields
