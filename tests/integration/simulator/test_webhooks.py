"""Ramp model + webhook dispatch to a real HTTP server, whitelist, event filters, the seed."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from dpsapi.v1 import nvgrid_pb2
from simulator import Simulator

from .conftest import WebhookReceiver
from .support import Client, SimFactory, connect
from .test_rpcs import SUCCESS, load_target, set_targets

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "power-event.schema.json").read_text()
)
SEED_KEYS = [
    "event",
    "feed_tag",
    "start_time",
    "end_time",
    "strategy",
    "target_load",
    "prev_target_load",
    "calculated_load",
    "compliant",
    "correlation_id",
]
Event = nvgrid_pb2.RegisterWebhookRequest


def register(client: Client, url: str, *events: int) -> nvgrid_pb2.LoadTargetResponse:
    request = nvgrid_pb2.RegisterWebhookRequest(url=url, for_events=list(events))
    return client.nvgrid.RegisterWebhook(request, metadata=client.metadata, timeout=5)


def test_full_curtailment_delivers_four_events_in_seed_shape(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    url = receiver.url("/nvgrid/webhook?token=s3cret")
    assert register(client, url).code == SUCCESS
    start = sim.clock.now() + timedelta(seconds=15)  # 0.25 real seconds at speed 60
    end = start + timedelta(seconds=30)
    target = load_target(start, end, 6.5, ("main_power_feed",), "curtailment-1")
    assert set_targets(client, target).code == SUCCESS

    posts = receiver.wait_for(4, timeout=10)
    assert receiver.events() == ["start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up"]
    for post in posts:
        assert post.path == "/nvgrid/webhook?token=s3cret"  # the query string is kept
        assert post.content_type == "application/json"
        assert list(post.body) == SEED_KEYS
        jsonschema.validate(post.body, SCHEMA)
        assert post.body["feed_tag"] == "main_power_feed"
        assert post.body["correlation_id"] == "curtailment-1"  # one id links the episode
        assert post.body["strategy"] == "best_effort"
        assert post.body["start_time"].endswith("Z")
    start_down, end_down, start_up, end_up = (p.body for p in posts)
    assert start_down["target_load"] == {"value": 6.5, "unit": "mw"}
    assert start_down["prev_target_load"] == {"value": 10.0, "unit": "mw"}
    assert start_down["calculated_load"] == {"value": 10.0, "unit": "mw"}
    assert start_down["compliant"] is False
    assert start_down["end_time"] is not None
    assert end_down["calculated_load"] == {"value": 6.5, "unit": "mw"}
    assert end_down["compliant"] is True
    # At the target's end: back to the default, starting at that end, open-ended.
    assert start_up["target_load"] == {"value": 10.0, "unit": "mw"}
    assert start_up["prev_target_load"] == {"value": 6.5, "unit": "mw"}
    assert start_up["start_time"] == start_down["end_time"]
    assert start_up["end_time"] is None
    assert end_up["calculated_load"] == {"value": 10.0, "unit": "mw"}
    assert sim.calculated_load_mw("main_power_feed") == 10.0
    assert [d.outcome for d in sim.deliveries] == ["delivered"] * 4
    assert [e["event"] for e in sim.events] == receiver.events()


def test_ramp_takes_simulated_time_at_the_configured_rate(
    make_sim: SimFactory, receiver: WebhookReceiver
) -> None:
    # 10 -> 7 MW at 6 MW per simulated minute = 30 simulated s = 0.5 real s at speed 60.
    sim = make_sim(ramp_rate_mw_per_minute=6.0)
    client = connect(sim)
    register(client, receiver.url())
    set_targets(client, load_target(mw=7.0, feeds=("main_power_feed",), correlation_id="slow"))
    sim.wait_for_deliveries(1)
    midway = sim.calculated_load_mw("main_power_feed")
    started, ended = (d.at for d in sim.wait_for_deliveries(2))
    assert 7.0 < midway < 10.0
    assert timedelta(seconds=0.4) <= ended - started <= timedelta(seconds=3)
    assert [e["event"] for e in sim.events] == ["start_ramp_down", "end_ramp_down"]
    client.channel.close()


def test_backup_and_all_feed_targets_each_emit_per_feed(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    _, client = sim_client
    register(client, receiver.url(), Event.POWER_EVENT_START_RAMP_DOWN)
    set_targets(client, load_target(mw=6.0, correlation_id="everyone"))  # no feed tags: all
    posts = receiver.wait_for(2)
    assert sorted(p.body["feed_tag"] for p in posts) == ["backup_power_feed", "main_power_feed"]
    assert {p.body["event"] for p in posts} == {"start_ramp_down"}


def test_event_filters_per_registration(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    register(client, receiver.url("/all"))
    register(client, receiver.url("/unspecified"), Event.POWER_EVENT_UNSPECIFIED)
    register(
        client,
        receiver.url("/ends"),
        Event.POWER_EVENT_END_RAMP_DOWN,
        Event.POWER_EVENT_END_RAMP_UP,
    )
    set_targets(client, load_target(mw=6.5, feeds=("main_power_feed",), correlation_id="f"))
    sim.wait_for_deliveries(lambda ds: len(ds) >= 5)
    by_path: dict[str, list[str]] = {}
    for post in receiver.wait_for(5):
        by_path.setdefault(post.path, []).append(post.body["event"])
    assert sorted(by_path["/all"]) == ["end_ramp_down", "start_ramp_down"]
    assert sorted(by_path["/unspecified"]) == ["end_ramp_down", "start_ramp_down"]
    assert by_path["/ends"] == ["end_ramp_down"]


def test_re_registering_replaces_the_event_filter(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    register(client, receiver.url(), Event.POWER_EVENT_START_RAMP_UP)
    register(client, receiver.url(), Event.POWER_EVENT_START_RAMP_DOWN)
    assert len(sim.registrations()) == 1
    set_targets(client, load_target(mw=6.5, feeds=("main_power_feed",)))
    receiver.wait_for(1)
    sim.wait_for_deliveries(1)
    assert receiver.events() == ["start_ramp_down"]


def test_unregistered_url_gets_nothing(
    sim_client: tuple[Simulator, Client], receiver: WebhookReceiver
) -> None:
    sim, client = sim_client
    register(client, receiver.url("/gone"))
    register(client, receiver.url("/stays"))
    client.nvgrid.UnregisterWebhook(
        nvgrid_pb2.UnregisterWebhookRequest(url=receiver.url("/gone")),
        metadata=client.metadata,
        timeout=5,
    )
    set_targets(client, load_target(mw=6.5, feeds=("main_power_feed",)))
    receiver.wait_for(2)
    # Both events were published; nothing else is on its way.
    with pytest.raises(TimeoutError):
        sim.wait_for_deliveries(3, timeout=0.3)
    assert [p.path for p in receiver.received] == ["/stays", "/stays"]


def test_whitelist_over_grpc(make_sim: SimFactory, receiver: WebhookReceiver) -> None:
    sim = make_sim(whitelist=["http://127.0.0.1/nvgrid", "https://grid.example.com:8443"])
    client = connect(sim)
    assert register(client, receiver.url("/nvgrid/webhook")).code == SUCCESS
    assert register(client, "https://grid.example.com:8443/any").code == SUCCESS
    for refused in (
        receiver.url("/other"),
        "https://grid.example.com/any",  # port 443, not 8443
        "http://grid.example.com:8443/any",  # scheme
        "http://localhost:9/nvgrid",  # host
    ):
        response = register(client, refused)
        assert response.code == nvgrid_pb2.LoadTargetResponse.STATUS_CODE_ERROR
        assert response.diag_msg == "webhook URL not whitelisted"
    assert {r.url for r in sim.registrations()} == {
        receiver.url("/nvgrid/webhook"),
        "https://grid.example.com:8443/any",
    }
    client.channel.close()


def test_logs_redact_query_values(
    sim_client: tuple[Simulator, Client],
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim, client = sim_client
    caplog.set_level(logging.INFO, logger="simulator")
    register(client, receiver.url("/hook?token=s3cret"))
    set_targets(client, load_target(mw=6.5, feeds=("main_power_feed",)))
    sim.wait_for_deliveries(2)
    assert "token=REDACTED" in caplog.text
    assert "s3cret" not in caplog.text


def test_seed_register_and_unregister_examples_run_unchanged(
    make_sim: SimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed's functions, verbatim (they take stub + metadata; the helper module that makes
    # those is another part's test).
    def register_webhook(stub, metadata, webhook_url, events=None):  # type: ignore[no-untyped-def]
        request = nvgrid_pb2.RegisterWebhookRequest(url=webhook_url)

        # Map event names to proto enums
        event_map = {
            "start_ramp_up": nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_UP,
            "end_ramp_up": nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_END_RAMP_UP,
            "start_ramp_down": nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN,
            "end_ramp_down": nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_END_RAMP_DOWN,
        }

        if events:
            request.for_events.extend([event_map[e] for e in events])
            print(f"Subscribing to: {', '.join(events)}")
        else:
            print("Subscribing to all power events")

        response = stub.RegisterWebhook(request, metadata=metadata)

        if response.code == nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS:
            print(f"✅ Webhook registered: {webhook_url}")
            return True
        else:
            print(f"❌ Failed: {response.diag_msg}")
            return False

    def unregister_webhook(stub, metadata, webhook_url):  # type: ignore[no-untyped-def]
        request = nvgrid_pb2.UnregisterWebhookRequest(url=webhook_url)
        response = stub.UnregisterWebhook(request, metadata=metadata)

        if response.code == nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS:
            print(f"✅ Webhook unregistered: {webhook_url}")
            return True
        else:
            print(f"❌ Failed: {response.diag_msg}")
            return False

    sim = make_sim(insecure=False, whitelist=["http://grid-solution:8080/nvgrid/"])
    client = connect(sim)
    stub, metadata = client.nvgrid, client.metadata
    url = "http://grid-solution:8080/nvgrid/webhook"
    assert register_webhook(stub, metadata, url)
    assert register_webhook(stub, metadata, url, events=["start_ramp_down", "end_ramp_down"])
    assert not register_webhook(stub, metadata, "http://elsewhere:8080/nvgrid/webhook")
    assert unregister_webhook(stub, metadata, url)
    output = capsys.readouterr().out.splitlines()
    assert output == [
        "Subscribing to all power events",
        f"✅ Webhook registered: {url}",
        "Subscribing to: start_ramp_down, end_ramp_down",
        f"✅ Webhook registered: {url}",
        "Subscribing to all power events",
        "❌ Failed: webhook URL not whitelisted",
        f"✅ Webhook unregistered: {url}",
    ]
    client.channel.close()
