"""Every fault knob, observed through real gRPC and a real HTTP receiver."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import empty_pb2

from dpsapi.v1 import nvgrid_pb2
from simulator import FaultKnobs, Simulator

from .conftest import WebhookReceiver
from .support import Client, SimFactory, connect
from .test_rpcs import SUCCESS, load_target, set_targets
from .test_webhooks import register


def curtail(client: Client, mw: float = 6.5, correlation_id: str = "c") -> None:
    """A target on the main feed now: start_ramp_down, then end_ramp_down shortly after."""
    response = set_targets(
        client, load_target(mw=mw, feeds=("main_power_feed",), correlation_id=correlation_id)
    )
    assert response.code == SUCCESS, response.diag_msg


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


@pytest.mark.parametrize(
    "knobs", [FaultKnobs(duplicate_every=1), FaultKnobs(duplicate_probability=1.0)]
)
def test_duplicate_deliveries(
    make_sim: SimFactory, receiver: WebhookReceiver, knobs: FaultKnobs
) -> None:
    sim = make_sim(faults=knobs)
    client = connect(sim)
    register(client, receiver.url())
    curtail(client)
    posts = receiver.wait_for(4)
    assert sorted(receiver.events()) == ["end_ramp_down"] * 2 + ["start_ramp_down"] * 2
    # The copy is byte-for-byte the same payload (what a receiver must deduplicate).
    starts = [p.body for p in posts if p.body["event"] == "start_ramp_down"]
    assert starts[0] == starts[1]
    assert sum(d.duplicate for d in sim.wait_for_deliveries(4)) == 2
    client.channel.close()


def test_duplicate_every_second_delivery(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    sim = make_sim(faults=FaultKnobs(duplicate_every=2))
    client = connect(sim)
    register(client, receiver.url())
    curtail(client)
    receiver.wait_for(3)
    assert sorted(receiver.events()) == ["end_ramp_down", "end_ramp_down", "start_ramp_down"]
    client.channel.close()


def test_drop_next_delivery(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    sim = make_sim(faults=FaultKnobs(drop_next=1))
    client = connect(sim)
    register(client, receiver.url())
    curtail(client)
    deliveries = sim.wait_for_deliveries(2)
    assert [(d.event, d.outcome) for d in deliveries] == [
        ("start_ramp_down", "dropped"),
        ("end_ramp_down", "delivered"),
    ]
    assert receiver.events() == ["end_ramp_down"]
    assert sim.faults.drop_next == 0  # consumed
    client.channel.close()


def test_drop_probability_one_drops_everything(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    sim.faults.drop_probability = 1.0  # knobs can be changed on a running simulator
    register(client, receiver.url())
    curtail(client)
    assert {d.outcome for d in sim.wait_for_deliveries(2)} == {"dropped"}
    assert receiver.received == []


def test_reorder_sends_a_full_batch_shuffled(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    # One delivery at a time, so the order sent is the order received.
    sim = make_sim(concurrency=1, faults=FaultKnobs(reorder_batch=2, reorder_hold=30.0))
    client = connect(sim)
    register(client, receiver.url())
    curtail(client)
    receiver.wait_for(2)
    assert receiver.events() == ["end_ramp_down", "start_ramp_down"]
    client.channel.close()


def test_reorder_flushes_a_partial_batch_after_the_hold(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    # The hold leaves room for the two events to be generated and checked on a busy machine.
    sim = make_sim(concurrency=1, faults=FaultKnobs(reorder_batch=10, reorder_hold=1.0))
    client = connect(sim)
    register(client, receiver.url())
    curtail(client)
    wait_until(lambda: len(sim.events) == 2)
    assert receiver.received == []  # held
    receiver.wait_for(2, timeout=5)
    assert receiver.events() == ["end_ramp_down", "start_ramp_down"]
    client.channel.close()


def test_retry_on_non_200_until_success(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    knobs = FaultKnobs(retry_on_failure=True, retry_max_attempts=3, retry_backoff=0.01)
    sim = make_sim(faults=knobs)
    client = connect(sim)
    register(client, receiver.url(), nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN)
    receiver.statuses = [500, 503]
    curtail(client)
    posts = receiver.wait_for(3)
    assert [p.body for p in posts] == [posts[0].body] * 3
    deliveries = sim.wait_for_deliveries(3)
    assert [(d.attempt, d.outcome, d.status) for d in deliveries] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "delivered", 200),
    ]
    client.channel.close()


def test_retries_are_bounded(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    knobs = FaultKnobs(retry_on_failure=True, retry_max_attempts=2, retry_backoff=0.01)
    sim = make_sim(faults=knobs)
    client = connect(sim)
    register(client, receiver.url(), nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN)
    receiver.status = 500
    curtail(client)
    sim.wait_for_deliveries(2)
    with pytest.raises(TimeoutError):
        sim.wait_for_deliveries(3, timeout=0.2)
    assert [(d.attempt, d.status) for d in sim.deliveries] == [(1, 500), (2, 500)]
    client.channel.close()


def test_no_retry_by_default(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    assert sim.faults.retry_on_failure is False
    register(client, receiver.url())
    receiver.statuses = [500]  # only the first answer fails
    curtail(client)
    deliveries = sim.wait_for_deliveries(2)
    assert [(d.event, d.outcome, d.status) for d in deliveries] == [
        ("start_ramp_down", "failed", 500),
        ("end_ramp_down", "delivered", 200),
    ]
    assert receiver.events() == ["start_ramp_down", "end_ramp_down"]  # nothing re-sent


def test_connection_errors_are_failures_and_retried(make_sim: SimFactory) -> None:
    knobs = FaultKnobs(retry_on_failure=True, retry_max_attempts=2, retry_backoff=0.01)
    sim = make_sim(faults=knobs)
    client = connect(sim)
    closed_port = _unused_port()
    register(
        client,
        f"http://127.0.0.1:{closed_port}/hook",
        nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN,
    )
    curtail(client)
    deliveries = sim.wait_for_deliveries(2)
    assert [(d.attempt, d.outcome, d.status) for d in deliveries] == [
        (1, "failed", None),
        (2, "failed", None),
    ]
    assert all(d.error for d in deliveries)
    client.channel.close()


def test_call_timeout_bounds_each_post(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    sim = make_sim(call_timeout=0.1)
    client = connect(sim)
    register(client, receiver.url(), nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN)
    receiver.delay = 2.0
    curtail(client)
    [delivery] = sim.wait_for_deliveries(1, timeout=1.5)  # before the receiver even answers
    assert (delivery.outcome, delivery.status) == ("failed", None)
    assert "timed out" in (delivery.error or "")
    client.channel.close()


def test_concurrency_bounds_parallel_deliveries(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    sim = make_sim(concurrency=2)
    client = connect(sim)
    for index in range(5):
        register(
            client,
            receiver.url(f"/r{index}"),
            nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN,
        )
    receiver.delay = 0.15
    curtail(client)
    receiver.wait_for(5)
    assert receiver.max_in_flight == 2
    client.channel.close()


def test_unavailable_for_the_next_n_calls(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    sim.faults.unavailable_calls = 2
    codes = []
    for _ in range(3):
        try:
            client.nvgrid.GetStatus(empty_pb2.Empty(), metadata=client.metadata, timeout=5)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())
    assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]


def test_unavailable_for_a_while_including_auth(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    sim.faults.fail_rpcs_for(1.0)  # long enough for both refused calls on a busy machine
    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        client.nvgrid.GetMetadata(empty_pb2.Empty(), metadata=client.metadata, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as caught:
        connect(sim)  # AuthService.Token fails too
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

    def recovered() -> bool:
        try:
            client.nvgrid.GetMetadata(empty_pb2.Empty(), metadata=client.metadata, timeout=5)
        except grpc.RpcError:
            return False
        return True

    wait_until(recovered, timeout=3)
    assert time.monotonic() - began >= 0.25


def test_clear_registrations_simulates_a_dps_restart(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    register(client, receiver.url())
    sim.clear_registrations()
    assert sim.registrations() == []
    curtail(client)
    wait_until(lambda: len(sim.events) == 2)
    assert sim.deliveries == []


def test_stop_then_start_on_the_same_port_loses_registrations_and_tokens(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    first = make_sim()
    client = connect(first)
    register(client, receiver.url())
    first.stop()
    second = make_sim(port=first.port)
    assert second.port == first.port and second.registrations() == []
    with pytest.raises(grpc.RpcError) as caught:  # the same channel reconnects; the token is gone
        client.nvgrid.GetStatus(
            empty_pb2.Empty(), metadata=client.metadata, timeout=5, wait_for_ready=True
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client.channel.close()


def test_stop_leaves_no_simulator_threads(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    sim = make_sim()
    client = connect(sim)
    register(client, receiver.url())
    curtail(client)
    sim.wait_for_deliveries(2)
    client.channel.close()
    sim.stop()
    sim.stop()  # idempotent
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("sim-")]
    assert leftovers == []


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_second_simulator_cannot_take_a_port_in_use(make_sim: SimFactory) -> None:
    first = make_sim()
    with pytest.raises(OSError, match="cannot listen"):
        make_sim(port=first.port)
