"""Every NvGrid RPC through real gRPC (plaintext and TLS), with the schedule semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import empty_pb2

from dpsapi.v1 import nvgrid_pb2
from simulator import Simulator
from simulator.service import SIM_NOW_METADATA_KEY

from .support import Client, SimFactory, connect

MW = nvgrid_pb2.LoadValue.UNIT_MEGAWATT
SUCCESS = nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS
ERROR = nvgrid_pb2.LoadTargetResponse.STATUS_CODE_ERROR


def load_target(
    start: datetime | None = None,
    end: datetime | None = None,
    mw: float | None = 6.5,
    feeds: tuple[str, ...] = (),
    correlation_id: str = "",
    unit: int = MW,
) -> nvgrid_pb2.LoadTarget:
    target = nvgrid_pb2.LoadTarget(
        feed_tags=list(feeds),
        correlation_id=correlation_id,
        strategy=nvgrid_pb2.LoadTargetStrategy(best_effort=True),
    )
    if start is not None:
        target.interval.start_time.FromDatetime(start)
    if end is not None:
        target.interval.end_time.FromDatetime(end)
    if mw is not None:
        target.target_load.CopyFrom(nvgrid_pb2.LoadValue(value=mw, unit=unit))
    return target


def set_targets(client: Client, *targets: nvgrid_pb2.LoadTarget) -> nvgrid_pb2.LoadTargetResponse:
    return client.nvgrid.SetLoadTarget(
        nvgrid_pb2.LoadTargetRequest(load_targets=list(targets)),
        metadata=client.metadata,
        timeout=5,
    )


def schedule(
    client: Client, start: datetime, end: datetime | None = None, feeds: tuple[str, ...] = ()
) -> list[tuple[str, datetime, datetime | None, float | None, str]]:
    request = nvgrid_pb2.GetLoadScheduleRequest(feed_tags=list(feeds))
    request.interval.start_time.FromDatetime(start)
    if end is not None:
        request.interval.end_time.FromDatetime(end)
    response = client.nvgrid.GetLoadSchedule(request, metadata=client.metadata, timeout=5)
    return [
        (
            t.feed_tags[0],
            t.interval.start_time.ToDatetime(tzinfo=UTC),
            t.interval.end_time.ToDatetime(tzinfo=UTC) if t.interval.HasField("end_time") else None,
            t.target_load.value if t.HasField("target_load") else None,
            t.correlation_id,
        )
        for t in response.load_targets
    ]


def test_get_metadata(sim_and_client: tuple[Simulator, Client]) -> None:
    _, client = sim_and_client
    metadata = client.nvgrid.GetMetadata(
        empty_pb2.Empty(), metadata=client.metadata, timeout=5
    ).metadata
    assert set(metadata) == {"main_power_feed", "backup_power_feed"}
    main = metadata["main_power_feed"]
    assert (main.min_power_cap.value, main.max_power_cap.value, main.default_constraint.value) == (
        2,
        12,
        10,
    )
    assert main.default_constraint.unit == MW


def test_set_load_target_then_current_target_status_and_schedule(
    sim_and_client: tuple[Simulator, Client],
) -> None:
    sim, client = sim_and_client
    now = sim.clock.now()
    response = set_targets(
        client, load_target(now, now + timedelta(hours=1), 7.0, ("main_power_feed",), "corr-1")
    )
    assert response.code == SUCCESS, response.diag_msg
    assert [d.code for d in response.details] == [SUCCESS]

    current = client.nvgrid.GetCurrentLoadTarget(
        empty_pb2.Empty(), metadata=client.metadata, timeout=5
    )
    main = current.load_targets["main_power_feed"]
    assert (main.target_load.value, main.target_load.unit, main.correlation_id) == (
        7.0,
        MW,
        "corr-1",
    )
    assert main.strategy.best_effort
    # A feed without a scheduled target is listed too, without target_load (= the default).
    assert not current.load_targets["backup_power_feed"].HasField("target_load")

    status = client.nvgrid.GetStatus(
        empty_pb2.Empty(), metadata=client.metadata, timeout=5
    ).statuses
    assert status["main_power_feed"].current_target.correlation_id == "corr-1"
    # The calculated load has started moving from the 10 MW default toward 7 MW.
    assert 7.0 <= status["main_power_feed"].calculated_load.value <= 10.0
    assert status["main_power_feed"].calculated_load.unit == MW
    assert status["backup_power_feed"].calculated_load.value == 8.0

    rows = schedule(client, now - timedelta(minutes=1), now + timedelta(hours=2))
    assert [(feed, value, cid) for feed, _, _, value, cid in rows] == [
        ("main_power_feed", 7.0, "corr-1")
    ]


def test_schedule_semantics_over_grpc(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    t0 = sim.clock.now().replace(microsecond=0) + timedelta(days=1)  # far enough to stay future
    hour = timedelta(hours=1)
    assert (
        set_targets(client, load_target(t0, t0 + 4 * hour, 8.0, correlation_id="all-feeds")).code
        == SUCCESS
    )
    assert (
        set_targets(
            client, load_target(t0 + hour, t0 + 2 * hour, None, ("main_power_feed",), "reset")
        ).code
        == SUCCESS
    )
    assert (
        set_targets(
            client, load_target(t0 + 3 * hour, None, 3.0, ("backup_power_feed",), "open")
        ).code
        == SUCCESS
    )

    assert schedule(client, t0, t0 + 5 * hour, ("main_power_feed",)) == [
        ("main_power_feed", t0, t0 + hour, 8.0, "all-feeds"),
        ("main_power_feed", t0 + hour, t0 + 2 * hour, None, "reset"),  # null target = default
        ("main_power_feed", t0 + 2 * hour, t0 + 4 * hour, 8.0, "all-feeds"),
    ]
    assert schedule(client, t0 + 30 * timedelta(minutes=1), None, ("backup_power_feed",)) == [
        ("backup_power_feed", t0 + timedelta(minutes=30), t0 + 3 * hour, 8.0, "all-feeds"),
        ("backup_power_feed", t0 + 3 * hour, None, 3.0, "open"),  # no end: until replaced
    ]
    # Without feed tags: every feed.
    assert {row[0] for row in schedule(client, t0, t0 + hour)} == {
        "main_power_feed",
        "backup_power_feed",
    }
    # Nothing scheduled in the past interval.
    assert schedule(client, t0 - 10 * hour, t0 - 9 * hour) == []


def test_missing_correlation_id_is_generated(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    start = sim.clock.now() + timedelta(days=1)
    response = set_targets(client, load_target(start, mw=6.0))
    assert response.code == SUCCESS
    assert response.details[0].correlation_id.startswith("sim-")
    assert sim.schedule_targets()[-1].correlation_id == response.details[0].correlation_id


def test_units_are_converted(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    start = sim.clock.now() + timedelta(days=1)
    assert (
        set_targets(
            client, load_target(start, mw=6500.0, unit=nvgrid_pb2.LoadValue.UNIT_KILOWATT)
        ).code
        == SUCCESS
    )
    assert sim.schedule_targets()[-1].value_watts == 6.5e6
    too_big = set_targets(client, load_target(start, mw=13e6, unit=nvgrid_pb2.LoadValue.UNIT_WATT))
    assert too_big.code == ERROR and "outside feed" in too_big.diag_msg


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (load_target(mw=6.5, feeds=("no_such_feed",)), "unknown feed tag(s): no_such_feed"),
        (load_target(mw=50.0), "outside feed main_power_feed caps [2, 12] MW"),
        (load_target(mw=6.5, unit=nvgrid_pb2.LoadValue.UNIT_UNSPECIFIED), "target_load.unit"),
        (
            load_target(
                datetime(2030, 1, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), mw=6.5
            ),
            "end_time must be after start_time",
        ),
    ],
)
def test_invalid_targets_are_refused_all_or_nothing(
    sim_client: tuple[Simulator, Client], target: nvgrid_pb2.LoadTarget, message: str
) -> None:
    sim, client = sim_client
    good = load_target(sim.clock.now() + timedelta(days=1), mw=6.0)
    response = set_targets(client, good, target)
    assert response.code == ERROR
    assert message in response.diag_msg
    assert [d.code for d in response.details] == [SUCCESS, ERROR]
    assert sim.schedule_targets() == []  # the valid one was not applied either


def test_empty_request_is_an_error(sim_client: tuple[Simulator, Client]) -> None:
    _, client = sim_client
    assert set_targets(client).code == ERROR


def test_register_and_unregister_webhook(sim_and_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_and_client
    url = "http://127.0.0.1:8080/nvgrid/webhook?token=abc"
    request = nvgrid_pb2.RegisterWebhookRequest(url=url)
    request.for_events.append(nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN)
    response = client.nvgrid.RegisterWebhook(request, metadata=client.metadata, timeout=5)
    assert response.code == SUCCESS
    [registration] = sim.registrations()
    assert (registration.url, registration.event_names) == (url, ("start_ramp_down",))

    unregister = nvgrid_pb2.UnregisterWebhookRequest(url=url)
    assert (
        client.nvgrid.UnregisterWebhook(unregister, metadata=client.metadata, timeout=5).code
        == SUCCESS
    )
    assert sim.registrations() == []
    again = client.nvgrid.UnregisterWebhook(unregister, metadata=client.metadata, timeout=5)
    assert (again.code, again.diag_msg) == (ERROR, "webhook URL not registered")


def test_rpc_counts_are_recorded(sim_client: tuple[Simulator, Client]) -> None:
    sim, client = sim_client
    for _ in range(3):
        client.nvgrid.GetStatus(empty_pb2.Empty(), metadata=client.metadata, timeout=5)
    assert sim.rpc_counts()["GetStatus"] == 3
    assert sim.rpc_counts()["Token"] == 1


def test_answers_carry_the_simulated_now(make_sim: SimFactory) -> None:
    sim = make_sim()
    sim.advance(timedelta(hours=2))  # far ahead of the local clock
    client = connect(sim)
    _, call = client.nvgrid.GetStatus.with_call(
        empty_pb2.Empty(), metadata=client.metadata, timeout=5
    )
    [sim_now] = [value for key, value in call.initial_metadata() if key == SIM_NOW_METADATA_KEY]
    reported = datetime.fromisoformat(sim_now.replace("Z", "+00:00"))
    assert abs(reported - sim.clock.now()) < timedelta(minutes=1)
    assert reported > datetime.now(UTC) + timedelta(hours=1)  # not the local clock
    client.channel.close()
