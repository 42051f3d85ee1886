"""Subscription lifecycle against the DPS simulator, through real gRPC, with the real
receiver (the functions-framework app, served over HTTP from this process) storing what the
simulator delivers; the jobs' entry points in-process, and through the real server where
their logs are the point."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from gridhook import clock
from gridhook.events import rfc3339
from gridhook.nvgrid import CallPolicy, Credentials, make_endpoint
from gridhook.nvgrid.client import NvGridClient
from gridhook.settings import Settings, load_settings
from gridhook.store import EventQuery, SampleQuery, iter_events, open_store
from gridhook.subscriptions import reconcile, teardown
from simulator import Simulator
from tests.harness import TEST_TOKEN, ServedFunction, function_app, function_server
from tests.infra import tfcheck

NEW_TOKEN = "rotated-token-0123456789abcdef"
FAST = CallPolicy(
    call_timeout=1.0, overall_timeout=2.0, max_attempts=3, initial_backoff=0.01, max_backoff=0.05
)


FAST_RAMP = 600.0  # MW per minute: 10 MW per second, a ramp ends in well under 1 s
SLOW_RAMP = 6.0  # MW per minute: main_power_feed from 10 to 6 MW takes 40 s


@pytest.fixture
def sim(request: pytest.FixtureRequest, make_sim: Callable[..., Simulator]) -> Simulator:
    """The simulator; ``@pytest.mark.parametrize("sim", [SLOW_RAMP], indirect=True)`` for
    ramps that stay open until the test moves its clock (``sim.advance``)."""
    return make_sim(
        insecure=True,
        users={"admin": "password"},
        speed=1.0,
        ramp_rate_mw_per_minute=getattr(request, "param", FAST_RAMP),
        whitelist=["http://127.0.0.1"],
        call_timeout=5.0,
    )


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "webhook-tokens"
    path.write_text(TEST_TOKEN + "\n")
    return path


@pytest.fixture
def receiver(tmp_path: Path, tokens_file: Path) -> Iterator[ServedFunction]:
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/events.db",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(tokens_file),
        "GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS": "0.1",
    }
    with function_app("receive_power_event", env) as app, app.serve() as served:
        yield served


@pytest.fixture
def settings(receiver: ServedFunction, tokens_file: Path) -> Settings:
    return load_settings(
        {
            "GRIDHOOK_STORE": receiver.env["GRIDHOOK_STORE"],
            "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(tokens_file),
            "GRIDHOOK_WEBHOOK_URL": f"{receiver.url}/nvgrid/webhook",
            "GRIDHOOK_DRIFT_GRACE_SECONDS": "0",
        }
    )


def client_for(sim: Simulator, password: str = "password") -> NvGridClient:
    endpoint = make_endpoint(sim.address, tls="plaintext", policy=FAST, environ={})
    return NvGridClient(endpoint, Credentials("admin", password))


@pytest.fixture
def nvgrid(sim: Simulator) -> Iterator[NvGridClient]:
    with client_for(sim) as client:
        yield client


def stored_events(settings: Settings) -> list:
    store = open_store(settings.store_url)
    try:
        return list(iter_events(store, EventQuery(limit=500)))
    finally:
        store.close()


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ramp_down_and_back(nvgrid: NvGridClient, feed: str, correlation_id: str) -> None:
    nvgrid.set_load_target(6.0, "mw", feed_tags=[feed], correlation_id=correlation_id)


def with_store(settings: Settings, fn):
    store = open_store(settings.store_url)
    try:
        return fn(store)
    finally:
        store.close()


# -- idempotence and DPS restarts ---------------------------------------------------------


def test_reconcile_five_times_gives_one_registration(sim, nvgrid, settings) -> None:
    for _ in range(5):
        report = with_store(settings, lambda s: reconcile(settings, s, nvgrid))
        assert report.status == "ok", report.to_dict()
    registrations = sim.registrations()
    assert len(registrations) == 1
    assert registrations[0].url == f"{settings.webhook_url}?token={TEST_TOKEN}"
    records = with_store(settings, lambda s: s.subscriptions())
    assert len(records) == 1
    assert records[0].registered and records[0].last_error is None
    assert TEST_TOKEN not in json.dumps(records[0].to_dict())  # no secret in the store


def test_reconcile_after_dps_restart_registers_again_and_events_flow(sim, nvgrid, settings) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    sim.clear_registrations()  # DPS restarted and forgot its webhooks
    assert sim.registrations() == []
    report = with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert report.status == "ok"
    assert len(sim.registrations()) == 1
    ramp_down_and_back(nvgrid, "main_power_feed", "after-restart")
    events = wait_until(
        lambda: (
            [e for e in stored_events(settings) if e.correlation_id == "after-restart"]
            if len([e for e in stored_events(settings) if e.correlation_id == "after-restart"]) >= 2
            else None
        ),
        what="start_ramp_down and end_ramp_down stored",
    )
    assert [e.event for e in events] == ["start_ramp_down", "end_ramp_down"]


# -- failures: each gives the documented answer, nothing crashes ---------------------------


def test_dps_down_at_the_start_is_unavailable(sim, nvgrid, settings) -> None:
    sim.faults.fail_rpcs_for(30)
    report = with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert report.status == "unavailable"
    assert report.error["code"] == "nvgrid_unavailable"
    (record,) = with_store(settings, lambda s: s.subscriptions())
    # Recorded before the attempt, so teardown would still know about it.
    assert record.consecutive_failures == 1 and record.last_error


def test_dps_failing_mid_run_is_unavailable(sim, settings) -> None:
    class FailsAfterRegistering(NvGridClient):
        def register_webhook(self, url, events=None):
            result = super().register_webhook(url, events)
            sim.faults.fail_rpcs_for(30)  # a real outage of the simulator, mid-run
            return result

    endpoint = make_endpoint(sim.address, tls="plaintext", policy=FAST, environ={})
    with FailsAfterRegistering(endpoint, Credentials("admin", "password")) as client:
        report = with_store(settings, lambda s: reconcile(settings, s, client))
    assert report.registered  # the registration itself went through
    assert report.status == "unavailable"
    assert "drift check" in report.error["message"]


def test_expired_token_is_refreshed_transparently(sim, nvgrid, settings) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    sim.expire_tokens()
    report = with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert report.status == "ok"
    assert sim.rpc_counts().get("RefreshToken", 0) >= 1


def test_bad_credentials_are_a_permanent_error(sim, settings, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="gridhook")
    with client_for(sim, password="wrong-password") as client:
        report = with_store(settings, lambda s: reconcile(settings, s, client))
    assert report.status == "error"
    assert report.error["code"] == "nvgrid_auth"
    assert "credentials" in report.error["action"]
    assert "wrong-password" not in json.dumps(report.to_dict()) + caplog.text
    assert any(
        getattr(r, "fields", {}).get("outcome") == "reconcile_failed" for r in caplog.records
    )


def test_not_whitelisted_url_is_a_permanent_error_saying_what_to_do(sim, nvgrid, settings) -> None:
    elsewhere = dataclasses.replace(settings, webhook_url="http://10.255.255.1:9/nvgrid/webhook")
    report = with_store(settings, lambda s: reconcile(elsewhere, s, nvgrid))
    assert report.status == "error"
    assert report.error["code"] == "not_whitelisted"
    assert "whitelist" in report.error["action"]
    assert sim.registrations() == []


# -- token rotation -----------------------------------------------------------------------


def test_rotation_loses_no_event(sim, nvgrid, settings, tokens_file, receiver) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    ramp_down_and_back(nvgrid, "main_power_feed", "before-rotation")

    # 1. The new token becomes current; the old one is still accepted.
    tokens_file.write_text(f"{NEW_TOKEN}\n{TEST_TOKEN}\n")
    time.sleep(0.3)  # longer than the receiver's reload interval
    rotated = load_settings(
        {
            **{k: v for k, v in receiver.env.items() if k.startswith("GRIDHOOK_")},
            "GRIDHOOK_WEBHOOK_URL": settings.webhook_url,
        }
    )
    nvgrid.set_load_target(None, feed_tags=["main_power_feed"], correlation_id="during-rotation")
    report = with_store(settings, lambda s: reconcile(rotated, s, nvgrid))
    assert report.status == "ok", report.to_dict()
    # New URL registered first, old one removed after.
    assert [r.url for r in sim.registrations()] == [f"{settings.webhook_url}?token={NEW_TOKEN}"]
    assert len(report.unregistered) == 1

    # 2. Once DPS has no delivery to the old URL in flight (at most its call timeout after
    #    the unregistration), the old token is retired.
    def every_event_answered() -> bool:
        generated = {(p["event"], p["correlation_id"], p["feed_tag"]) for p in sim.events}
        answered = {
            (d.payload["event"], d.payload["correlation_id"], d.payload["feed_tag"])
            for d in sim.deliveries
            if d.status is not None
        }
        return generated <= answered

    wait_until(every_event_answered, what="deliveries in flight to finish")
    tokens_file.write_text(f"{NEW_TOKEN}\n")
    time.sleep(0.3)
    nvgrid.set_load_target(
        5.0, "mw", feed_tags=["backup_power_feed"], correlation_id="after-rotation"
    )

    expected = wait_until(
        lambda: (
            sim.events
            if ("end_ramp_down", "after-rotation")
            in {(p["event"], p["correlation_id"]) for p in sim.events}
            else None
        ),
        what="the last ramp to finish",
    )
    wait_until(every_event_answered, what="every event to be delivered")
    deliveries = list(sim.deliveries)
    assert all(d.status == 200 for d in deliveries), [
        (d.status, d.url.split("?")[0], d.payload["event"], d.payload["correlation_id"])
        for d in deliveries
        if d.status != 200
    ]
    wait_until(lambda: len(stored_events(settings)) >= len(expected), what="every event stored")
    stored = {(e.event, e.correlation_id, e.feed_tag) for e in stored_events(settings)}
    generated = {(p["event"], p["correlation_id"], p["feed_tag"]) for p in expected}
    assert generated <= stored


# -- drift ------------------------------------------------------------------------------


def test_a_dropped_delivery_is_recorded_as_drift(sim, nvgrid, settings, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="gridhook")
    assert with_store(settings, lambda s: reconcile(settings, s, nvgrid)).drift == []
    sim.faults.drop_next = 2  # start_ramp_down and end_ramp_down of the next target
    nvgrid.set_load_target(6.0, "mw", feed_tags=["backup_power_feed"], correlation_id="lost-one")
    wait_until(lambda: sum(d.outcome == "dropped" for d in sim.deliveries) >= 2, what="drops")
    report = with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert [d["feed_tag"] for d in report.drift] == ["backup_power_feed"]
    assert "lost-one" in report.drift[0]["message"]
    recorded = with_store(settings, lambda s: s.drift())
    assert [d.feed_tag for d in recorded] == ["backup_power_feed"]
    assert recorded[0].dps_view["correlation_id"] == "lost-one"
    warnings = [r for r in caplog.records if getattr(r, "fields", {}).get("outcome") == "drift"]
    assert warnings and warnings[0].levelno == logging.WARNING
    # Reconciling again records the same drift once, not twice.
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert len(with_store(settings, lambda s: s.drift())) == 1


def test_no_drift_when_every_webhook_arrived(sim, nvgrid, settings) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    nvgrid.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id="all-good")
    wait_until(
        lambda: len([e for e in stored_events(settings) if e.correlation_id == "all-good"]) >= 2,
        what="events stored",
    )
    assert with_store(settings, lambda s: reconcile(settings, s, nvgrid)).drift == []


def test_a_target_that_begins_after_dps_answered_is_not_drift(sim, settings, caplog) -> None:
    """DPS answers GetStatus (main_power_feed at its default); then a curtailment begins and
    its start_ramp_down is stored before reconcile reads our state. The snapshot predates
    our last event: no evidence of a lost webhook. The order is forced, not hoped for: the
    client, right after DPS's answer, asks DPS for the target and waits until the real
    receiver has stored its start_ramp_down (real gRPC, simulator and receiver throughout)."""
    caplog.set_level(logging.WARNING, logger="gridhook")

    class TargetAfterStatus(NvGridClient):
        armed = False

        def get_status(self):
            snapshot = super().get_status()
            if self.armed:
                self.armed = False
                self.set_load_target(
                    6.0, "mw", feed_tags=["main_power_feed"], correlation_id="in-between"
                )
                wait_until(
                    lambda: [
                        e for e in stored_events(settings) if e.correlation_id == "in-between"
                    ],
                    what="its start_ramp_down stored",
                )
            return snapshot

    endpoint = make_endpoint(sim.address, tls="plaintext", policy=FAST, environ={})
    with TargetAfterStatus(endpoint, Credentials("admin", "password")) as client:
        assert with_store(settings, lambda s: reconcile(settings, s, client)).drift == []
        client.armed = True
        raced = with_store(settings, lambda s: reconcile(settings, s, client))
        after = with_store(settings, lambda s: reconcile(settings, s, client))
    assert raced.status == "ok", raced.to_dict()
    assert raced.drift == []  # was: "DPS is back at the default … start_ramp_up not received"
    assert with_store(settings, lambda s: s.drift()) == []
    assert not [r for r in caplog.records if getattr(r, "fields", {}).get("outcome") == "drift"]
    # The next run's snapshot has the target: compared, and it agrees.
    assert after.status == "ok" and after.drift == []
    assert {e.correlation_id for e in stored_events(settings)} == {"in-between"}


# -- load samples: sample_load's now (tests/integration/test_sample_load.py) --------------


def test_reconcile_stores_no_sample_and_a_store_refusing_them_is_no_failure(
    sim, nvgrid, settings
) -> None:
    with_store(settings, lambda s: None)  # creates the database
    # A real SQLite failure on sample inserts only (an abort, as a full disk would give).
    with sqlite3.connect(settings.store_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON samples "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    report = with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert report.status == "ok", report.to_dict()
    assert "samples" not in report.to_dict()
    assert report.registered == [f"{settings.webhook_url}?token=REDACTED"]
    assert len(sim.registrations()) == 1
    (record,) = with_store(settings, lambda s: s.subscriptions())
    assert record.registered and record.last_error is None
    assert with_store(settings, lambda s: s.samples(SampleQuery()).samples) == []


# -- stalled ramps ----------------------------------------------------------------------


def stall_log_lines(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if getattr(r, "fields", {}).get("outcome") == "episode_stalled"
    ]


def start_a_slow_ramp_down(sim, nvgrid, settings, correlation_id: str) -> None:
    nvgrid.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id=correlation_id)
    wait_until(
        lambda: [e for e in stored_events(settings) if e.correlation_id == correlation_id],
        what="start_ramp_down stored",
    )


def past_the_deadline(settings: Settings) -> Callable[[], datetime]:
    return lambda: clock.now() + timedelta(seconds=settings.ramp_deadline_seconds + 60)


@pytest.mark.parametrize("sim", [SLOW_RAMP], indirect=True)
def test_a_missed_end_ramp_down_is_a_stalled_ramp_reported_once(
    sim, nvgrid, settings, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="gridhook")
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    start_a_slow_ramp_down(sim, nvgrid, settings, "loses-its-end")
    sim.faults.drop_next = 1  # the end_ramp_down
    sim.advance(120)  # DPS finishes the ramp at once
    wait_until(lambda: any(d.outcome == "dropped" for d in sim.deliveries), what="the drop")

    report = with_store(
        settings, lambda s: reconcile(settings, s, nvgrid, now=past_the_deadline(settings))
    )
    assert report.status == "ok"
    assert report.drift == []  # DPS and our events agree on the target: drift cannot see it
    (stall,) = report.stalled
    assert stall["feed_tag"] == "main_power_feed" and stall["correlation_id"] == "loses-its-end"
    assert stall["missing"] == "end_ramp_down" and stall["new"] is True
    assert stall["likely_cause"] == "missed_webhook"  # DPS reached the target
    (line,) = stall_log_lines(caplog)
    assert line.levelno == logging.WARNING
    assert line.fields["since"] == stall["since"] and line.fields["missing"] == "end_ramp_down"
    assert "missed" in line.getMessage()
    (alert,) = with_store(settings, lambda s: s.alerts())
    assert alert.kind == "episode_stalled" and alert.alert_id == stall["alert_id"]

    # Later runs still list it, but log and record it no more.
    again = with_store(
        settings, lambda s: reconcile(settings, s, nvgrid, now=past_the_deadline(settings))
    )
    assert [(s["alert_id"], s["new"]) for s in again.stalled] == [(stall["alert_id"], False)]
    assert len(stall_log_lines(caplog)) == 1
    assert len(with_store(settings, lambda s: s.alerts())) == 1


@pytest.mark.parametrize("sim", [SLOW_RAMP], indirect=True)
def test_dps_stopping_mid_ramp_is_a_stalled_ramp(sim, nvgrid, settings, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="gridhook")
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    start_a_slow_ramp_down(sim, nvgrid, settings, "never-gets-there")
    # Within the deadline an open ramp is just a ramp.
    assert with_store(settings, lambda s: reconcile(settings, s, nvgrid)).stalled == []
    report = with_store(
        settings, lambda s: reconcile(settings, s, nvgrid, now=past_the_deadline(settings))
    )
    (stall,) = report.stalled
    assert stall["likely_cause"] == "dps_stopped_mid_ramp"
    assert stall["dps_calculated_w"] > stall["target_w"] == 6e6
    assert "mid-ramp" in stall["message"]
    assert len(stall_log_lines(caplog)) == 1


# -- teardown ---------------------------------------------------------------------------


def test_teardown_twice_leaves_nothing_and_reports_clean(sim, nvgrid, settings) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    assert len(sim.registrations()) == 1
    first = with_store(settings, lambda s: teardown(settings, s, nvgrid))
    assert first.clean and len(first.unregistered) == 1
    second = with_store(settings, lambda s: teardown(settings, s, nvgrid))
    assert second.clean and second.unregistered == []
    assert sim.registrations() == []
    assert with_store(settings, lambda s: s.subscriptions()) == []


def test_teardown_with_dps_down_lists_what_is_left(sim, nvgrid, settings) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    sim.faults.fail_rpcs_for(30)
    report = with_store(settings, lambda s: teardown(settings, s, nvgrid))
    assert not report.clean and report.unavailable
    assert [item["url"] for item in report.left] == [f"{settings.webhook_url}?token=REDACTED"]
    # Still recorded: a later teardown will finish the job.
    assert len(with_store(settings, lambda s: s.subscriptions())) == 1
    sim.faults.reset()
    assert with_store(settings, lambda s: teardown(settings, s, nvgrid)).clean
    assert sim.registrations() == []


# -- the deployed entry points, through functions-framework --------------------------------


def jobs_env(sim: Simulator, settings: Settings, tokens_file: Path) -> dict[str, str]:
    return {
        "GRIDHOOK_STORE": settings.store_url,
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(tokens_file),
        "GRIDHOOK_WEBHOOK_URL": settings.webhook_url,
        "GRIDHOOK_RECONCILE_DEADLINE_SECONDS": "8",
        "NVGRID_HOST": sim.address,
        "NVGRID_TLS": "plaintext",
        "NVGRID_USERNAME": "admin",
        "NVGRID_PASSWORD": "password",
    }


def test_reconcile_and_teardown_functions_over_http(sim, settings, tokens_file, tmp_path) -> None:
    env = jobs_env(sim, settings, tokens_file)
    with function_app("reconcile_subscriptions", env) as job:
        # What the site's Scheduler job sends: that site's report.
        answer = job.post("/?site=default")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ok" and answer.json()["site"] == "default"
        assert len(sim.registrations()) == 1
        sim.faults.fail_rpcs_for(60)
        down = job.post("/?site=default")
        assert down.status_code == 503 and "Retry-After" in down.headers
        assert down.json()["error"]["code"] == "nvgrid_unavailable"
    sim.faults.reset()
    with function_app("teardown_subscriptions", env) as job:
        # The teardown job names no site: every site's (here the one) report.
        answer = job.post("/")
        assert answer.status_code == 200 and answer.json()["status"] == "clean"
        assert answer.json()["ok"] == ["default"]
        (site,) = answer.json()["sites"]
        assert site["site"] == "default" and site["status"] == "clean"
    assert sim.registrations() == []


def test_reconcile_function_with_bad_credentials_answers_200_error(
    sim, settings, tokens_file, tmp_path
) -> None:
    env = {**jobs_env(sim, settings, tokens_file), "NVGRID_PASSWORD": f"nope-{uuid.uuid4().hex}"}
    with function_server("reconcile_subscriptions", env, cwd=tmp_path) as job:
        answer = requests.post(job.url, timeout=30)
        logs = job.logs()
    assert answer.status_code == 200
    assert answer.json()["status"] == "error"
    assert env["NVGRID_PASSWORD"] not in logs
    assert any(
        json.loads(line).get("outcome") == "reconcile_failed"
        for line in logs.splitlines()
        if line.startswith("{")
    )


def test_retiring_a_token_too_early_is_reported_not_forgotten(
    sim, nvgrid, settings, tokens_file, receiver
) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    # The old token is dropped before reconcile could unregister its URL.
    tokens_file.write_text(f"{NEW_TOKEN}\n")
    rotated = dataclasses.replace(settings, webhook_tokens=(NEW_TOKEN,))
    report = with_store(settings, lambda s: reconcile(rotated, s, nvgrid))
    assert report.status == "error" and report.error["code"] == "stale_token_missing"
    assert [item["url"] for item in report.left] == [f"{settings.webhook_url}?token=REDACTED"]
    # Both URLs are still registered with DPS, and the old one is still on record.
    assert len(sim.registrations()) == 2
    assert len(with_store(settings, lambda s: s.subscriptions())) == 2
    # Putting the old token back (after the new one) lets the next run finish the job.
    both = dataclasses.replace(settings, webhook_tokens=(NEW_TOKEN, TEST_TOKEN))
    assert with_store(settings, lambda s: reconcile(both, s, nvgrid)).status == "ok"
    assert [r.url for r in sim.registrations()] == [f"{settings.webhook_url}?token={NEW_TOKEN}"]


@pytest.mark.parametrize("sim", [SLOW_RAMP], indirect=True)
def test_reconcile_function_judges_ramps_by_the_dev_clock(
    sim, nvgrid, settings, tokens_file, tmp_path
) -> None:
    with_store(settings, lambda s: reconcile(settings, s, nvgrid))
    start_a_slow_ramp_down(sim, nvgrid, settings, "judged-by-the-dev-clock")
    real = datetime.now(UTC)
    # The job's clock runs two hours ahead of the receiver's: the open ramp is overdue.
    dev_clock = f"1@{rfc3339(real + timedelta(hours=2))}@{rfc3339(real)}"
    env = {**jobs_env(sim, settings, tokens_file), "GRIDHOOK_DEV_CLOCK": dev_clock}
    with function_server("reconcile_subscriptions", env, cwd=tmp_path) as job:
        first = requests.post(f"{job.url}?site=default", timeout=30)
        second = requests.post(f"{job.url}?site=default", timeout=30)
        logs = [json.loads(line) for line in job.logs().splitlines() if line.startswith("{")]
    assert first.status_code == 200 and first.json()["status"] == "ok", first.text
    (stall,) = first.json()["stalled"]
    assert stall["correlation_id"] == "judged-by-the-dev-clock" and stall["new"] is True
    assert [s["new"] for s in second.json()["stalled"]] == [False]
    assert "samples" not in first.json()  # sampling is sample_load's
    (line,) = [entry for entry in logs if entry.get("outcome") == "episode_stalled"]
    assert line["severity"] == "WARNING" and line["feed_tag"] == "main_power_feed"
    assert any("GRIDHOOK_DEV_CLOCK" in entry["message"] for entry in logs)
    # The ramp_stalled log metric (monitoring.tf) counts exactly that line.
    metric = tfcheck.load_stack().locals()["counter_metrics"]["ramp_stalled"]
    assert [e for e in logs if tfcheck.filter_admits(metric["filter"], e)] == [line]
