"""Relative times on the server's clock, through real gRPC: the simulator sends its (scaled,
advanced) clock as ``x-gridhook-sim-now``; a DPS that does not leaves the local clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2, nvgrid_pb2_grpc
from gridhook.cli.nvgrid import main
from gridhook.nvgrid import make_endpoint
from gridhook.nvgrid.client import NvGridClient


def close_to(a: datetime, b: datetime, seconds: float) -> bool:
    return abs((a - b).total_seconds()) <= seconds


@pytest.mark.parametrize("tls", ["verify", "plaintext"])
def test_the_client_learns_the_simulators_clock_from_any_answer(
    make_sim, endpoint_for, admin, tls: str
) -> None:
    sim = make_sim(insecure=tls == "plaintext")
    sim.advance(timedelta(hours=2))
    with NvGridClient(endpoint_for(sim, tls), admin) as client:
        assert client.server_clock_offset is None  # nothing answered yet
        client.get_status()
        offset = client.server_clock_offset
        assert offset is not None and abs(offset - timedelta(hours=2)) < timedelta(seconds=5)
        assert close_to(client.server_now(), sim.clock.now(), 1)


def test_sync_server_clock_follows_a_fast_simulator(make_sim, endpoint_for, admin) -> None:
    sim = make_sim(insecure=True, speed=60)
    with NvGridClient(endpoint_for(sim, "plaintext"), admin) as client:
        client.get_metadata()
        time.sleep(0.5)  # 30 simulated seconds: the offset learned above is now stale
        assert not close_to(client.server_now(), sim.clock.now(), 20)
        before = time.monotonic()
        synced = client.sync_server_clock()
        sim_now = sim.clock.now()
        latency = time.monotonic() - before  # a few ms, unless the machine is busy
        assert close_to(synced, sim_now, 1 + 60 * latency)  # the call's latency, times 60
        assert client.server_clock_offset > timedelta(seconds=25)


def test_cli_relative_times_land_on_the_simulators_clock(
    make_sim, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = make_sim(insecure=True)
    sim.advance(timedelta(hours=3))  # on the local clock, "now" is three hours in its past
    monkeypatch.setenv("NVGRID_USERNAME", "admin")
    monkeypatch.setenv("NVGRID_PASSWORD", "password")
    flags = ["--host", sim.address, "--insecure"]

    code = main(
        [
            "nvgrid", "set-load-target", *flags,
            "--value", "6", "--unit", "mw",
            "--start-time", "now", "--end-time", "+10m",
            "--feed-tags", "main_power_feed", "--correlation-id", "on-sim-time",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [target] = sim.schedule_targets()
    sim_now = sim.clock.now()
    assert close_to(target.start, sim_now, 5)
    assert target.end is not None and target.end - target.start == timedelta(minutes=10)
    # ... so it is in effect at once: the ramp-down has started.
    assert [e["event"] for e in sim.events] == ["start_ramp_down"]
    capsys.readouterr()

    code = main(["nvgrid", "get-schedule", *flags, "--start-time", "now", "--end-time", "+1h"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [t["correlation_id"] for t in out["load_targets"]] == ["on-sim-time"]


# --- a DPS that does not send its clock ------------------------------------------------------


class _Auth(auth_pb2_grpc.AuthServiceServicer):
    def Token(self, request: Any, context: grpc.ServicerContext) -> Any:
        return auth_pb2.TokenResponse(access_token="access", refresh_token="refresh")


class _NvGrid(nvgrid_pb2_grpc.NvGridServicer):
    def GetMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = nvgrid_pb2.FeedMetadata()
        response.metadata["main_power_feed"].max_power_cap.value = 12
        return response


@pytest.fixture
def plain_dps() -> Iterator[str]:
    """A minimal NvGrid server answering Token and GetMetadata, with no clock metadata."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(_Auth(), server)
    nvgrid_pb2_grpc.add_NvGridServicer_to_server(_NvGrid(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=0)


def test_without_the_servers_clock_the_local_clock_is_used(plain_dps, admin, fast_policy) -> None:
    endpoint = make_endpoint(plain_dps, tls="plaintext", policy=fast_policy, environ={})
    with NvGridClient(endpoint, admin) as client:
        synced = client.sync_server_clock()
        assert client.server_clock_offset is None
        assert close_to(synced, datetime.now(UTC), 1)
