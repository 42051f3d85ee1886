"""Endpoint and credential configuration: flags and NVGRID_* variables, validated up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridhook.nvgrid import (
    CallPolicy,
    Credentials,
    NvGridConfigError,
    TlsMode,
    credentials_from_env,
    endpoint_from_env,
    make_endpoint,
)
from gridhook.nvgrid.config import split_host_port


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("api.dps", ("api.dps", None)),
        ("api.dps:8443", ("api.dps", 8443)),
        ("10.0.0.7:50051", ("10.0.0.7", 50051)),
        ("[::1]:50051", ("::1", 50051)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
    ],
)
def test_split_host_port(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(raw) == expected


@pytest.mark.parametrize("raw", ["api.dps:http", "api.dps:0", "api.dps:70000", "[::1", "[::1]x"])
def test_split_host_port_rejects_nonsense(raw: str) -> None:
    with pytest.raises(NvGridConfigError):
        split_host_port(raw)


def test_defaults_are_verify_on_443() -> None:
    endpoint = make_endpoint("api.dps", environ={})
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("api.dps", 443, TlsMode.VERIFY)
    assert endpoint.ca_cert_path is None and endpoint.address == "api.dps:443"


def test_environment_fills_what_is_not_passed(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "NVGRID_HOST": "dps.internal",
        "NVGRID_PORT": "50051",
        "NVGRID_TLS": "verify",
        "NVGRID_CA_CERT": str(ca),
    }
    endpoint = endpoint_from_env(env)
    assert endpoint.address == "dps.internal:50051" and endpoint.ca_cert_path == ca
    # Explicit values win over the environment; a port in the host wins over NVGRID_PORT.
    assert make_endpoint("other:7000", environ=env).address == "other:7000"
    assert make_endpoint("other", port=8000, tls="plaintext", environ=env).tls is TlsMode.PLAINTEXT


def test_ipv6_address_is_bracketed_for_grpc() -> None:
    assert make_endpoint("[::1]:50051", environ={}).address == "[::1]:50051"


def test_conflicting_ports_are_an_error() -> None:
    with pytest.raises(NvGridConfigError, match="carries port 7000"):
        make_endpoint("api.dps:7000", port=8000, environ={})


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("verify", TlsMode.VERIFY),
        ("SKIP_VERIFY", TlsMode.SKIP_VERIFY),
        ("skip-verify", TlsMode.SKIP_VERIFY),
        ("plaintext", TlsMode.PLAINTEXT),
        ("insecure", TlsMode.PLAINTEXT),
    ],
)
def test_tls_modes(raw: str, mode: TlsMode) -> None:
    assert make_endpoint("h", environ={"NVGRID_TLS": raw}).tls is mode


def test_unknown_tls_mode_names_the_variable_and_choices() -> None:
    with pytest.raises(NvGridConfigError, match=r"NVGRID_TLS='tls1\.3'.*verify, skip-verify"):
        make_endpoint("h", environ={"NVGRID_TLS": "tls1.3"})


def test_missing_ca_file_fails_before_any_call(tmp_path: Path) -> None:
    with pytest.raises(NvGridConfigError, match="NVGRID_CA_CERT"):
        make_endpoint("h", ca_cert_path=tmp_path / "absent.pem", environ={})


def test_bad_port_in_environment_names_it() -> None:
    with pytest.raises(NvGridConfigError, match="NVGRID_PORT"):
        make_endpoint("h", environ={"NVGRID_PORT": "https"})


def test_call_policy_rejects_nonsense() -> None:
    with pytest.raises(NvGridConfigError):
        CallPolicy(call_timeout=0)
    with pytest.raises(NvGridConfigError):
        CallPolicy(max_attempts=0)


def test_credentials_from_variables() -> None:
    creds = credentials_from_env({"NVGRID_USERNAME": "admin", "NVGRID_PASSWORD": "s3cret"})
    assert creds == Credentials("admin", "s3cret")
    assert "s3cret" not in repr(creds)


def test_explicit_credentials_win() -> None:
    env = {"NVGRID_USERNAME": "admin", "NVGRID_PASSWORD": "s3cret"}
    assert credentials_from_env(env, username="ops", password="x").username == "ops"


@pytest.mark.parametrize(
    "content",
    ["grid-ops:pa:ss\n", json.dumps({"username": "grid-ops", "password": "pa:ss"})],
    ids=["colon", "json"],
)
def test_credentials_from_mounted_file(tmp_path: Path, content: str) -> None:
    secret = tmp_path / "nvgrid-credentials"
    secret.write_text(content)
    creds = credentials_from_env({"NVGRID_CREDENTIALS_FILE": str(secret)})
    assert creds == Credentials("grid-ops", "pa:ss")


@pytest.mark.parametrize("content", ["no-colon", '{"username": "u"}', "{broken json"])
def test_malformed_credentials_file_is_explained_without_its_content(
    tmp_path: Path, content: str
) -> None:
    secret = tmp_path / "creds"
    secret.write_text(content)
    with pytest.raises(NvGridConfigError, match="NVGRID_CREDENTIALS_FILE") as failure:
        credentials_from_env({"NVGRID_CREDENTIALS_FILE": str(secret)})
    assert content not in str(failure.value)


def test_unreadable_credentials_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(NvGridConfigError, match="cannot be read"):
        credentials_from_env({"NVGRID_CREDENTIALS_FILE": str(tmp_path / "absent")})


def test_missing_credentials_say_which_variable() -> None:
    with pytest.raises(NvGridConfigError, match="NVGRID_USERNAME"):
        credentials_from_env({})
    with pytest.raises(NvGridConfigError, match="NVGRID_PASSWORD"):
        credentials_from_env({"NVGRID_USERNAME": "admin"})
