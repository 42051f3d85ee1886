"""`gridhook-sim --meter-out DIR` as a process: on SIGTERM it writes each site's and feed's
meter data of the run — from the clock's start, where `--history` ends, to the last whole
interval — in both formats with an index, and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridhook.settlement import parse_meter_csv
from simulator.cli import main
from simulator.config import default_feeds
from simulator.server import load_model

REPO_ROOT = Path(__file__).resolve().parents[3]
SIM_TIME = datetime(2026, 12, 1, 12, 10, tzinfo=UTC)  # 05:10 in Phoenix


def test_meter_out_writes_the_run_when_the_simulator_stops(tmp_path: Path) -> None:
    out = tmp_path / "meter"
    # An hour a real second, started 3 s ago: the clock is past 08:10 local when it serves.
    real = datetime.now(UTC) - timedelta(seconds=3)
    clock = f"3600@{SIM_TIME:%Y-%m-%dT%H:%M:%SZ}@{real:%Y-%m-%dT%H:%M:%S.%fZ}"
    argv = [
        sys.executable, "-m", "simulator.cli", "--port", "0", "--insecure",
        "--log-level", "WARNING", "--site-name", "phx1", "--site-name", "ams1",
        "--timezone", "phx1=America/Phoenix", "--timezone", "ams1=Europe/Amsterdam",
        "--load-seed", "7", "--clock", clock, "--meter-interval", "15m", "--meter-out", str(out),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)]),
    }
    process = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        for _ in range(2):  # a line per site once it serves
            assert "listening on" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"gridhook-sim meter index={out / 'index.json'}" in stdout
    files = json.loads((out / "index.json").read_text())["files"]
    assert {(f["site"], f["feed"], f["format"]) for f in files} == {
        (site, feed, kind)
        for site in ("phx1", "ams1")
        for feed in ("main_power_feed", "backup_power_feed")
        for kind in ("csv", "green-button")
    }
    for entry in files:
        assert entry["since"] == "2026-12-01T12:00:00Z"  # where --history for SIM_TIME ends
        assert f"gridhook-sim meter site={entry['site']}" in stdout
        zone = ZoneInfo(entry["timezone"])
        intervals = parse_meter_csv(Path(entry["path"]).read_text(), zone).intervals
        assert len(intervals) == entry["intervals"] >= 12  # at least 3 hours of 15 minutes
        assert intervals[0].interval_start == SIM_TIME.replace(minute=0)
        assert intervals[-1].interval_end.isoformat().replace("+00:00", "Z") == entry["until"]
        # No target was set: the load served is the model's, as --history would write it.
        model = load_model(default_feeds(), entry["site"], zone, 7)
        assert model is not None
        for interval in intervals:
            assert interval.mean_w == pytest.approx(
                model.mean_watts(entry["feed"], interval.interval_start, interval.interval_end),
                abs=2.0,  # 15-minute energies to 1 Wh
            )


def test_meter_out_is_refused_with_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--history", "2", "--out", str(tmp_path), "--load-seed", "7"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--meter-out", str(tmp_path / "meter")])
    assert exited.value.code == 2
    assert "--meter-out is the data of a run" in capsys.readouterr().err
