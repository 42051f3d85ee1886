"""``gridhook nvgrid …`` end to end: main([...]) against the simulator, JSON on stdout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gridhook.cli.nvgrid import main
from simulator import Simulator

HOOK = "http://127.0.0.1:8080/nvgrid/webhook"


@pytest.fixture(params=["tls", "plaintext"])
def sim_flags(
    request: pytest.FixtureRequest, make_sim, monkeypatch: pytest.MonkeyPatch
) -> tuple[Simulator, list[str]]:
    """A simulator and the connection flags that reach it; credentials from NVGRID_* env."""
    sim = make_sim(insecure=request.param == "plaintext", whitelist=["http://127.0.0.1:8080/"])
    monkeypatch.setenv("NVGRID_USERNAME", "admin")
    monkeypatch.setenv("NVGRID_PASSWORD", "password")
    if request.param == "tls":
        return sim, ["--host", sim.address, "--ca-cert-path", str(sim.ca_cert_path)]
    return sim, ["--host", "127.0.0.1", "--port", str(sim.port), "--insecure"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    try:
        code = main(["nvgrid", *argv])
    except SystemExit as exc:  # a flag refused while parsing
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_read_commands_print_json(sim_flags, capsys) -> None:
    _, flags = sim_flags
    code, metadata, _ = run(capsys, "get-metadata", *flags)
    assert code == 0
    assert metadata["metadata"]["main_power_feed"]["max_power_cap"] == {"value": 12.0, "unit": "mw"}

    code, status, _ = run(capsys, *flags, "get-status")  # flags before the command work too
    assert code == 0 and status["statuses"]["main_power_feed"]["calculated_load"]["value"] == 10.0

    code, current, _ = run(capsys, "get-current", *flags)
    assert code == 0 and current["load_targets"]["backup_power_feed"]["target_load"] is None


def test_set_load_target_then_get_schedule(sim_flags, capsys) -> None:
    _, flags = sim_flags
    code, result, _ = run(
        capsys,
        "set-load-target",
        *flags,
        "--value", "6.5",
        "--unit", "mw",
        "--start-time", "+1h",
        "--end-time", "+2h",
        "--feed-tags", "main_power_feed",
        "--correlation-id", "curtail-cli",
        "--best-effort",
    )  # fmt: skip
    assert code == 0 and result["ok"] is True
    code, schedule, _ = run(capsys, "get-schedule", *flags, "--feed-tags", "main_power_feed")
    assert code == 0
    [target] = schedule["load_targets"]
    assert target["correlation_id"] == "curtail-cli" and target["best_effort"] is True
    assert target["target_load"] == {"value": 6.5, "unit": "mw"}
    assert target["start_time"].endswith("Z")

    code, result, _ = run(capsys, "set-load-target", *flags, "--default", "--start-time", "+3h")
    assert code == 0 and result["ok"] is True


def test_register_and_unregister_webhook(sim_flags, capsys) -> None:
    sim, flags = sim_flags
    code, result, _ = run(
        capsys,
        "register-webhook",
        *flags,
        "--url",
        HOOK,
        "--events",
        "start_ramp_down,end_ramp_down",
    )
    assert code == 0 and result["result"]["ok"] is True
    assert result["events"] == ["start_ramp_down", "end_ramp_down"]
    assert set(sim.registrations()[0].event_names) == {"start_ramp_down", "end_ramp_down"}

    code, result, _ = run(capsys, "unregister-webhook", *flags, "--url", HOOK)
    assert code == 0 and result["result"]["ok"] is True and sim.registrations() == []


def test_webhook_urls_are_printed_redacted(sim_flags, capsys) -> None:
    _, flags = sim_flags
    url = "http://127.0.0.1:8080/nvgrid/webhook?token=secret-token-123456789"
    code, result, _ = run(capsys, "register-webhook", *flags, "--url", url)
    assert code == 0 and result["url"] == "http://127.0.0.1:8080/nvgrid/webhook?token=REDACTED"
    code, result, _ = run(capsys, "unregister-webhook", *flags, "--url", url)
    assert code == 0 and "secret-token" not in json.dumps(result)


def test_rejection_exits_5_with_one_stderr_line_and_json(sim_flags, capsys) -> None:
    _, flags = sim_flags
    code, answer, err = run(capsys, "register-webhook", *flags, "--url", "http://evil:1/x")
    assert code == 5
    assert answer["ok"] is False and answer["diag_msg"] == "webhook URL not whitelisted"
    assert err.count("\n") == 1 and "webhook URL not whitelisted" in err


def test_bad_password_exits_3(sim_flags, capsys, monkeypatch) -> None:
    _, flags = sim_flags
    code, out, err = run(capsys, "get-status", *flags, "--password", "wrong-secret-99")
    assert code == 3 and out is None
    assert err.count("\n") == 1 and "NVGRID_PASSWORD" in err and "wrong-secret-99" not in err


def test_unreachable_exits_4(capsys, monkeypatch) -> None:
    monkeypatch.setenv("NVGRID_USERNAME", "admin")
    monkeypatch.setenv("NVGRID_PASSWORD", "password")
    code, out, err = run(
        capsys, "get-status", "--host", "127.0.0.1:1", "--insecure", "--timeout", "0.5"
    )
    assert code == 4 and out is None
    assert "127.0.0.1:1" in err and err.count("\n") == 1


def test_missing_credentials_and_bad_values_exit_2(sim_flags, capsys, monkeypatch) -> None:
    _, flags = sim_flags
    monkeypatch.delenv("NVGRID_PASSWORD")
    code, _, err = run(capsys, "get-status", *flags)
    assert code == 2 and "NVGRID_PASSWORD" in err

    monkeypatch.setenv("NVGRID_PASSWORD", "password")
    code, _, err = run(capsys, "set-load-target", *flags, "--value", "5", "--unit", "furlong")
    assert code == 2 and "unknown unit" in err
    code, _, err = run(capsys, "register-webhook", *flags, "--url", HOOK, "--events", "boom")
    assert code == 2 and "unknown power event" in err
    code, _, err = run(capsys, "get-schedule", *flags, "--start-time", "yesterday")
    assert code == 2 and "--start-time" in err
