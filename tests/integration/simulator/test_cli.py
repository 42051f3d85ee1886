"""`gridhook-sim` as a process: starts, serves (TLS and plaintext), stops on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2_grpc
from simulator.cli import build_parser, config_from_args

REPO_ROOT = Path(__file__).resolve().parents[3]
LISTENING = re.compile(r"listening on (?P<address>\S+) tls=(?P<tls>on|off) ca=(?P<ca>\S+)")


@contextmanager
def running_sim(*args: str) -> Iterator[re.Match[str]]:
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
        line = process.stdout.readline()  # the process prints this once it is serving
        match = LISTENING.search(line)
        if not match:
            errors = process.stderr.read() if process.stderr else ""
            pytest.fail(f"gridhook-sim did not start: {line!r}; stderr: {errors}")
        yield match
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def _call_metadata(channel: grpc.Channel, user: str, password: str) -> int:
    tokens = auth_pb2_grpc.AuthServiceStub(channel).Token(
        auth_pb2.TokenRequest(
            password_credential=auth_pb2.PasswordCredential(username=user, password=password)
        ),
        timeout=10,
    )
    metadata = [("authorization", f"Bearer {tokens.access_token}")]
    response = nvgrid_pb2_grpc.NvGridStub(channel).GetMetadata(
        empty_pb2.Empty(), metadata=metadata, timeout=10
    )
    return len(response.metadata)


def test_cli_plaintext_with_user_and_feeds_file(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.json"
    feeds.write_text(
        json.dumps(
            {
                "feeds": [
                    {
                        "tag": "only",
                        "min_cap": 1,
                        "max_cap": 3,
                        "default_constraint": 2,
                        "unit": "mw",
                    }
                ]
            }
        )
    )
    with running_sim("--insecure", "--user", "ops:secret", "--feeds", str(feeds)) as started:
        assert started["tls"] == "off"
        with grpc.insecure_channel(started["address"]) as channel:
            assert _call_metadata(channel, "ops", "secret") == 1


def test_cli_tls_writes_a_ca_clients_can_use(tmp_path: Path) -> None:
    with running_sim("--tls-dir", str(tmp_path / "tls")) as started:
        assert started["tls"] == "on"
        ca = Path(started["ca"])
        assert ca.parent == tmp_path / "tls"
        port = started["address"].rsplit(":", 1)[1]
        credentials = grpc.ssl_channel_credentials(ca.read_bytes())
        with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
            assert _call_metadata(channel, "admin", "password") == 2  # default user and feeds


@pytest.mark.parametrize(
    "args",
    [["--user", "no-colon"], ["--whitelist", "ftp://x"], ["--drop-probability", "2"]],
)
def test_cli_rejects_bad_flags(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(args)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_flags_map_onto_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--whitelist", "http://127.0.0.1",
            "--speed", "60",
            "--ramp-rate", "5",
            "--duplicate-every", "3",
            "--drop-next", "2",
            "--reorder-batch", "4",
            "--retry",
            "--retry-attempts", "5",
            "--unavailable-calls", "1",
            "--concurrency", "8",
            "--call-timeout", "2.5",
            "--token-ttl", "10",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert list(config.whitelist) == ["http://127.0.0.1"]
    assert (
        config.speed,
        config.ramp_rate_mw_per_minute,
        config.concurrency,
        config.call_timeout,
    ) == (60, 5, 8, 2.5)
    assert config.token_ttl == 10 and dict(config.users) == {"admin": "password"}
    faults = config.faults
    assert (faults.duplicate_every, faults.drop_next, faults.reorder_batch) == (3, 2, 4)
    assert (faults.retry_on_failure, faults.retry_max_attempts, faults.unavailable_calls) == (
        True,
        5,
        1,
    )


def test_cli_help_says_no_whitelist_allows_all(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "With no --whitelist every http(s) URL may register" in " ".join(
        capsys.readouterr().out.split()
    )


def test_cli_bad_feeds_file_exits_with_a_message(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)]),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "--insecure",
            "--port",
            "0",
            "--feeds",
            str(tmp_path / "missing.json"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cannot read feeds config" in result.stderr
