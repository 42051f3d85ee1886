"""``gridhook report`` as a user runs it (a real process on a SQLite store): formats,
--output, the development clock and the ramp deadline from the environment."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.episodes.load import load_episodes
from gridhook.store import open_store
from tests.harness import FUNCTIONS, REPO, clean_env
from tests.report_scenario import FEED_A, FEED_B, seed_day

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
DAY_END = ORIGIN + timedelta(hours=24)
RANGE = ["--since", "2026-01-10T00:00:00Z", "--until", "2026-01-11T00:00:00Z"]


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'events.db'}"
    store = open_store(url)
    try:
        seed_day(store, ORIGIN)
    finally:
        store.close()
    return url


def gridhook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = clean_env()
    environ.update({"PYTHONPATH": f"{FUNCTIONS}{os.pathsep}{REPO}", **(env or {})})
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gridhook.cli import main; sys.exit(main())",
            *args,
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def dev_clock_at(moment: datetime) -> str:
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"1@{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


def expected_ids(store_url: str, now: datetime, deadline: float = 1800) -> list[str]:
    store = open_store(store_url)
    try:
        episodes = load_episodes(
            store, since=ORIGIN, until=DAY_END, now=now, ramp_deadline=deadline
        )
    finally:
        store.close()
    return sorted(e.episode_id for e in episodes)


def test_json_report_matches_the_stored_episodes(store_url) -> None:
    result = gridhook("report", "--store", store_url, *RANGE, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    ids = sorted(e["episode_id"] for f in data["feeds"] for e in f["episodes"])
    assert ids == expected_ids(store_url, datetime.now(UTC))
    assert {f["feed_tag"] for f in data["feeds"]} == {FEED_A, FEED_B}
    # 288 samples (every 10 minutes on two feeds) are on the timelines.
    assert sum(f["timeline"]["points"].__len__() for f in data["feeds"]) == 288 + 17


def test_csv_for_one_feed(store_url) -> None:
    result = gridhook("report", "--store", store_url, *RANGE, "--feed", FEED_B, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["correlation_id"] for r in rows] == ["dr-0800", "dr-1400"]
    assert [r["compliant_dps"] for r in rows] == ["true", "false"]


def test_html_report_written_to_a_file(store_url, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = gridhook("report", "--store", store_url, *RANGE, "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: 5 episode(s) on 2 feed(s)" in result.stderr
    html = out.read_text()
    # Each feed's timeline, delivered against needed, and compliance by day.
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 6
    assert not list(tmp_path.glob(".*partial"))


def test_ages_follow_the_development_clock(store_url) -> None:
    # On the development clock it is the end of the seeded day: "24h" is that day.
    env = {"GRIDHOOK_DEV_CLOCK": dev_clock_at(DAY_END)}
    result = gridhook("report", "--store", store_url, "--since", "24h", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["since"].startswith("2026-01-10T00:00")
    assert data["overall"]["episodes"] == 5
    # Without it, the last 24 hours are the real ones: of that day only the stalled ramp,
    # never ended, is still going on.
    plain = gridhook("report", "--store", store_url, "--since", "24h", "--format", "json")
    (feed,) = json.loads(plain.stdout)["feeds"]
    assert [e["correlation_id"] for e in feed["episodes"]] == ["dr-2000"]


def test_the_ramp_deadline_comes_from_the_environment(store_url) -> None:
    # The last ramp started at 20:00; at midnight it is 4 hours old.
    env = {"GRIDHOOK_DEV_CLOCK": dev_clock_at(DAY_END)}
    strict = gridhook("report", "--store", store_url, *RANGE, "--format", "json", env=env)
    lenient = gridhook(
        "report",
        "--store",
        store_url,
        *RANGE,
        "--format",
        "json",
        env={**env, "GRIDHOOK_RAMP_DEADLINE_SECONDS": str(6 * 3600)},
    )
    assert json.loads(strict.stdout)["overall"]["by_status"]["stalled"] == 1
    lenient_data = json.loads(lenient.stdout)
    assert lenient_data["overall"]["by_status"]["stalled"] == 0
    assert lenient_data["ramp_deadline_seconds"] == 6 * 3600


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--since", "last tuesday"], {}, "--since: 'last tuesday' is neither"),
        (["--since", "1h", "--until", "2h"], {}, "--until: "),
        (["--feed", ""], {}, "--feed: is empty"),
        ([], {"GRIDHOOK_RAMP_DEADLINE_SECONDS": "soon"}, "GRIDHOOK_RAMP_DEADLINE_SECONDS"),
        ([], {"GRIDHOOK_DEV_CLOCK": "fast"}, "GRIDHOOK_DEV_CLOCK"),
    ],
)
def test_bad_input_is_one_clear_line(store_url, args, env, message) -> None:
    result = gridhook("report", "--store", store_url, *args, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("gridhook report: ") and message in result.stderr
    assert result.stdout == ""


def test_an_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "events.db"
    broken.write_text("not a database")
    result = gridhook("report", "--store", f"sqlite:///{broken}")
    assert result.returncode == 2 and "cannot open SQLite store" in result.stderr
    # A path no store can be at: a reader says there is none (and creates nothing).
    result = gridhook("report", "--store", f"sqlite:///{broken}/events.db")
    assert result.returncode == 2 and f"no store at {broken}/events.db" in result.stderr
