"""Token refresh, retries and failure messages, through real gRPC against the simulator."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from gridhook.nvgrid import (
    CallPolicy,
    Credentials,
    NvGridAuthError,
    NvGridTlsError,
    NvGridUnavailable,
    make_endpoint,
)
from gridhook.nvgrid.client import NvGridClient


@pytest.mark.parametrize("tls", ["verify", "plaintext"])
def test_expired_token_is_refreshed_without_the_caller_noticing(
    make_sim, endpoint_for, admin, tls: str
) -> None:
    # Expired on purpose rather than by a short TTL and a sleep: on a loaded machine a 0.3 s
    # token could expire again between its refresh and the repeated call.
    sim = make_sim(insecure=tls == "plaintext")
    with NvGridClient(endpoint_for(sim, tls), admin) as client:
        client.get_status()
        sim.expire_tokens()  # the access token is now expired
        assert client.get_metadata()
        sim.expire_tokens()
        assert client.get_current_load_target()
    counts = sim.rpc_counts()
    assert counts["Token"] == 1  # refreshed every time, never a new password login
    assert counts["RefreshToken"] >= 2


def test_rejected_token_is_refreshed_and_the_call_repeated(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    with NvGridClient(endpoint_for(sim), admin) as client:
        client.get_status()
        sim.expire_tokens()  # DPS now answers UNAUTHENTICATED to the token we hold
        assert client.get_status()
    counts = sim.rpc_counts()
    assert (counts["Token"], counts["RefreshToken"], counts["GetStatus"]) == (1, 1, 3)


def test_lost_refresh_token_falls_back_to_password_login(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    with NvGridClient(endpoint_for(sim), admin) as client:
        client.get_status()
        sim.revoke_tokens()  # as a restarted DPS: access and refresh tokens both unknown
        assert client.get_status()
    counts = sim.rpc_counts()
    assert counts["RefreshToken"] == 1  # tried, refused
    assert counts["Token"] == 2  # then logged in again


def test_rejected_password_is_an_auth_error_without_secrets(
    make_sim, endpoint_for, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_sim()
    caplog.set_level(logging.DEBUG)
    secret = "not-the-password-7f3a"
    client = NvGridClient(endpoint_for(sim), Credentials("admin", secret))
    with client, pytest.raises(NvGridAuthError) as failure:
        client.get_status()
    message = str(failure.value)
    assert sim.address in message and "NVGRID_PASSWORD" in message
    assert secret not in message and secret not in caplog.text
    assert secret not in repr(Credentials("admin", secret))


def test_unavailable_is_retried_until_it_succeeds(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    with NvGridClient(endpoint_for(sim), admin) as client:
        client.get_status()
        sim.faults.unavailable_calls = 2
        assert client.get_metadata()
    assert sim.rpc_counts()["GetMetadata"] == 3  # two refused, one answered


def test_outage_during_login_is_retried_too(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    sim.faults.unavailable_calls = 1
    with NvGridClient(endpoint_for(sim), admin) as client:
        assert client.get_status()
    assert sim.rpc_counts()["Token"] == 2


def test_outage_past_the_attempt_budget_raises_unavailable(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    policy = CallPolicy(call_timeout=1, overall_timeout=5, max_attempts=3, initial_backoff=0.01)
    with NvGridClient(endpoint_for(sim, policy=policy), admin) as client:
        client.get_status()
        sim.faults.fail_rpcs_for(30)
        started = time.monotonic()
        with pytest.raises(NvGridUnavailable) as failure:
            client.get_status()
    assert time.monotonic() - started < 2
    assert failure.value.attempts == 3 and failure.value.grpc_code == "UNAVAILABLE"
    assert sim.address in str(failure.value) and "NVGRID_HOST" in str(failure.value)


def test_outage_is_bounded_by_the_overall_deadline(make_sim, endpoint_for, admin) -> None:
    sim = make_sim()
    policy = CallPolicy(
        call_timeout=1,
        overall_timeout=0.4,
        max_attempts=1000,
        initial_backoff=0.05,
        max_backoff=0.1,
    )
    with NvGridClient(endpoint_for(sim, policy=policy), admin) as client:
        client.get_status()
        sim.faults.fail_rpcs_for(30)
        started = time.monotonic()
        with pytest.raises(NvGridUnavailable):
            client.get_status()
    assert time.monotonic() - started < 1.0


def test_nothing_listening_is_unavailable_naming_the_endpoint(fast_policy, admin) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = make_endpoint(
        "127.0.0.1", port=port, tls="plaintext", policy=fast_policy, environ={}
    )
    with NvGridClient(endpoint, admin) as client, pytest.raises(NvGridUnavailable) as failure:
        client.get_status()
    assert f"127.0.0.1:{port}" in str(failure.value)


def test_wrong_ca_is_a_tls_error_at_once(make_sim, endpoint_for, admin, tmp_path) -> None:
    trusted = make_sim(tls_dir=tmp_path / "one")  # a different CA from the server's
    sim = make_sim(tls_dir=tmp_path / "other")
    endpoint = make_endpoint(sim.address, ca_cert_path=trusted.ca_cert_path, environ={})
    with NvGridClient(endpoint, admin) as client, pytest.raises(NvGridTlsError) as failure:
        client.get_status()
    assert failure.value.attempts == 1  # a certificate mismatch is not retried
    assert "NVGRID_CA_CERT" in str(failure.value)


def test_tls_client_against_plaintext_server_says_so(make_sim, endpoint_for, admin) -> None:
    sim = make_sim(insecure=True)
    client = NvGridClient(endpoint_for(sim, "verify"), admin)
    with client, pytest.raises(NvGridTlsError, match="NVGRID_TLS=plaintext"):
        client.get_status()
    # skip-verify fails earlier, when it fetches the certificate to trust.
    with pytest.raises(NvGridTlsError, match="plaintext"):
        NvGridClient(endpoint_for(sim, "skip-verify"), admin)
