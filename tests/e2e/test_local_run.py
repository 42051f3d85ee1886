"""The README's local flow, as a new user meets it: `gridhook run` (what `make run`
starts), the curl line it prints run as printed, then `gridhook events`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO, clean_env, free_port, wait_for_port

GRIDHOOK = Path(sys.executable).parent / "gridhook"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def test_make_run_target_starts_gridhook_run() -> None:
    dry = subprocess.run(
        ["make", "-n", "run"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert ".venv/bin/gridhook run" in dry.stdout


def test_run_prints_a_working_curl_line_and_events_shows_it(tmp_path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(GRIDHOOK), "run"],
        cwd=tmp_path,
        env=clean_env(PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 30, proc=server)
        banner = []
        while not banner or not banner[-1].startswith("See what arrived"):
            banner.append(server.stdout.readline().rstrip("\n"))
        text = "\n".join(banner)
        curl = text[text.index("  curl") : text.index("See what arrived")].strip()
        token_file = tmp_path / "var" / "dev-webhook-token"
        assert token_file.exists() and oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert token_file.read_text().strip() not in text  # the secret is not printed

        def send() -> dict:
            out = subprocess.run(
                ["bash", "-c", curl + " --silent --show-error"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            return json.loads(out.stdout)

        first = send()
        assert first["status"] == "accepted"
        assert send() == {"status": "duplicate", "event_id": first["event_id"]}

        events = subprocess.run(
            [str(GRIDHOOK), "events", "--format", "json"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        stored = json.loads(events.stdout)
        assert [e["event_id"] for e in stored] == [first["event_id"]]
        assert stored[0]["correlation_id"] == "test-001"

        table = subprocess.run(
            [str(GRIDHOOK), "events"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert re.search(r"start_ramp_down\s+test-001\s+6\.5 mw\s+10 mw\s+9\.8 mw\s+false", table)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def test_events_cli_filters_and_formats(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from gridhook.events import normalise
    from gridhook.store import open_store
    from tests.harness import SEED_PAYLOAD

    url = f"sqlite:///{tmp_path}/e.db"
    store = open_store(url)
    now = datetime.now(UTC)
    for i, feed in enumerate(["a", "b", "a"]):
        store.add_event(
            normalise({**SEED_PAYLOAD, "feed_tag": feed, "n": i}, now - timedelta(hours=3 - i))
        )
    store.close()

    def run(*args: str) -> str:
        return subprocess.run(
            [str(GRIDHOOK), "events", "--store", url, *args],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout

    assert len(json.loads(run("--format", "json", "--feed", "a"))) == 2
    assert len(json.loads(run("--format", "json", "--since", "150m"))) == 2
    assert len(json.loads(run("--format", "json", "--limit", "1"))) == 1
    csv_lines = run("--format", "csv", "--feed", "b").splitlines()
    assert csv_lines[0].startswith("site,received_at,event,feed_tag") and len(csv_lines) == 2
    bad = subprocess.run(
        [str(GRIDHOOK), "events", "--store", "nope://x"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert bad.returncode == 2 and "unknown store scheme" in bad.stderr


def test_state_cli_shows_which_feed_is_constrained_since_when(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from gridhook.events import normalise
    from gridhook.store import open_store
    from tests.harness import SEED_PAYLOAD

    url = f"sqlite:///{tmp_path}/e.db"
    store = open_store(url)
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    constrained = {**SEED_PAYLOAD, "feed_tag": "main", "correlation_id": "cut-1"}
    # Delivered out of order: the end arrives before the start.
    store.add_event(normalise({**constrained, "event": "end_ramp_down", "compliant": True}, t0))
    store.add_event(
        normalise({**constrained, "event": "start_ramp_down"}, t0 + timedelta(seconds=1))
    )
    steady = {**SEED_PAYLOAD, "feed_tag": "backup", "correlation_id": "cut-0"}
    store.add_event(normalise({**steady, "event": "end_ramp_up"}, t0))
    store.close()
    out = subprocess.run(
        [str(GRIDHOOK), "state", "--store", url, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    states = {s["feed_tag"]: s for s in json.loads(out)}
    assert states["main"]["phase"] == "constrained"
    assert states["main"]["compliant"] is True
    assert states["backup"]["phase"] == "steady"
    table = subprocess.run(
        [str(GRIDHOOK), "state", "--store", url],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    assert re.search(r"main\s+constrained\s+2026-03-01T12:00:01\.000001Z\s+cut-1\s+6\.5 MW", table)


def test_run_serves_the_control_room_without_a_webhook_token(tmp_path) -> None:
    import urllib.request
    from datetime import UTC, datetime, timedelta

    from gridhook.events import normalise
    from gridhook.store import open_store
    from tests.harness import SEED_PAYLOAD

    url = f"sqlite:///{tmp_path}/e.db"
    store = open_store(url)
    start = datetime.now(UTC) - timedelta(hours=2)
    cut = {**SEED_PAYLOAD, "feed_tag": "main", "correlation_id": "cut-7"}
    store.add_event(normalise({**cut, "event": "start_ramp_down"}, start))
    store.close()
    port = free_port()
    server = subprocess.Popen(
        [str(GRIDHOOK), "run", "--function", "power_report", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(GRIDHOOK_STORE=url),  # no token: the report function needs none
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 30, proc=server)
        assert f"control room on http://127.0.0.1:{port}/" in server.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.headers.get_content_type() == "text/html"
            assert "cut-7" in page.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/episodes?since=1d", timeout=30) as r:
            episodes = json.load(r)["episodes"]
        assert [e["correlation_id"] for e in episodes] == ["cut-7"]
        assert not (tmp_path / "var" / "dev-webhook-token").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
