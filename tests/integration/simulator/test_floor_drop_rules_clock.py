"""The achievable floor, drop rules and `--clock`, through real gRPC, a real HTTP receiver and
the `gridhook-sim` process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2_grpc
from gridhook.clock import parse_dev_clock
from gridhook.schema import violations
from simulator import FaultKnobs
from simulator.cli import build_parser, config_from_args
from simulator.config import FeedConfig
from simulator.faults import DropRule
from simulator.service import SIM_NOW_METADATA_KEY
from simulator.units import parse_unit

from .conftest import WebhookReceiver
from .support import SimFactory, connect
from .test_cli import running_sim
from .test_rpcs import SUCCESS, load_target, set_targets
from .test_webhooks import register

MAIN = "main_power_feed"


def test_a_target_below_the_floor_is_delivered_as_not_met(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    mw = parse_unit("mw")
    sim = make_sim(feeds=[FeedConfig(MAIN, 2.0, 12.0, 10.0, mw, min_achievable=4.0)])
    client = connect(sim)
    register(client, receiver.url())
    start = sim.clock.now()
    target = load_target(start, start + timedelta(seconds=30), 3.0, (MAIN,), "evening-peak")
    assert set_targets(client, target).code == SUCCESS  # DPS accepts it: within the caps

    posts = receiver.wait_for(4)
    bodies = [post.body for post in posts]
    assert [(b["event"], b["calculated_load"]["value"], b["compliant"]) for b in bodies] == [
        ("start_ramp_down", 10.0, False),
        ("end_ramp_down", 4.0, False),  # stopped at the floor, above the 3 MW target
        ("start_ramp_up", 4.0, True),
        ("end_ramp_up", 10.0, True),
    ]
    assert bodies[1]["target_load"] == {"value": 3.0, "unit": "mw"}
    for body in bodies:
        assert violations(body) == []
    client.channel.close()


def test_drop_rules_drop_only_the_matching_deliveries(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    sim = make_sim(faults=FaultKnobs(drop_events=[DropRule("end_ramp_up", "second")]))
    client = connect(sim)
    register(client, receiver.url())
    start = sim.clock.now()
    for correlation_id, feed in (("first", MAIN), ("second", "backup_power_feed")):
        target = load_target(start, start + timedelta(seconds=20), 6.0, (feed,), correlation_id)
        assert set_targets(client, target).code == SUCCESS

    deliveries = sim.wait_for_deliveries(8)
    dropped = [(d.event, d.payload["correlation_id"], d.error) for d in deliveries if not d.attempt]
    assert dropped == [("end_ramp_up", "second", "fault: dropped (rule end_ramp_up:second)")]
    assert {d.outcome for d in deliveries if d.attempt} == {"delivered"}
    receiver.wait_for(7)
    received = sorted((p.body["correlation_id"], p.body["event"]) for p in receiver.received)
    assert ("second", "end_ramp_up") not in received
    assert ("first", "end_ramp_up") in received and len(received) == 7
    client.channel.close()


def test_cli_maps_drop_event_and_clock_onto_the_config() -> None:
    clock = "1440@2026-11-29T05:00:00Z@2026-11-30T02:00:00Z"
    args = build_parser().parse_args(
        ["--clock", clock, "--drop-event", "end_ramp_up:c-1", "--drop-event", ":c-2"]
    )
    config = config_from_args(args)
    assert config.clock == parse_dev_clock(clock)
    assert [str(rule) for rule in config.faults.drop_events] == ["end_ramp_up:c-1", ":c-2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clock", "fast"], "SPEED@SIM_TIME@REAL_TIME"),
        (["--clock", "1440@yesterday@now"], "not an RFC 3339 time"),
        (["--clock", "60@2026-01-01T00:00Z@2026-01-01T00:00Z", "--speed", "6"], "not allowed"),
        (["--drop-event", "end_ramp"], "unknown power event"),
    ],
)
def test_cli_refuses_bad_clock_and_drop_flags(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_clock_runs_like_gridhook_dev_clock(tmp_path: Path) -> None:
    # An hour a second, from a year ago: clearly not the real clock nor `--speed`'s start.
    dev_clock = parse_dev_clock(
        f"3600@2025-06-01T00:00:00Z@{datetime.now(UTC).isoformat().replace('+00:00', 'Z')}"
    )
    with (
        running_sim("--insecure", "--clock", str(dev_clock)) as started,
        grpc.insecure_channel(started["address"]) as channel,
    ):
        tokens = auth_pb2_grpc.AuthServiceStub(channel).Token(
            auth_pb2.TokenRequest(
                password_credential=auth_pb2.PasswordCredential(
                    username="admin", password="password"
                )
            ),
            timeout=10,
        )
        before = dev_clock.now()
        _, call = nvgrid_pb2_grpc.NvGridStub(channel).GetStatus.with_call(
            empty_pb2.Empty(),
            metadata=[("authorization", f"Bearer {tokens.access_token}")],
            timeout=10,
        )
        after = dev_clock.now()
    [shown] = [value for key, value in call.initial_metadata() if key == SIM_NOW_METADATA_KEY]
    sim_now = datetime.fromisoformat(shown.replace("Z", "+00:00"))
    # Exactly the dev clock's time (the metadata is cut to milliseconds).
    assert before - timedelta(milliseconds=1) <= sim_now <= after
