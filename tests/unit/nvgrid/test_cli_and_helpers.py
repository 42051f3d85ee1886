"""The CLI's parsing (no DPS needed), its import cost, and the seed helpers' contract."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.cli.nvgrid import main, parse_time
from gridhook.nvgrid import NvGridConfigError

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
NOW = datetime(2025, 10, 24, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("now", NOW),
        ("+90s", NOW + timedelta(seconds=90)),
        ("+5m", NOW + timedelta(minutes=5)),
        ("+1.5h", NOW + timedelta(hours=1.5)),
        ("+1d", NOW + timedelta(days=1)),
        ("2025-10-24T18:00:00Z", datetime(2025, 10, 24, 18, tzinfo=UTC)),
        ("2025-10-24T18:00:00", datetime(2025, 10, 24, 18, tzinfo=UTC)),
        ("2025-10-24T20:00:00+02:00", datetime(2025, 10, 24, 18, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_time(raw: str | None, expected: datetime | None) -> None:
    assert parse_time(raw, flag="--start-time", now=NOW) == expected


def test_parse_time_rejects_nonsense_naming_the_flag() -> None:
    with pytest.raises(NvGridConfigError, match="--end-time"):
        parse_time("tomorrow", flag="--end-time")


@pytest.mark.parametrize("raw", ["+99999999d", "+99999999999999d"])
def test_parse_time_rejects_offsets_past_the_calendar(raw: str) -> None:
    # An OverflowError here would be a traceback, not the one-line exit 2 of bad flags.
    with pytest.raises(NvGridConfigError, match="--end-time"):
        parse_time(raw, flag="--end-time", now=NOW)


def test_help_lists_every_command_without_importing_grpc() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from gridhook.cli.nvgrid import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['nvgrid', '--help'])\n"
        "print(out.getvalue())\n"
        "print('GRPC LOADED' if 'grpc' in sys.modules else 'grpc not loaded')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(FUNCTIONS)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for command in (
        "set-load-target",
        "get-schedule",
        "get-current",
        "get-metadata",
        "get-status",
        "register-webhook",
        "unregister-webhook",
    ):
        assert command in result.stdout
    assert result.stdout.rstrip().endswith("grpc not loaded")


def test_value_and_default_are_mutually_exclusive(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nvgrid", "set-load-target", "--value", "5", "--default"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["nvgrid", "set-load-target"])  # one of them is required


def test_insecure_flags_are_mutually_exclusive() -> None:
    with pytest.raises(SystemExit):
        main(["nvgrid", "get-status", "--insecure", "--insecure-tls-skip-verify"])


def test_seed_helpers_have_the_seed_signatures() -> None:
    import nvgrid_client

    assert nvgrid_client.create_auth_metadata("tok") == [("authorization", "Bearer tok")]
    with pytest.raises(NvGridConfigError, match="not a TLS mode"):
        nvgrid_client.create_nvgrid_client("tok", host="api.dps", tls="maybe")


def test_seed_helpers_read_port_tls_and_ca_from_the_environment(monkeypatch, tmp_path) -> None:
    import nvgrid_client

    monkeypatch.setenv("NVGRID_PORT", "50051")
    monkeypatch.setenv("NVGRID_TLS", "verify")
    monkeypatch.setenv("NVGRID_CA_CERT", str(tmp_path / "missing-ca.pem"))
    with pytest.raises(NvGridConfigError, match=r"missing-ca\.pem"):
        nvgrid_client.create_nvgrid_client("tok", host="api.dps")
    monkeypatch.setenv("NVGRID_TLS", "plaintext")
    channel, stub = nvgrid_client.create_nvgrid_client("tok", host="api.dps")
    try:
        assert hasattr(stub, "RegisterWebhook") and hasattr(stub, "UnregisterWebhook")
    finally:
        channel.close()
