"""The seed's register/unregister Python examples run UNCHANGED against our stubs + simulator.

The two code blocks are extracted from the seed document at test time. The only edits are the
host string ``'api.dps'`` and the webhook URL's host; port, TLS mode and CA come from the
``NVGRID_*`` variables, exactly as a user would point the examples at another endpoint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulator import Simulator
from tests.harness import clean_env

REPO_ROOT = Path(__file__).resolve().parents[3]
# A verbatim copy of the seed document, so these tests never skip; the test below keeps it
# equal to the original in ../shared/seeds wherever that is present (CI, developers).
SEED_COPY = REPO_ROOT / "tests" / "fixtures" / "seed-monitoring-power-events.txt"
SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"
SEED_URL = "http://grid-solution:8080/nvgrid/webhook"
SIM_URL = "http://127.0.0.1:8080/nvgrid/webhook"


def _seed_text() -> str:
    return SEED_COPY.read_text(encoding="utf-8")


def test_seed_copy_is_verbatim() -> None:
    originals = [p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt"))]
    if not originals:
        pytest.skip(f"no original seed document at {SEEDS_DIR} to compare with")
    assert _seed_text() in originals


def _example(function_name: str) -> str:
    """The Python block (from its ``#!/usr/bin/env python3`` to ``channel.close()``) that
    defines ``function_name``."""
    lines = _seed_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("#!/usr/bin/env python3")]
    for start in starts:
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == "channel.close()")
        block = "\n".join(lines[start : end + 1]) + "\n"
        if f"def {function_name}(" in block:
            return block
    raise AssertionError(f"no Python example defining {function_name} in the seed")


def _retarget(code: str, host: str = "127.0.0.1") -> str:
    """The only edits allowed: the DPS host string and the webhook URL's host."""
    assert code.count("'api.dps'") == 2 and SEED_URL in code
    return code.replace("'api.dps'", repr(host)).replace(SEED_URL, SIM_URL)


def _run(
    code: str, sim: Simulator, tls: str, *, port_from_env: bool = True
) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update(PYTHONPATH=str(REPO_ROOT / "functions"), PYTHONIOENCODING="utf-8", NVGRID_TLS=tls)
    if port_from_env:
        env["NVGRID_PORT"] = str(sim.port)
    if tls == "verify":
        env["NVGRID_CA_CERT"] = str(sim.ca_cert_path)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=30,
        check=False,
    )


def test_examples_are_extracted_verbatim() -> None:
    register = _example("register_webhook")
    assert "get_auth_token('admin', 'password', host='api.dps')" in register
    assert "nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_UP" in register
    assert "def unregister_webhook" in _example("unregister_webhook")


@pytest.mark.parametrize("tls", ["verify", "skip-verify", "plaintext"])
def test_seed_register_then_unregister_run_unchanged(make_sim, tls: str) -> None:
    sim = make_sim(insecure=tls == "plaintext", whitelist=["http://127.0.0.1:8080/nvgrid/"])

    registered = _run(_retarget(_example("register_webhook")), sim, tls)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.splitlines() == [
        "Subscribing to all power events",
        f"✅ Webhook registered: {SIM_URL}",
        "Subscribing to: start_ramp_down, end_ramp_down",
        f"✅ Webhook registered: {SIM_URL}",
    ]
    [registration] = sim.registrations()
    assert registration.url == SIM_URL
    assert set(registration.event_names) == {"start_ramp_down", "end_ramp_down"}

    unregistered = _run(_retarget(_example("unregister_webhook")), sim, tls)
    assert unregistered.returncode == 0, unregistered.stderr
    assert unregistered.stdout.splitlines() == [f"✅ Webhook unregistered: {SIM_URL}"]
    assert sim.registrations() == []


def test_seed_examples_accept_a_host_that_carries_the_port(make_sim) -> None:
    sim = make_sim(whitelist=["http://127.0.0.1:8080/nvgrid/"])
    host = f"localhost:{sim.port}"  # no NVGRID_PORT: the port travels in the host string
    registered = _run(
        _retarget(_example("register_webhook"), host), sim, "verify", port_from_env=False
    )
    assert registered.stdout.count(f"✅ Webhook registered: {SIM_URL}") == 2, registered.stderr
    unregistered = _run(
        _retarget(_example("unregister_webhook"), host), sim, "verify", port_from_env=False
    )
    assert f"✅ Webhook unregistered: {SIM_URL}" in unregistered.stdout, unregistered.stderr


def test_seed_register_prints_the_failure_for_a_url_outside_the_whitelist(make_sim) -> None:
    sim = make_sim(whitelist=["https://hooks.example.com/"])
    result = _run(_retarget(_example("register_webhook")), sim, "verify")
    assert result.returncode == 0, result.stderr
    assert "❌ Failed: webhook URL not whitelisted" in result.stdout.splitlines()
    assert "✅" not in result.stdout
    assert sim.registrations() == []


def test_seed_unregister_prints_the_failure_for_an_unknown_url(make_sim) -> None:
    sim = make_sim(insecure=True)
    result = _run(_retarget(_example("unregister_webhook")), sim, "plaintext")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["❌ Failed: webhook URL not registered"]
