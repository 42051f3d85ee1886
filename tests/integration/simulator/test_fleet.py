"""A fleet of simulated DPS sites in one process, over real gRPC: each site its own targets,
registrations, webhooks, users, clock and load; one site stopped or faulted leaves the
others answering; `gridhook-sim --sites N` serves them on consecutive ports."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from dpsapi.v1 import nvgrid_pb2
from simulator import Fleet, SimulatorConfig, fleet_configs, start_fleet
from simulator.cli import build_parser, fleet_from_args

from .conftest import WebhookReceiver
from .support import PASSWORD, USER, Client, connect
from .test_cli import REPO_ROOT, _call_metadata

MW = nvgrid_pb2.LoadValue.UNIT_MEGAWATT
SITES = ("phx1", "nyc1")


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    base = SimulatorConfig(
        port=0,
        insecure=True,
        users={USER: PASSWORD},
        speed=60.0,
        ramp_rate_mw_per_minute=60.0,
        call_timeout=5.0,
    )
    running = start_fleet(fleet_configs(base, SITES))
    yield running
    running.stop(grace=0)


@pytest.fixture
def clients(fleet: Fleet) -> Iterator[dict[str, Client]]:
    opened = {sim.site: connect(sim) for sim in fleet}
    yield opened
    for client in opened.values():
        client.channel.close()


def curtail(client: Client, mw: float, correlation_id: str, minutes: float = 30) -> None:
    target = nvgrid_pb2.LoadTarget(
        feed_tags=["main_power_feed"],
        correlation_id=correlation_id,
        target_load=nvgrid_pb2.LoadValue(value=mw, unit=MW),
    )
    now = datetime.now(UTC)
    target.interval.start_time.FromDatetime(now - timedelta(days=1))  # in effect at once
    target.interval.end_time.FromDatetime(now + timedelta(days=1, minutes=minutes))
    answer = client.nvgrid.SetLoadTarget(
        nvgrid_pb2.LoadTargetRequest(load_targets=[target]), metadata=client.metadata, timeout=5
    )
    assert answer.code == nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS, answer.diag_msg


def register(client: Client, url: str) -> nvgrid_pb2.LoadTargetResponse:
    return client.nvgrid.RegisterWebhook(
        nvgrid_pb2.RegisterWebhookRequest(url=url), metadata=client.metadata, timeout=5
    )


def status(client: Client) -> nvgrid_pb2.LoadTargetStatus:
    return client.nvgrid.GetStatus(empty_pb2.Empty(), metadata=client.metadata, timeout=5)


def test_every_site_listens_on_its_own_port_with_its_own_name(fleet: Fleet) -> None:
    assert [sim.site for sim in fleet] == list(SITES)
    assert len({sim.port for sim in fleet}) == 2
    assert fleet["nyc1"] is fleet.sites["nyc1"]
    with pytest.raises(KeyError, match="no site 'lax1'; the sites are phx1, nyc1"):
        fleet["lax1"]


def test_a_target_on_one_site_never_shows_on_the_other(
    fleet: Fleet, clients: dict[str, Client], receiver: WebhookReceiver
) -> None:
    for site in SITES:
        assert register(clients[site], receiver.url(f"/nvgrid/webhook/{site}")).code == 1
    curtail(clients["phx1"], 6.0, "phx1-peak")
    fleet["phx1"].wait_for_deliveries(2)  # start_ramp_down and end_ramp_down

    phx, nyc = clients["phx1"], clients["nyc1"]
    current = nyc.nvgrid.GetCurrentLoadTarget(empty_pb2.Empty(), metadata=nyc.metadata, timeout=5)
    assert not current.load_targets["main_power_feed"].HasField("target_load")
    schedule = nyc.nvgrid.GetLoadSchedule(
        nvgrid_pb2.GetLoadScheduleRequest(), metadata=nyc.metadata, timeout=5
    )
    assert list(schedule.load_targets) == []
    assert status(nyc).statuses["main_power_feed"].calculated_load.value == 10.0
    assert status(phx).statuses["main_power_feed"].calculated_load.value == 6.0
    assert fleet["nyc1"].events == [] and fleet["nyc1"].deliveries == []
    assert fleet["nyc1"].schedule_targets() == []
    # Every webhook came from the site that had the target, to that site's URL.
    assert {r.path for r in receiver.wait_for(2)} == {"/nvgrid/webhook/phx1"}
    assert {r.body["correlation_id"] for r in receiver.received} == {"phx1-peak"}


def test_the_same_correlation_id_on_two_sites_is_two_independent_targets(
    fleet: Fleet, clients: dict[str, Client]
) -> None:
    curtail(clients["phx1"], 6.0, "evening-peak")
    curtail(clients["nyc1"], 4.0, "evening-peak")
    fleet["phx1"].advance(60)
    fleet["nyc1"].advance(60)
    assert fleet["phx1"].calculated_load_mw("main_power_feed") == 6.0
    assert fleet["nyc1"].calculated_load_mw("main_power_feed") == 4.0


def test_registrations_are_per_site(fleet: Fleet, clients: dict[str, Client]) -> None:
    assert register(clients["phx1"], "http://127.0.0.1:9/nvgrid/webhook/phx1").code == 1
    assert register(clients["nyc1"], "http://127.0.0.1:9/nvgrid/webhook/nyc1").code == 1
    assert [r.url for r in fleet["phx1"].registrations()] == [
        "http://127.0.0.1:9/nvgrid/webhook/phx1"
    ]
    assert [r.url for r in fleet["nyc1"].registrations()] == [
        "http://127.0.0.1:9/nvgrid/webhook/nyc1"
    ]
    # One site's URL is unknown to the other; unregistering it there changes nothing.
    nyc = clients["nyc1"]
    answer = nyc.nvgrid.UnregisterWebhook(
        nvgrid_pb2.UnregisterWebhookRequest(url="http://127.0.0.1:9/nvgrid/webhook/phx1"),
        metadata=nyc.metadata,
        timeout=5,
    )
    assert answer.diag_msg == "webhook URL not registered"
    assert len(fleet["phx1"].registrations()) == 1
    fleet["phx1"].clear_registrations()  # a restart of one DPS
    assert len(fleet["nyc1"].registrations()) == 1


def test_a_token_of_one_site_is_refused_by_the_other(clients: dict[str, Client]) -> None:
    phx, nyc = clients["phx1"], clients["nyc1"]
    with pytest.raises(grpc.RpcError) as refused:
        nyc.nvgrid.GetStatus(empty_pb2.Empty(), metadata=phx.metadata, timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(status(nyc).statuses) == 2


def test_each_site_keeps_its_own_users() -> None:
    base = SimulatorConfig(port=0, insecure=True, users={"ops": "shared"})
    configs = fleet_configs(base, SITES, users={"nyc1": {"nyc-ops": "own"}})
    with start_fleet(configs) as running:
        with grpc.insecure_channel(running["phx1"].address) as channel:
            assert _call_metadata(channel, "ops", "shared") == 2
        with grpc.insecure_channel(running["nyc1"].address) as channel:
            assert _call_metadata(channel, "nyc-ops", "own") == 2
            with pytest.raises(grpc.RpcError) as refused:
                _call_metadata(channel, "ops", "shared")
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_log_lines_say_which_site_wrote_them(
    fleet: Fleet, clients: dict[str, Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="simulator")
    curtail(clients["nyc1"], 6.0, "nyc1-peak")
    fleet["nyc1"].advance(60)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("simulator")]
    for kind in ("load target scheduled", "power event"):
        written = [line for line in lines if line.startswith(kind)]
        assert written and all(line.endswith(" site=nyc1") for line in written), lines


def test_each_site_has_its_own_clock(fleet: Fleet) -> None:
    before = fleet["nyc1"].clock.now()
    fleet["phx1"].advance(timedelta(hours=5))
    assert fleet["phx1"].clock.now() - fleet["nyc1"].clock.now() >= timedelta(hours=4, minutes=59)
    assert fleet["nyc1"].clock.now() - before < timedelta(hours=1)


def test_a_stopped_site_leaves_the_other_answering_and_delivering(
    fleet: Fleet, clients: dict[str, Client], receiver: WebhookReceiver
) -> None:
    assert register(clients["nyc1"], receiver.url("/nvgrid/webhook/nyc1")).code == 1
    fleet["phx1"].stop(grace=0)
    with pytest.raises(grpc.RpcError) as down:
        status(clients["phx1"])
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(status(clients["nyc1"]).statuses) == 2
    curtail(clients["nyc1"], 7.0, "nyc1-alone")
    assert {r.body["event"] for r in receiver.wait_for(2)} == {"start_ramp_down", "end_ramp_down"}


def test_a_faulted_site_leaves_the_other_answering(
    fleet: Fleet, clients: dict[str, Client]
) -> None:
    fleet["phx1"].faults.fail_rpcs_for(60)
    with pytest.raises(grpc.RpcError) as outage:
        status(clients["phx1"])
    assert outage.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(status(clients["nyc1"]).statuses) == 2
    assert fleet["nyc1"].faults.unavailable_until == 0.0  # knobs are per site


def test_the_load_model_is_per_site_and_served_over_grpc() -> None:
    base = SimulatorConfig(port=0, insecure=True, users={USER: PASSWORD}, load_seed=11)
    configs = fleet_configs(base, SITES, timezones={"nyc1": "America/New_York"})
    with start_fleet(configs) as running:
        loads = {}
        for sim in running:
            client = connect(sim)
            try:
                answer, call = client.nvgrid.GetStatus.with_call(
                    empty_pb2.Empty(), metadata=client.metadata, timeout=5
                )
            finally:
                client.channel.close()
            server_now = datetime.fromisoformat(dict(call.initial_metadata())["x-gridhook-sim-now"])
            loads[sim.site] = answer.statuses["main_power_feed"].calculated_load.value
            # What GetStatus says is the site's model at the simulator's now (it moves a
            # few watts a second), under the 10 MW default constraint.
            assert loads[sim.site] == pytest.approx(
                sim.natural_load_mw("main_power_feed", server_now), abs=0.01
            )
            assert loads[sim.site] < 10.0
        assert running["nyc1"].timezone.key == "America/New_York"
        assert loads["phx1"] != loads["nyc1"]


def test_a_site_that_cannot_listen_is_named_and_the_others_are_stopped() -> None:
    with start_fleet(fleet_configs(SimulatorConfig(port=0, insecure=True), ["a"])) as taken:
        base = SimulatorConfig(port=0, insecure=True)
        first, second = fleet_configs(base, ["free", "clash"])
        second.port = taken["a"].port
        with pytest.raises(OSError, match=r"^site clash: cannot listen on 127\.0\.0\.1:\d+"):
            start_fleet([first, second])
        # the site that had started was stopped again: none of its threads is left
        assert not [t.name for t in threading.enumerate() if t.name.startswith("sim-free-")]
        # one site: the simulator's own message, as before fleets
        (alone,) = fleet_configs(base, ["site-1"])
        alone.port = taken["a"].port
        with pytest.raises(OSError, match=r"^cannot listen on 127\.0\.0\.1:\d+"):
            start_fleet([alone])


def test_fleet_configs_give_consecutive_ports_and_a_ca_per_site(tmp_path: Path) -> None:
    base = SimulatorConfig(port=50100, tls_dir=tmp_path, users={"a": "b"})
    configs = fleet_configs(base, ["s1", "s2", "s3"], fault_sites=["s2"])
    assert [c.port for c in configs] == [50100, 50101, 50102]
    assert [c.tls_dir for c in configs] == [tmp_path / "s1", tmp_path / "s2", tmp_path / "s3"]
    assert len({id(c.faults) for c in configs}) == 3
    with pytest.raises(ValueError, match="unknown site"):
        fleet_configs(base, ["s1"], timezones={"s9": "UTC"})
    # one site: the TLS directory and port as they were
    (single,) = fleet_configs(base, ["site-1"])
    assert (single.port, single.tls_dir) == (50100, tmp_path)


def test_the_command_line_maps_sites_time_zones_users_feeds_and_faults(tmp_path: Path) -> None:
    own_feeds = tmp_path / "a=b.json"
    own_feeds.write_text(
        json.dumps({"feeds": [{"tag": "x", "min_cap": 1, "max_cap": 3, "default_constraint": 2}]})
    )
    args = build_parser().parse_args(
        [
            "--sites", "3", "--port", "6000",
            "--timezone", "Europe/Berlin", "--timezone", "site-3=Asia/Tokyo",
            "--user", "ops:pw", "--user", "site-2=other:pw2",
            "--feeds", f"site-1={own_feeds}",
            "--drop-next", "2", "--faults-on", "site-3",
            "--load-seed", "5",
        ]
    )  # fmt: skip
    configs = fleet_from_args(args)
    assert [(c.site, c.port, c.timezone) for c in configs] == [
        ("site-1", 6000, "Europe/Berlin"),
        ("site-2", 6001, "Europe/Berlin"),
        ("site-3", 6002, "Asia/Tokyo"),
    ]
    assert [dict(c.users) for c in configs] == [{"ops": "pw"}, {"other": "pw2"}, {"ops": "pw"}]
    default_tags = ["main_power_feed", "backup_power_feed"]
    assert [[f.tag for f in c.feeds or ()] for c in configs] == [["x"], default_tags, default_tags]
    assert [c.faults.drop_next for c in configs] == [0, 0, 2]
    assert {c.load_seed for c in configs} == {5}
    # a feeds file for every site (a path with "=" in it is still a path)
    (single,) = fleet_from_args(build_parser().parse_args(["--feeds", str(own_feeds)]))
    assert [f.tag for f in single.feeds or ()] == ["x"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sites", "2", "--site-name", "a"], "--sites 2 but 1 site name(s) given"),
        (["--site-name", "a", "--site-name", "a"], "site names must be unique"),
        (["--sites", "2", "--timezone", "site-9=UTC"], "unknown site(s) site-9"),
    ],
)
def test_inconsistent_site_flags_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        fleet_from_args(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [["--site-name", "Bad_Name"], ["--timezone", "Mars/Olympus"], ["--sites", "0"]],
)
def test_bad_site_flags_exit_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


@contextmanager
def serving(*args: str, sites: int) -> Iterator[list[str]]:
    """`gridhook-sim ARGS` as a process; yields its first `sites` stdout lines (one per site,
    printed once every site serves), then stops it with SIGTERM and expects exit 0."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "--port", "0", "--log-level", "WARNING", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(sites)]
        if not all(lines):
            errors = process.stderr.read() if process.stderr else ""
            pytest.fail(f"gridhook-sim did not start: {lines!r}; stderr: {errors}")
        yield lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


LISTENING = re.compile(
    r"listening on (?P<address>\S+) tls=(?P<tls>on|off) ca=(?P<ca>\S+) "
    r"site=(?P<site>\S+) timezone=(?P<timezone>\S+)"
)


def test_the_command_serves_two_sites_each_with_its_own_ca(tmp_path: Path) -> None:
    args = (
        "--sites", "2", "--tls-dir", str(tmp_path),
        "--timezone", "site-2=Europe/Berlin",
    )  # fmt: skip
    with serving(*args, sites=2) as lines:
        started = [LISTENING.search(line) for line in lines]
        assert all(started), lines
        first, second = (match for match in started if match)
        assert (first["site"], first["timezone"]) == ("site-1", "UTC")
        assert (second["site"], second["timezone"]) == ("site-2", "Europe/Berlin")
        assert Path(first["ca"]) == tmp_path / "site-1" / "ca.pem"
        assert Path(second["ca"]) == tmp_path / "site-2" / "ca.pem"
        for match in (first, second):
            port = match["address"].rsplit(":", 1)[1]
            credentials = grpc.ssl_channel_credentials(Path(match["ca"]).read_bytes())
            with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
                assert _call_metadata(channel, "admin", "password") == 2
        # site-1's CA does not vouch for site-2: each site is its own DPS.
        port = second["address"].rsplit(":", 1)[1]
        foreign = grpc.ssl_channel_credentials(Path(first["ca"]).read_bytes())
        with grpc.secure_channel(f"localhost:{port}", foreign) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                _call_metadata(channel, "admin", "password")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
