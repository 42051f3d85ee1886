"""Issue 3's acceptance, with every part a real process: ``gridhook-sim --speed 60`` (TLS with
its generated CA), the receiver under functions-framework with a SQLite store, and the
``gridhook nvgrid`` CLI registering the receiver and scheduling a ramp-down with relative
times (resolved against the simulator's clock, which by then runs minutes ahead of ours).

The store must then hold start_ramp_down, end_ramp_down and, after the target's end,
start_ramp_up, end_ramp_up for the correlation id, every payload valid against the schema,
nothing quarantined, and the simulator's delivery log only 200s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridhook.schema import violations
from gridhook.store import EventQuery, iter_events, open_store
from tests.harness import TEST_TOKEN, clean_env, free_port, function_server

BIN = Path(sys.executable).parent
GRIDHOOK = BIN / "gridhook"
GRIDHOOK_SIM = BIN / "gridhook-sim"

SPEED = 60  # one simulated minute per real second
RAMP_RATE = 4  # MW per simulated minute: 10 -> 6 MW takes one real second
TARGET_MW = 6
TARGET_MINUTES = 3  # the target ends ~3 real seconds after it starts
MIN_SIM_AGE = 1.5  # real seconds the simulator runs before the target is scheduled
WAIT = 30.0  # every wait is bounded by this many real seconds
EXPECTED = ["start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up"]
_DELIVERY_LINE = re.compile(r"webhook (delivered|failed) url=\S+ event=(\S+) status=(\S+)")

pytestmark = pytest.mark.skipif(
    not (GRIDHOOK.exists() and GRIDHOOK_SIM.exists()), reason="needs the installed console scripts"
)


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def simulator(tmp_path: Path) -> Iterator[tuple[str, Path, Path, float]]:
    """``gridhook-sim`` as a process; yields (address, CA path, its stderr log file, when it
    said it was listening (monotonic): its clock started before that)."""
    port = free_port()
    log_path = tmp_path / "sim.log"
    command = [
        str(GRIDHOOK_SIM),
        "--port", str(port),
        "--tls-dir", str(tmp_path / "sim-tls"),
        "--speed", str(SPEED),
        "--ramp-rate", str(RAMP_RATE),
        "--user", "admin:password",
        "--call-timeout", "10",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=clean_env(PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            line = _readline_within(proc, WAIT)
            match = re.match(r"gridhook-sim listening on (\S+) tls=on ca=(\S+)", line)
            if match is None:
                pytest.fail(f"gridhook-sim did not start: {line!r}\n{log_path.read_text()}")
            yield match.group(1), Path(match.group(2)), log_path, time.monotonic()
        finally:
            _stop_group(proc)


def _readline_within(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line, or "" if none comes within ``timeout``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return proc.stdout.readline()


def nvgrid(address: str, ca: Path, *args: str) -> dict:
    """``gridhook nvgrid …`` as a process, credentials from the environment; its JSON answer."""
    result = subprocess.run(
        [str(GRIDHOOK), "nvgrid", *args, "--host", address, "--ca-cert-path", str(ca)],
        env=clean_env(NVGRID_USERNAME="admin", NVGRID_PASSWORD="password"),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, f"gridhook nvgrid {args[0]} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def test_ramp_down_scheduled_through_the_cli_reaches_the_receivers_store(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    receiver_env = {
        "GRIDHOOK_STORE": f"sqlite:///{db}",
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
    }
    correlation_id = f"e2e-{uuid.uuid4().hex[:8]}"
    with (
        simulator(tmp_path) as (address, ca, sim_log, listening_at),
        function_server("receive_power_event", receiver_env, cwd=tmp_path) as receiver,
    ):
        hook = f"{receiver.url}/nvgrid/webhook?token={TEST_TOKEN}"
        registered = nvgrid(address, ca, "register-webhook", "--url", hook)
        assert registered["result"]["ok"] is True
        # The store exists (schema made) before the first delivery, so this test's own
        # opening never races the receiver's first one: the simulator does not retry a 503.
        store = open_store(f"sqlite:///{db}", timeout_seconds=5.0)

        # Let the simulator's clock get well ahead of ours (>= 1.5 real s = 88.5 simulated s),
        # so a "now" resolved on the local clock would be visibly wrong.
        time.sleep(max(0.0, MIN_SIM_AGE - (time.monotonic() - listening_at)))
        sim_age = time.monotonic() - listening_at
        scheduled_at = datetime.now(UTC)
        scheduled = nvgrid(
            address,
            ca,
            "set-load-target",
            "--value", str(TARGET_MW),
            "--unit", "mw",
            "--start-time", "now",
            "--end-time", f"+{TARGET_MINUTES}m",
            "--feed-tags", "main_power_feed",
            "--correlation-id", correlation_id,
        )  # fmt: skip
        assert scheduled["ok"] is True

        try:
            deadline = time.monotonic() + WAIT
            stored = []
            while time.monotonic() < deadline:
                stored = list(
                    iter_events(store, EventQuery(correlation_id=correlation_id, limit=100))
                )
                if len(stored) >= len(EXPECTED):
                    break
                time.sleep(0.1)
            quarantined = store.quarantined().items
        finally:
            store.close()
        # The store has the last event before the simulator hears the 200 and logs it.
        while True:
            log_text = sim_log.read_text(errors="replace")
            logged = len(_DELIVERY_LINE.findall(log_text))
            if logged >= len(EXPECTED) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        receiver_log = receiver.logs()

    names = [event.event for event in stored]
    assert names == EXPECTED, (
        f"store holds {names}; simulator log:\n{log_text}\nreceiver log:\n{receiver_log}"
    )
    for event in stored:
        assert violations(event.payload) == [], event.payload
        assert event.payload["feed_tag"] == "main_power_feed"
        assert event.payload["correlation_id"] == correlation_id
    assert quarantined == []

    down_start, down_end, up_start, up_end = (event.payload for event in stored)
    assert down_start["target_load"] == {"value": TARGET_MW, "unit": "mw"}
    assert down_start["prev_target_load"] == {"value": 10, "unit": "mw"}
    assert down_start["compliant"] is False
    assert down_end["calculated_load"] == {"value": TARGET_MW, "unit": "mw"}
    assert down_end["compliant"] is True
    # "now" and "+3m" were resolved on the simulator's clock, which ran at least
    # sim_age * (SPEED - 1) seconds ahead of ours when the CLI asked for it.
    start = datetime.fromisoformat(down_start["start_time"])
    end = datetime.fromisoformat(down_start["end_time"])
    ahead = (start - scheduled_at).total_seconds()
    assert ahead >= 0.9 * sim_age * (SPEED - 1), (start, scheduled_at, sim_age)
    assert (end - start).total_seconds() == pytest.approx(TARGET_MINUTES * 60, abs=1)
    # Back to the default at the target's end, under the same correlation id.
    assert up_start["start_time"] == down_start["end_time"]
    assert up_start["end_time"] is None and up_end["end_time"] is None
    assert up_end["calculated_load"] == {"value": 10, "unit": "mw"}

    # Nothing refused: every delivery the simulator logged was a 200, one per event.
    deliveries = _DELIVERY_LINE.findall(log_text)
    assert sorted(event for _, event, _ in deliveries) == sorted(EXPECTED), log_text
    assert {(outcome, status) for outcome, _, status in deliveries} == {("delivered", "200")}
    assert TEST_TOKEN not in log_text  # the registered URL is logged redacted
