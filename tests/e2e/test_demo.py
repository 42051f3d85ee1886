"""`make demo` end to end: `python -m demo` on a faster clock, as a process in a
scratch directory, with every part real (gridhook-sim, the functions-framework receiver,
reconcile, the store, the gridhook CLI): on SQLite, and on Firestore through the emulator
(one already running, which the demo uses and leaves; none running, which it starts and
stops). Then a Ctrl-C in the middle of the day."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from demo.processes import free_port, port_accepts
from gridhook.store import EventQuery, iter_events, open_store
from tests.harness import REPO, FirestoreEmulator, clean_env

# A 17-hour day at 7200x takes about 8.5 s; the start-up allowance is generous because the
# machine is shared (a slow start fails the demo with a clear message, not a wrong result).
FAST = ["--speed", "7200", "--startup-seconds", "10"]
WAIT = 180.0  # every wait is bounded by this many real seconds

pytestmark = pytest.mark.slow


def _demo(
    cwd: Path,
    *args: str,
    stdout: int | None = subprocess.PIPE,
    store_env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    env = clean_env()
    return subprocess.Popen(
        [sys.executable, "-m", "demo", *FAST, *args],
        cwd=cwd,
        env={**env, **(store_env or {}), "PYTHONUNBUFFERED": "1"},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test's own signals stay the test's
    )


def _processes_in(directory: Path) -> list[str]:
    """Every process whose working directory is `directory` (the demo and its children)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(proc / "cwd")) == directory:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{proc.name}: {cmdline.strip()}")
    return found


def _wait_until_gone(directory: Path, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_in(directory)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_make_demo_runs_the_demo_driver() -> None:
    dry = subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "-m demo" in dry.stdout


def _run_demo(cwd: Path, *args: str, store_env: Mapping[str, str] | None = None) -> str:
    """Run the demo to its end; its stdout. Fails unless it succeeded and left nothing running."""
    demo = _demo(cwd, *args, store_env=store_env)
    try:
        out, err = demo.communicate(timeout=WAIT)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert _wait_until_gone(cwd) == []
    return out


def test_the_demo_plays_a_day_and_reports_it(tmp_path: Path) -> None:
    out = _run_demo(tmp_path)
    assert_the_day_is_stored_and_reported(
        tmp_path, out, f"sqlite:///{tmp_path / 'var/demo/gridhook.db'}"
    )
    assert "More:    export GRIDHOOK_STORE=sqlite:///var/demo/gridhook.db " in out


@pytest.mark.firestore
def test_the_demo_plays_a_day_into_a_running_firestore_emulator(
    tmp_path: Path, firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_env = {
        "GRIDHOOK_STORE": f"firestore://demo-{uuid.uuid4().hex[:12]}/gridhook",
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
    }
    out = _run_demo(tmp_path, store_env=store_env)
    assert "emulator started" not in out  # one answered: used as it is
    assert firestore_emulator.running  # and left running
    for name, value in store_env.items():
        monkeypatch.setenv(name, value)
    assert_the_day_is_stored_and_reported(tmp_path, out, store_env["GRIDHOOK_STORE"])
    assert f"FIRESTORE_EMULATOR_HOST={firestore_emulator.host}" in out  # how to look further
    assert not (tmp_path / "var/demo/gridhook.db").exists()


def assert_the_day_is_stored_and_reported(tmp_path: Path, out: str, store_url: str) -> None:
    plan = json.loads((tmp_path / "var/demo/scenario.json").read_text())
    store = open_store(store_url)
    try:
        events = list(iter_events(store, EventQuery(limit=500)))
    finally:
        store.close()
    assert {e.feed_tag for e in events} == {"main_power_feed", "backup_power_feed"}
    stored = {(e.correlation_id, e.event) for e in events}
    for curtailment in plan["curtailments"]:
        expected = {
            (curtailment["correlation_id"], name) for name in curtailment["expected_events"]
        }
        assert {s for s in stored if s[0] == curtailment["correlation_id"]} == expected

    not_met = [e for e in events if e.event == "end_ramp_down" and e.compliant is False]
    [below_floor] = [c for c in plan["curtailments"] if c["target_mw"] < c["floor_mw"]]
    assert [e.correlation_id for e in not_met] == [below_floor["correlation_id"]]
    assert not_met[0].calculated_w == below_floor["floor_mw"] * 1e6

    [dropped] = [c for c in plan["curtailments"] if c["webhook_dropped"]]
    assert dropped["start"] == max(c["start"] for c in plan["curtailments"])  # the day's last
    assert (dropped["correlation_id"], "end_ramp_up") not in stored
    assert "STALLED" in out

    report = tmp_path / "var/report.html"
    assert "Report:  var/report.html" in out
    html = report.read_text(encoding="utf-8")
    # Every curtailment of the plan is in the report and in the printed episode table,
    # the dropped one as stalled.
    table = out[out.index("Episodes (gridhook episodes") :]
    for curtailment in plan["curtailments"]:
        assert curtailment["correlation_id"] in html
        row = next(line for line in table.splitlines() if curtailment["correlation_id"] in line)
        expected = "stalled" if curtailment["webhook_dropped"] else "complete"
        assert f" {expected} " in row, row


def test_a_child_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        demo = _demo(tmp_path, "--sim-port", str(taken.getsockname()[1]))
        _, err = demo.communicate(timeout=WAIT)
    assert demo.returncode == 1, err
    assert "the simulator did not start (exit code 2)" in err
    assert "its port is in use" in err
    assert "gridhook-sim: error: cannot listen on" in err  # the tail of its log
    assert _wait_until_gone(tmp_path) == []


@pytest.mark.firestore
def test_the_demo_starts_the_emulator_when_none_answers_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    store_env = {
        "GRIDHOOK_STORE": "firestore://demo-day/gridhook",
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}",
    }
    # The simulator cannot start (its port is taken), so the run ends early: the emulator
    # was started before it, and is stopped with the rest.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        demo = _demo(tmp_path, "--sim-port", str(taken.getsockname()[1]), store_env=store_env)
        out, err = demo.communicate(timeout=WAIT)
    assert demo.returncode == 1, err
    assert f"firestore  emulator started on 127.0.0.1:{port}" in out
    assert "the simulator did not start" in err
    assert _wait_until_gone(tmp_path) == []
    assert not port_accepts(port)
    assert (tmp_path / "var/demo/firestore-emulator.log").read_text().startswith(f"READY {port}")


def test_a_store_the_demo_does_not_play_into_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    for store_env, reason in [
        ({"GRIDHOOK_STORE": "firestore://demo-day/gridhook"}, "without FIRESTORE_EMULATOR_HOST"),
        ({"GRIDHOOK_STORE": "dynamodb://demo"}, "the demo plays into SQLite"),
        (
            {"GRIDHOOK_STORE": "firestore://demo-day/gridhook", "FIRESTORE_EMULATOR_HOST": "x"},
            "FIRESTORE_EMULATOR_HOST=x is not HOST:PORT",
        ),
    ]:
        demo = _demo(tmp_path, store_env=store_env)
        out, err = demo.communicate(timeout=WAIT)
        assert demo.returncode == 1 and reason in err, err
        assert out == "" and not (tmp_path / "var").exists()


def test_ctrl_c_stops_every_child_and_exits_130(tmp_path: Path) -> None:
    demo = _demo(tmp_path)
    try:
        assert demo.stdout is not None
        seen = []
        deadline = time.monotonic() + WAIT
        with selectors.DefaultSelector() as selector:
            selector.register(demo.stdout, selectors.EVENT_READ)
            while not any("as it happens" in line for line in seen):
                assert time.monotonic() < deadline, "".join(seen)
                if selector.select(1.0):
                    line = demo.stdout.readline()
                    assert line, f"the demo ended early:\n{''.join(seen)}{demo.stderr.read()}"
                    seen.append(line)
        # The simulator and the receiver (gunicorn and its worker) run beside the demo.
        assert len(_processes_in(tmp_path)) >= 4
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 130
        assert "interrupted" in demo.stderr.read()
        assert _wait_until_gone(tmp_path) == []
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
