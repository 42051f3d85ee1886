"""The jobs' part of the two-site isolation suite (issue 14): reconcile, teardown and
sample_load on two sites, each a real DPS simulator over gRPC with its own CA, users,
tokens and time zone (``simulator.fleet``), through the real functions-framework apps of
main.py (in-process), the real receiver storing what each simulator delivers, on every
backend (SQLite, the Firestore emulator, moto).

One site's DPS down leaves the other reconciled, within the run's deadline; teardown of
one site leaves the other registered; drift and stalled-ramp alerts of one site never
appear under the other (both sites call their feed ``main_power_feed``); each site's
sample_load stores only its own samples. Every log line a Terraform log metric counts
carries the site it is about (the metrics' ``site`` label).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridhook.cli import main
from gridhook.log import JsonFormatter
from gridhook.nvgrid import CallPolicy, Credentials, make_endpoint
from gridhook.nvgrid.client import NvGridClient
from gridhook.store import EventQuery, EventStore, SampleQuery, iter_events, open_store
from simulator import SimulatorConfig
from simulator.fleet import Fleet, fleet_configs, start_fleet
from tests.harness import ServedFunction, function_app
from tests.infra import tfcheck

SITES = ("phx1", "ams2")
TIMEZONES = {"phx1": "America/Phoenix", "ams2": "Europe/Amsterdam"}
USERS = {site: {f"{site}-admin": f"{site}-password"} for site in SITES}
TOKENS = {site: f"{site}-webhook-token-0123456789" for site in SITES}
SLOW_RAMP = 6.0  # MW per minute: main_power_feed from 10 to 6 MW takes 40 s, an open ramp
DEADLINE_S = 10.0  # the run's: each DPS call may take a quarter of it, retries included
FAST = CallPolicy(
    call_timeout=2.0, overall_timeout=4.0, max_attempts=3, initial_backoff=0.01, max_backoff=0.05
)


@pytest.fixture(scope="session")
def fleet_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each site's CA, made once per session (the simulator reuses valid files)."""
    return tmp_path_factory.mktemp("fleet-tls")


@pytest.fixture
def fleet(fleet_tls: Path) -> Iterator[Fleet]:
    base = SimulatorConfig(
        port=0,
        tls_dir=fleet_tls,
        speed=1.0,
        ramp_rate_mw_per_minute=SLOW_RAMP,
        whitelist=["http://127.0.0.1"],
        call_timeout=5.0,
    )
    running = start_fleet(fleet_configs(base, SITES, timezones=TIMEZONES, users=USERS))
    yield running
    running.stop(grace=0)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A DPS that accepts connections and never answers: a listening socket nobody
    serves (a real network fault; the simulator fails fast, it never hangs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Deployment:
    """The sites' settings (GRIDHOOK_SITES and each site's files) and the receiver."""

    env: dict[str, str]
    files: Path
    receiver: ServedFunction | None = None

    def jobs_env(self, **extra: str) -> dict[str, str]:
        assert self.receiver is not None
        return {
            **self.env,
            "GRIDHOOK_WEBHOOK_URL": f"{self.receiver.url}/nvgrid/webhook",
            "GRIDHOOK_RECONCILE_DEADLINE_SECONDS": str(DEADLINE_S),
            "GRIDHOOK_DRIFT_GRACE_SECONDS": "0",
            **extra,
        }

    def url(self, site: str) -> str:
        assert self.receiver is not None
        return f"{self.receiver.url}/nvgrid/webhook/{site}?token={TOKENS[site]}"

    def credentials(self, site: str, text: str) -> None:
        (self.files / f"{site}-credentials").write_text(text)


def sites_setting(fleet: Fleet, files: Path, hosts: dict[str, str] | None = None) -> str:
    """GRIDHOOK_SITES for the fleet: each site its own DPS, CA, credentials and tokens."""
    sites = {}
    for sim in fleet:
        site = sim.site
        (files / f"{site}-credentials").write_text(f"{site}-admin:{site}-password")
        (files / f"{site}-tokens").write_text(TOKENS[site] + "\n")
        sites[site] = {
            "timezone": TIMEZONES[site],
            "nvgrid_host": (hosts or {}).get(site, sim.address),
            "nvgrid_tls": "verify",
            "nvgrid_ca_cert": str(sim.ca_cert_path),
            "nvgrid_credentials_file": str(files / f"{site}-credentials"),
            "webhook_tokens_file": str(files / f"{site}-tokens"),
        }
    return json.dumps({"sites": sites})


@pytest.fixture
def deploy(fleet: Fleet, store_url: str, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """deploy(hosts=…): the fleet's settings, with the receiver served for them."""
    served: list[Any] = []

    def make(hosts: dict[str, str] | None = None) -> Deployment:
        files = tmp_path / "secrets"
        files.mkdir()
        env = {"GRIDHOOK_STORE": store_url, "GRIDHOOK_SITES": sites_setting(fleet, files, hosts)}
        app = function_app("receive_power_event", env)
        served.append(app)
        receiver = app.__enter__().serve()
        served.append(receiver)
        return Deployment(env, files, receiver.__enter__())

    yield make
    for context in reversed(served):
        context.__exit__(None, None, None)


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    """The JSON lines gridhook logs (as Cloud Logging receives them)."""
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


def counted(lines: list[dict], metric: str) -> list[dict]:
    """The lines the Terraform log metric counts."""
    spec = tfcheck.load_stack().locals()["counter_metrics"][metric]
    return [line for line in lines if tfcheck.filter_admits(spec["filter"], line)]


def with_store(url: str, read: Callable[[EventStore], Any]) -> Any:
    store = open_store(url)
    try:
        return read(store)
    finally:
        store.close()


def client(fleet: Fleet, site: str) -> NvGridClient:
    sim = fleet[site]
    endpoint = make_endpoint(
        sim.address, tls="verify", ca_cert_path=sim.ca_cert_path, policy=FAST, environ={}
    )
    ((user, password),) = USERS[site].items()
    return NvGridClient(endpoint, Credentials(user, password))


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def events_of(url: str, site: str) -> list:
    return with_store(url, lambda s: list(iter_events(s, EventQuery(site=site, limit=500))))


def registered(fleet: Fleet, site: str) -> list[str]:
    return [r.url for r in fleet[site].registrations()]


# -- reconcile: one site's DPS down -----------------------------------------------------------


def test_one_sites_dps_down_leaves_the_other_reconciled_within_the_deadline(
    fleet: Fleet,
    deploy: Callable[..., Deployment],
    black_hole: str,
    store_url: str,
    log_lines: list[dict],
) -> None:
    site = deploy(hosts={"phx1": black_hole})  # phx1's DPS takes connections, never answers
    with function_app("reconcile_subscriptions", site.jobs_env()) as job:
        began = time.monotonic()
        answer = job.post("/")
        took = time.monotonic() - began
        body = answer.json()
        assert answer.status_code == 503, body  # a retry may fix phx1: Scheduler retries
        assert answer.headers["Retry-After"] == "30"
        assert (body["status"], body["ok"], body["failed"], body["retry"]) == (
            "unavailable",
            ["ams2"],
            ["phx1"],
            ["phx1"],
        )
        phx1, ams2 = body["sites"]
        assert phx1["site"] == "phx1" and phx1["error"]["code"] == "nvgrid_unavailable"
        assert ams2["site"] == "ams2" and ams2["status"] == "ok" and ams2["error"] is None
        # Within the run's deadline, the hung site's share of it included; not a speed
        # target: the bound is the setting's (GRIDHOOK_RECONCILE_DEADLINE_SECONDS).
        assert phx1["seconds"] <= DEADLINE_S and body["seconds"] <= DEADLINE_S
        assert took < DEADLINE_S + 5

        # ams2 is registered with its own DPS, at its own path, with its own token.
        assert registered(fleet, "ams2") == [site.url("ams2")]
        assert registered(fleet, "phx1") == []
        (record,) = with_store(store_url, lambda s: s.subscriptions(site="ams2"))
        assert record.site == "ams2" and record.registered and record.last_error is None
        assert record.url == f"{site.receiver.url}/nvgrid/webhook/ams2?token=REDACTED"
        # phx1's attempt is recorded as its own (write-ahead), failing.
        (failing,) = with_store(store_url, lambda s: s.subscriptions(site="phx1"))
        assert not failing.registered and failing.consecutive_failures == 1
        assert failing.url.endswith("/nvgrid/webhook/phx1?token=REDACTED")

        # Each site's own job (what its Scheduler job sends) answers for that site only.
        one = job.post("/?site=ams2")
        assert one.status_code == 200 and one.json()["site"] == "ams2"
        assert one.json()["status"] == "ok" and "sites" not in one.json()
    assert not any(token in json.dumps(log_lines) for token in TOKENS.values())
    # The reconcile_failures metric counts phx1's failures only, each under its site.
    failures = counted(log_lines, "reconcile_failures")
    assert failures and {line["site"] for line in failures} == {"phx1"}
    oks = [line for line in log_lines if line.get("outcome") == "reconcile_ok"]
    assert {line["site"] for line in oks} == {"ams2"}


def test_a_site_refusing_the_credentials_fails_alone_and_is_no_retry(
    fleet: Fleet, deploy: Callable[..., Deployment], store_url: str, log_lines: list[dict]
) -> None:
    site = deploy()
    site.credentials("phx1", "phx1-admin:not-its-password")
    with function_app("reconcile_subscriptions", site.jobs_env()) as job:
        answer = job.post("/")
    body = answer.json()
    # Only a failure a retry cannot fix: 200, so Cloud Scheduler does not retry it.
    assert answer.status_code == 200 and "Retry-After" not in answer.headers
    assert (body["status"], body["ok"], body["failed"], body["retry"]) == (
        "error",
        ["ams2"],
        ["phx1"],
        [],
    )
    assert body["sites"][0]["error"]["code"] == "nvgrid_auth"
    assert registered(fleet, "ams2") == [site.url("ams2")] and registered(fleet, "phx1") == []
    assert "not-its-password" not in answer.text + json.dumps(log_lines)
    assert {line["site"] for line in counted(log_lines, "reconcile_failures")} == {"phx1"}


def test_a_site_not_served_or_named_twice_is_refused_and_nothing_is_asked(
    fleet: Fleet, deploy: Callable[..., Deployment]
) -> None:
    site = deploy()
    for target in ("reconcile_subscriptions", "teardown_subscriptions", "sample_load"):
        with function_app(target, site.jobs_env()) as job:
            unknown = job.post("/?site=default")  # this fleet has no default site
            twice = job.post("/?site=phx1&site=ams2")
        assert unknown.status_code == 404, unknown.text
        error = unknown.json()["error"]
        assert error["code"] == "unknown_site" and error["site"] == "default"
        assert "phx1, ams2" in error["message"]
        assert twice.status_code == 400
        assert twice.json()["error"]["code"] == "invalid_parameter"
    assert all(sim.rpc_counts() == {} for sim in fleet)


# -- teardown ----------------------------------------------------------------------------------


def test_teardown_of_one_site_leaves_the_other_registered(
    fleet: Fleet, deploy: Callable[..., Deployment], store_url: str
) -> None:
    site = deploy()
    env = site.jobs_env()
    with function_app("reconcile_subscriptions", env) as job:
        assert job.post("/").json()["ok"] == ["phx1", "ams2"]
    assert {s: registered(fleet, s) for s in SITES} == {s: [site.url(s)] for s in SITES}

    with function_app("teardown_subscriptions", env) as job:
        answer = job.post("/?site=phx1")
        body = answer.json()
        assert answer.status_code == 200 and (body["status"], body["site"]) == ("clean", "phx1")
        assert body["unregistered"] == [f"{site.receiver.url}/nvgrid/webhook/phx1?token=REDACTED"]
        assert registered(fleet, "phx1") == []
        assert registered(fleet, "ams2") == [site.url("ams2")]
        assert with_store(store_url, lambda s: s.subscriptions(site="phx1")) == []
        (kept,) = with_store(store_url, lambda s: s.subscriptions(site="ams2"))
        assert kept.registered and kept.site == "ams2"

        # ams2 still delivers, to its own path, stored as its own.
        with client(fleet, "ams2") as ams2:
            ams2.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id="on")
        wait_until(lambda: events_of(store_url, "ams2"), "ams2's start_ramp_down stored")
        assert events_of(store_url, "phx1") == []

        # Every site (what the teardown job sends): phx1 is clean already, ams2 now.
        every = job.post("/").json()
        assert (every["status"], every["ok"]) == ("clean", ["phx1", "ams2"])
        assert [s["unregistered"] for s in every["sites"]] == [
            [],
            [f"{site.receiver.url}/nvgrid/webhook/ams2?token=REDACTED"],
        ]
    assert all(registered(fleet, s) == [] for s in SITES)


# -- drift and stalled ramps -------------------------------------------------------------------


def test_drift_and_stalled_alerts_of_one_site_never_appear_under_the_other(
    fleet: Fleet, deploy: Callable[..., Deployment], store_url: str, log_lines: list[dict]
) -> None:
    """Both sites call their feed main_power_feed. phx1 loses the start_ramp_down of its
    curtailment (drift: DPS has a target no webhook told us of); ams2's ramp down stays
    open past the ramp deadline (a stalled ramp). Each is recorded and logged under its
    own site only."""
    site = deploy()
    env = site.jobs_env(GRIDHOOK_RAMP_DEADLINE_SECONDS="1")
    with function_app("reconcile_subscriptions", env) as job:
        assert job.post("/").json()["ok"] == ["phx1", "ams2"]
        fleet["phx1"].faults.drop_next = 1
        with client(fleet, "phx1") as phx1, client(fleet, "ams2") as ams2:
            phx1.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id="lost")
            ams2.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id="slow")
        wait_until(
            lambda: any(d.outcome == "dropped" for d in fleet["phx1"].deliveries), "the drop"
        )
        (start,) = wait_until(lambda: events_of(store_url, "ams2"), "ams2's start_ramp_down")
        # Past ams2's ramp deadline (1 s): its ramp down (40 s long) is stalled by then.
        wait_until(lambda: time.time() > start.received_at.timestamp() + 1.5, "the deadline")
        first = job.post("/").json()
        again = job.post("/").json()

    phx1, ams2 = first["sites"]
    assert [(d["feed_tag"], d["dps"]["correlation_id"]) for d in phx1["drift"]] == [
        ("main_power_feed", "lost")
    ]
    assert phx1["stalled"] == [] and ams2["drift"] == []
    assert [(s["feed_tag"], s["correlation_id"], s["new"]) for s in ams2["stalled"]] == [
        ("main_power_feed", "slow", True)
    ]
    # The same stall seen again is no new alert: insert-if-absent within its site.
    assert [s["new"] for s in again["sites"][1]["stalled"]] == [False]

    drift = {s: with_store(store_url, lambda st, s=s: st.drift(site=s)) for s in SITES}
    alerts = {s: with_store(store_url, lambda st, s=s: st.alerts(site=s)) for s in SITES}
    assert [(d.site, d.feed_tag, d.dps_view["correlation_id"]) for d in drift["phx1"]] == [
        ("phx1", "main_power_feed", "lost")
    ]
    assert drift["ams2"] == [] and alerts["phx1"] == []
    assert [(a.site, a.kind, a.correlation_id) for a in alerts["ams2"]] == [
        ("ams2", "episode_stalled", "slow")
    ]
    # Each line the drift and ramp_stalled metrics count names its own site.
    assert {line["site"] for line in counted(log_lines, "drift")} == {"phx1"}
    (stalled_line,) = counted(log_lines, "ramp_stalled")
    assert stalled_line["site"] == "ams2" and stalled_line["feed_tag"] == "main_power_feed"


# -- sample_load -------------------------------------------------------------------------------


def test_each_sites_sample_load_stores_only_its_own_samples(
    fleet: Fleet, deploy: Callable[..., Deployment], store_url: str, log_lines: list[dict]
) -> None:
    site = deploy()
    with client(fleet, "phx1") as phx1:
        phx1.set_load_target(6.0, "mw", feed_tags=["main_power_feed"], correlation_id="cut")

    def samples(name: str) -> list:
        return with_store(store_url, lambda s: s.samples(SampleQuery(site=name)).samples)

    with function_app("sample_load", site.jobs_env()) as job:
        every = job.post("/")
        body = every.json()
        assert every.status_code == 200 and body["ok"] == ["phx1", "ams2"]
        assert [(s["site"], s["feeds"], s["samples"]) for s in body["sites"]] == [
            ("phx1", 2, 2),
            ("ams2", 2, 2),
        ]
        by_site = {name: samples(name) for name in SITES}
        assert {s.site for s in by_site["phx1"]} == {"phx1"}
        assert {s.site for s in by_site["ams2"]} == {"ams2"}
        # phx1's DPS has the target: its samples say so; ams2's do not.
        assert {(s.feed_tag, s.correlation_id, s.target_w) for s in by_site["phx1"]} == {
            ("main_power_feed", "cut", 6e6),
            ("backup_power_feed", None, None),
        }
        assert {s.correlation_id for s in by_site["ams2"]} == {None}

        # One site's run stores that site's samples only.
        time.sleep(0.01)  # DPS's next millisecond: a new sample time, so new samples
        one = job.post("/?site=ams2").json()
        assert (one["site"], one["samples"]) == ("ams2", 2)
    assert len(samples("ams2")) == 4 and samples("phx1") == by_site["phx1"]
    lines = [line for line in log_lines if line.get("outcome") == "sample_ok"]
    assert [line["site"] for line in lines] == ["phx1", "ams2", "ams2"]


# -- the CLI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_cli_acts_on_the_sites_named_and_its_exit_code_says_what_to_do(
    fleet: Fleet,
    deploy: Callable[..., Deployment],
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = deploy()
    for name, value in site.jobs_env().items():
        monkeypatch.setenv(name, value)

    def gridhook(*argv: str) -> tuple[int, Any]:
        code = main(list(argv))
        out = capsys.readouterr().out
        return code, json.loads(out) if out else None

    code, body = gridhook("reconcile", "--site", "ams2")
    assert code == 0 and (body["site"], body["status"]) == ("ams2", "ok")
    assert registered(fleet, "phx1") == [] and registered(fleet, "ams2") == [site.url("ams2")]

    code, body = gridhook("subscriptions", "--site", "ams2")
    assert code == 0 and [s["site"] for s in body["subscriptions"]] == ["ams2"]

    site.credentials("phx1", "phx1-admin:not-its-password")  # a fix is needed: exit 1
    code, body = gridhook("reconcile")
    assert code == 1 and (body["ok"], body["failed"], body["retry"]) == (["ams2"], ["phx1"], [])

    fleet["ams2"].stop(grace=0)  # and ams2's DPS is down: still 1, a person is needed
    code, body = gridhook("sample-load")
    assert code == 1 and body["retry"] == ["ams2"] and body["failed"] == ["phx1", "ams2"]

    site.credentials("phx1", "phx1-admin:phx1-password")  # only a retry is needed: exit 3
    code, body = gridhook("sample-load", "--site", "phx1", "--site", "ams2")
    assert code == 3 and (body["ok"], body["retry"]) == (["phx1"], ["ams2"])

    code, body = gridhook("teardown", "--site", "phx1")
    assert code == 0 and (body["site"], body["status"]) == ("phx1", "clean")
