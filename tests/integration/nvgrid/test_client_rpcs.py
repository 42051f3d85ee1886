"""Every NvGrid RPC through NvGridClient and real gRPC, over TLS (generated CA) and plaintext."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridhook.nvgrid import (
    ActionResult,
    FeedCaps,
    Load,
    LoadTarget,
    NvGridConfigError,
    NvGridRejected,
    make_endpoint,
)
from gridhook.nvgrid.client import NvGridClient
from simulator import Simulator

HOOK = "http://127.0.0.1:8080/nvgrid/webhook"

SimClient = tuple[Simulator, NvGridClient]


def test_get_metadata_lists_every_feed_with_caps(sim_client: SimClient) -> None:
    _, client = sim_client
    metadata = client.get_metadata()
    assert metadata["main_power_feed"] == FeedCaps(
        min_power_cap=Load(2.0, "mw"),
        max_power_cap=Load(12.0, "mw"),
        default_constraint=Load(10.0, "mw"),
    )
    assert set(metadata) == {"main_power_feed", "backup_power_feed"}


def test_get_status_and_current_target_start_at_the_default(sim_client: SimClient) -> None:
    _, client = sim_client
    status = client.get_status()
    assert status["main_power_feed"].calculated_load == Load(10.0, "mw")
    current = client.get_current_load_target()
    assert set(current) == {"main_power_feed", "backup_power_feed"}
    assert current["main_power_feed"].target_load is None  # null target = the default applies


def test_set_load_target_then_read_it_back_everywhere(sim_client: SimClient) -> None:
    _, client = sim_client
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    end = start + timedelta(hours=1)
    result = client.set_load_target(
        6.5,
        "megawatt",
        start_time=start,
        end_time=end,
        feed_tags=["main_power_feed"],
        correlation_id="curtailment-1",
        best_effort=True,
    )
    assert isinstance(result, ActionResult) and result.ok
    assert [d.correlation_id for d in result.details] == ["curtailment-1"]

    expected = LoadTarget(
        start_time=start,
        end_time=end,
        target_load=Load(6.5, "mw"),
        best_effort=True,
        feed_tags=("main_power_feed",),
        correlation_id="curtailment-1",
    )
    assert client.get_current_load_target()["main_power_feed"] == expected
    assert client.get_status()["main_power_feed"].current_target == expected
    schedule = client.get_load_schedule(start, end + timedelta(hours=1), ["main_power_feed"])
    assert schedule == [expected]


def test_null_target_resets_to_default(sim_client: SimClient) -> None:
    _, client = sim_client
    start = datetime.now(UTC) - timedelta(seconds=1)
    client.set_load_target(4.0, "mw", start_time=start, feed_tags=["backup_power_feed"])
    client.set_load_target(None, start_time=start + timedelta(milliseconds=500))
    assert client.get_current_load_target()["backup_power_feed"].target_load is None


def test_register_and_unregister_webhook(sim_client: SimClient) -> None:
    sim, client = sim_client
    assert client.register_webhook(HOOK, ["start_ramp_down", "END_RAMP_DOWN"]).ok
    [registration] = sim.registrations()
    assert registration.url == HOOK
    assert set(registration.event_names) == {"start_ramp_down", "end_ramp_down"}

    assert client.register_webhook(HOOK).ok  # again, all events: replaces the registration
    assert sim.registrations()[0].event_names == ()

    assert client.unregister_webhook(HOOK).ok
    assert sim.registrations() == []


def test_status_code_error_surfaces_diag_msg(sim_client: SimClient) -> None:
    _, client = sim_client
    with pytest.raises(NvGridRejected) as rejected:
        client.register_webhook("http://evil.example:8080/nvgrid/webhook")
    assert rejected.value.diag_msg == "webhook URL not whitelisted"
    assert rejected.value.rpc == "RegisterWebhook"
    assert client.endpoint.address in str(rejected.value)

    with pytest.raises(NvGridRejected) as rejected:
        client.set_load_target(99.0, "mw", feed_tags=["main_power_feed"])
    assert "outside feed main_power_feed caps" in rejected.value.diag_msg
    assert [d.feed_tag for d in rejected.value.details] == ["main_power_feed"]

    with pytest.raises(NvGridRejected, match="not registered"):
        client.unregister_webhook("http://127.0.0.1:8080/nvgrid/never-registered")


def test_skip_verify_trusts_the_presented_certificate(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    # No CA given: only skip-verify can connect, and it must pass the host-name check too.
    with NvGridClient(endpoint_for(sim, "skip-verify"), admin) as client:
        assert "main_power_feed" in client.get_metadata()
    localhost = endpoint_for(sim, "skip-verify").address.replace("127.0.0.1", "localhost")
    with NvGridClient(endpoint_for(sim, "skip-verify", host=localhost), admin) as client:
        assert client.get_status()


def test_one_login_serves_many_calls(sim_client: SimClient) -> None:
    sim, client = sim_client
    for _ in range(3):
        client.get_status()
    assert sim.rpc_counts().get("Token") == 1


def test_certificate_for_another_name(make_sim, endpoint_for, admin, tmp_path) -> None:
    # DPS's certificate names dps.test only, and we dial its IP address.
    sim = make_sim(tls_dir=tmp_path, tls_hostnames=("dps.test",))
    with NvGridClient(endpoint_for(sim, "skip-verify"), admin) as client:
        assert client.get_status()  # skip-verify borrows the certificate's own name
    verify = endpoint_for(sim, "verify", tls_server_name="dps.test")
    with NvGridClient(verify, admin) as client:
        assert client.get_status()  # verify checks it against the name we say it must carry


def test_ca_file_that_is_not_pem_is_a_config_error(make_sim, admin, tmp_path) -> None:
    sim = make_sim()
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82garbage")
    endpoint = make_endpoint(sim.address, ca_cert_path=not_pem, environ={})
    with pytest.raises(NvGridConfigError, match="not a PEM certificate"):
        NvGridClient(endpoint, admin)
