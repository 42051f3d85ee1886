"""sample_load: the real functions-framework app built from main.py (in-process, Flask's
test client), against the DPS simulator over real gRPC, on a real SQLite store.

One GetStatus per run, one load sample per feed stamped with DPS's time; 200 with a JSON
summary; 503 with the jobs' Retry-After when DPS or the store is down; 200 ``error`` for a
permanent failure; 404 JSON for a site the deployment does not serve. Each run logs one
line the ``sample_failures`` log metric (monitoring.tf) counts when it failed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gridhook import units
from gridhook.intervals.rollups import read_rollups
from gridhook.log import JsonFormatter
from gridhook.nvgrid import CallPolicy, Credentials, make_endpoint
from gridhook.nvgrid.client import NvGridClient
from gridhook.settings import get_settings
from gridhook.store import DayRollupQuery, RollupQuery, RollupRecord, SampleQuery, open_store
from simulator import Simulator, SimulatorConfig, start_simulator
from tests.harness import FUNCTIONS
from tests.infra import tfcheck

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAST = CallPolicy(
    call_timeout=1.0, overall_timeout=2.0, max_attempts=3, initial_backoff=0.01, max_backoff=0.05
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start_simulator(
        SimulatorConfig(
            port=0,
            insecure=True,
            users={"admin": "password"},
            speed=1.0,
            ramp_rate_mw_per_minute=600.0,  # a ramp ends in well under a second
            whitelist=["http://127.0.0.1"],
            call_timeout=5.0,
        )
    )
    yield simulator
    simulator.stop(grace=0)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/events.db"


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    """The JSON lines gridhook logs (as Cloud Logging receives them), whatever handlers the
    app's cold start installs; the logger is left as it was found."""
    logger = logging.getLogger("gridhook")
    lines: list[dict] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    handler = Keep()
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
    logger.propagate, logger.level = propagate, level


def sample_load_app(sim: Simulator, store_url: str, **env: str) -> Iterator[FlaskClient]:
    """sample_load as Cloud Functions runs it: FUNCTION_TARGET set, main.py's cold start,
    the environment Terraform gives it (no webhook token: it registers nothing)."""
    from functions_framework import create_app

    values = {
        "GRIDHOOK_STORE": store_url,
        "GRIDHOOK_RECONCILE_DEADLINE_SECONDS": "8",  # each DPS call may take 2 s, retries included
        "GRIDHOOK_SAMPLE_RETENTION_DAYS": "10",
        "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS": "3",
        "NVGRID_HOST": sim.address,
        "NVGRID_TLS": "plaintext",
        "NVGRID_USERNAME": "admin",
        "NVGRID_PASSWORD": "password",
        "FUNCTION_TARGET": "sample_load",
        **env,
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "GRIDHOOK_WEBHOOK_TOKENS",
            "GRIDHOOK_WEBHOOK_TOKENS_FILE",
            "GRIDHOOK_DEV_CLOCK",
            "GRIDHOOK_SITES",
            "GRIDHOOK_SITES_FILE",
        ):
            mp.delenv(name, raising=False)
        for name, value in values.items():
            mp.setenv(name, value)
        get_settings.cache_clear()  # settings are read once per process, at cold start
        yield create_app("sample_load", str(FUNCTIONS / "main.py")).test_client()
    get_settings.cache_clear()


@pytest.fixture
def app(sim: Simulator, store_url: str) -> Iterator[FlaskClient]:
    yield from sample_load_app(sim, store_url)


def samples(store_url: str) -> list:
    store = open_store(store_url)
    try:
        return store.samples(SampleQuery()).samples
    finally:
        store.close()


def ramped_down_to_its_target(nvgrid: NvGridClient, feed: str, target_w: float) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        load = nvgrid.get_status()[feed].calculated_load
        if units.to_watts(load.value, str(load.unit)) <= target_w:
            return
        time.sleep(0.05)
    raise AssertionError(f"{feed} did not ramp down to {target_w} W")


def outcomes(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("outcome", "").startswith("sample_")]


def test_one_get_status_per_run_one_sample_per_feed_in_dps_time(
    sim: Simulator, app: FlaskClient, store_url: str, log_lines: list[dict]
) -> None:
    sim.advance(timedelta(hours=6))  # DPS's clock now runs six hours ahead of ours
    with NvGridClient(
        make_endpoint(sim.address, tls="plaintext", policy=FAST, environ={}),
        Credentials("admin", "password"),
    ) as nvgrid:
        nvgrid.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id="cut-1")
        ramped_down_to_its_target(nvgrid, "main_power_feed", 6e6)
    before = sim.rpc_counts().get("GetStatus", 0)
    earliest = datetime.now(UTC) + timedelta(hours=5, minutes=59)

    answer = app.post("/?site=default", json={"trigger": "cloud-scheduler", "site": "default"})

    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert {k: body[k] for k in ("status", "site", "feeds", "samples", "error")} == {
        "status": "ok",
        "site": "default",
        "feeds": 2,
        "samples": 2,
        "error": None,
    }
    assert sim.rpc_counts()["GetStatus"] - before == 1
    kept = {s.feed_tag: s for s in samples(store_url)}
    assert sorted(kept) == ["backup_power_feed", "main_power_feed"]
    main, backup = kept["main_power_feed"], kept["backup_power_feed"]
    # Measured by DPS, as reconcile stored them before: the load reached (capped by the
    # target while constrained), the target held; the other feed on its default.
    assert (main.target_w, main.correlation_id) == (6e6, "cut-1")
    assert 0 < main.calculated_w <= 6e6
    assert (backup.target_w, backup.correlation_id) == (None, None) and backup.calculated_w > 0
    # Stamped with DPS's time (six hours ahead), one time per run, kept the raw samples'
    # retention (their hourly rollups keep GRIDHOOK_SAMPLE_RETENTION_DAYS).
    assert main.sampled_at == backup.sampled_at >= earliest
    assert body["sampled_at"] == main.sampled_at.isoformat().replace("+00:00", "Z")
    assert main.expires_at - main.sampled_at == timedelta(days=3)
    (line,) = outcomes(log_lines)
    assert line["outcome"] == "sample_ok" and line["severity"] == "INFO"
    assert (line["site"], line["feeds"], line["samples"]) == ("default", 2, 2)

    # Each run adds one sample per feed.
    assert app.post("/?site=default").get_json()["samples"] == 2
    assert len(samples(store_url)) == 4


def rollups_of(store_url: str, hour: datetime) -> dict[str, RollupRecord]:
    store = open_store(store_url)
    try:
        return {r.feed: r for r in store.rollups(RollupQuery(since=hour, until=hour + HOUR))}
    finally:
        store.close()


def all_rollups(store_url: str) -> list[RollupRecord]:
    store = open_store(store_url)
    try:
        now = datetime.now(UTC)
        return store.rollups(RollupQuery(since=now - 6 * HOUR, until=now + 2 * DAY))
    finally:
        store.close()


def test_a_complete_hour_is_rolled_up_once_per_feed(
    sim: Simulator, app: FlaskClient, store_url: str
) -> None:
    first = app.post("/?site=default").get_json()
    sampled_at = datetime.fromisoformat(first["sampled_at"])
    hour = sampled_at.replace(minute=0, second=0, microsecond=0)
    assert rollups_of(store_url, hour) == {}  # the hour is still open
    # DPS's clock, which stamps the samples, two hours on: that hour is complete now.
    sim.advance(timedelta(hours=2))
    second = app.post("/?site=default").get_json()
    assert second["status"] == "ok" and second["rollups"] >= 2
    rolled = rollups_of(store_url, hour)
    assert sorted(rolled) == ["backup_power_feed", "main_power_feed"]
    kept = {s.feed_tag: s for s in samples(store_url) if s.sampled_at == sampled_at}
    for feed, rollup in rolled.items():
        # The hour's one sample, in its 5-minute bucket: count, mean, minimum, maximum.
        k = (sampled_at - hour) // timedelta(minutes=5)
        assert rollup.counts[k] == 1 and sum(rollup.counts) == 1
        watts = kept[feed].calculated_w
        assert rollup.means[k] == rollup.minima[k] == rollup.maxima[k] == watts
        assert rollup.expires_at == hour + HOUR + timedelta(days=10)  # the long retention
    # A run again at once writes nothing; two at once, an hour on, each hour's rollups once.
    assert app.post("/?site=default").get_json()["rollups"] == 0
    before = all_rollups(store_url)
    sim.advance(HOUR)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: app.post("/?site=default").get_json(), range(2)))
    after = all_rollups(store_url)
    assert [a["status"] for a in answers] == ["ok", "ok"]
    assert sum(a["rollups"] for a in answers) == len(after) - len(before) >= 2
    assert len({(r.feed, r.hour_start) for r in after}) == len(after)
    assert rollups_of(store_url, hour) == rolled


def test_a_complete_day_is_packed_once_per_feed_hours_after_it_ends(
    sim: Simulator, app: FlaskClient, store_url: str
) -> None:
    """Hourly runs across a whole UTC day: the run that finds it settled (its last hour
    rolled up, and RECENT_HOURS gone by in which a run could still add a feed's rollups)
    packs it, one record per feed; no run packs it again, and reading through it gives the
    hourly rollups exactly."""
    answers = []
    for _ in range(54):  # a whole UTC day starts within 24 h and settles 4 h after it ends
        answers.append(app.post("/?site=default").get_json())
        sim.advance(HOUR)
    assert {a["status"] for a in answers} == {"ok"}
    packing = [a for a in answers if a["days_packed"]]
    assert [a["days_packed"] for a in packing] == [2]  # once, both feeds
    packed_at = datetime.fromisoformat(packing[0]["sampled_at"])
    day = packed_at.replace(hour=0, minute=0, second=0, microsecond=0) - DAY
    assert timedelta(hours=3) < packed_at - (day + DAY) <= timedelta(hours=4)
    store = open_store(store_url)
    try:
        days = store.day_rollups(DayRollupQuery(since=day - DAY, until=day + 2 * DAY))
        assert [(d.day_start, d.feed, len(d.rollups)) for d in days] == [
            (day, "backup_power_feed", 24),
            (day, "main_power_feed", 24),
        ]
        first = datetime.fromisoformat(answers[0]["sampled_at"])
        query = RollupQuery(since=first - HOUR, until=first + 4 * DAY)  # 3 whole days or more
        assert read_rollups(store, query) == store.rollups(query)
    finally:
        store.close()


def test_without_site_it_samples_every_site(app: FlaskClient, store_url: str) -> None:
    """Here the one site, default: the answer lists each site's report."""
    answer = app.post("/")
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["status"], body["ok"], body["failed"]) == ("ok", ["default"], [])
    (site,) = body["sites"]
    assert (site["site"], site["status"], site["samples"]) == ("default", "ok", 2)
    assert len(samples(store_url)) == 2


def test_an_unknown_site_is_a_404_naming_it_and_nothing_is_asked(
    sim: Simulator, app: FlaskClient, store_url: str
) -> None:
    answer = app.post("/?site=phx1")
    assert answer.status_code == 404
    error = answer.get_json()["error"]
    assert error["code"] == "unknown_site" and error["site"] == "phx1"
    assert "'phx1'" in error["message"] and "default" in error["message"]
    assert sim.rpc_counts().get("GetStatus", 0) == 0
    assert samples(store_url) == []


def test_dps_down_is_a_503_with_the_jobs_retry_after(
    sim: Simulator, app: FlaskClient, store_url: str, log_lines: list[dict]
) -> None:
    sim.faults.fail_rpcs_for(60)
    answer = app.post("/?site=default")
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "30"  # http.RetryAfter.JOB
    body = answer.get_json()
    assert body["status"] == "unavailable" and body["error"]["code"] == "nvgrid_unavailable"
    assert samples(store_url) == []
    (line,) = outcomes(log_lines)
    assert line["outcome"] == "sample_failed" and line["severity"] == "ERROR"
    assert line["site"] == "default" and line["code"] == "nvgrid_unavailable"
    # The sample_failures log metric counts exactly that line, under the site's label.
    stack = tfcheck.load_stack()
    metric = stack.locals()["counter_metrics"]["sample_failures"]
    assert [entry for entry in log_lines if tfcheck.filter_admits(metric["filter"], entry)] == [
        line
    ]


def test_store_down_is_a_503(
    sim: Simulator, app: FlaskClient, store_url: str, log_lines: list[dict]
) -> None:
    open_store(store_url).close()  # creates the database
    # A real SQLite failure on sample inserts only (an abort, as a full disk would give).
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON samples "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    answer = app.post("/?site=default")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    body = answer.get_json()
    assert body["error"]["code"] == "store_unavailable"
    assert "storing load samples" in body["error"]["message"]
    assert body["feeds"] == 2 and body["samples"] == 0
    assert [line["code"] for line in outcomes(log_lines)] == ["store_unavailable"]


def test_bad_credentials_are_a_permanent_error_and_stay_secret(
    sim: Simulator, store_url: str, log_lines: list[dict]
) -> None:
    password = f"nope-{uuid.uuid4().hex}"
    for app in sample_load_app(sim, store_url, NVGRID_PASSWORD=password):
        answer = app.post("/?site=default")
    assert answer.status_code == 200  # retrying cannot fix it: no 503
    body = answer.get_json()
    assert body["status"] == "error" and body["samples"] == 0
    assert body["error"]["code"] == "nvgrid_auth"
    assert password not in answer.text and password not in json.dumps(log_lines)
    assert [line["outcome"] for line in outcomes(log_lines)] == ["sample_failed"]
    assert samples(store_url) == []


@pytest.mark.parametrize("target", ["reconcile_subscriptions", "teardown_subscriptions"])
def test_the_subscription_jobs_refuse_an_unknown_site_too(
    sim: Simulator, store_url: str, target: str
) -> None:
    """Each site's reconcile job sends ?site= as well; a site not served does nothing."""
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDHOOK_STORE", store_url)
        mp.setenv("GRIDHOOK_WEBHOOK_TOKENS", "a-test-token-0123456789")
        mp.setenv("GRIDHOOK_WEBHOOK_URL", "http://127.0.0.1:9/nvgrid/webhook")
        mp.setenv("NVGRID_HOST", sim.address)
        mp.setenv("NVGRID_TLS", "plaintext")
        mp.setenv("FUNCTION_TARGET", target)
        for name in ("GRIDHOOK_WEBHOOK_TOKENS_FILE", "GRIDHOOK_SITES", "GRIDHOOK_SITES_FILE"):
            mp.delenv(name, raising=False)
        get_settings.cache_clear()
        client = create_app(target, str(FUNCTIONS / "main.py")).test_client()
        answer = client.post("/?site=ams2")
    get_settings.cache_clear()
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "unknown_site"
    assert sim.rpc_counts() == {} and sim.registrations() == []
