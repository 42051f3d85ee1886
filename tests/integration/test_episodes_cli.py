"""`gridhook episodes` and `gridhook samples`, run for real against a SQLite store."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook import clock
from gridhook.cli import main
from gridhook.events import StoredEvent, normalise, rfc3339
from gridhook.store import LoadSample, open_store
from tests.harness import clean_env
from tests.unit.test_episodes import curtailment, ev

GRIDHOOK = Path(sys.executable).parent / "gridhook"


@pytest.fixture(autouse=True)
def _system_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_RAMP_DEADLINE_SECONDS", "GRIDHOOK_STORE"):
        monkeypatch.delenv(name, raising=False)
    yield
    clock.configure(None)  # a command configures the process clock; leave it as found


def shifted(events: list[StoredEvent], to: datetime) -> list[StoredEvent]:
    """The events moved in time so that the first is received at ``to``."""
    offset = to - min(e.received_at for e in events)
    return [normalise(e.payload, e.received_at + offset) for e in events]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store holding, in the last two days: a complete curtailment on f1, one
    replaced by a new target on f2, and a stalled ramp on f2; and one a month ago."""
    url = f"sqlite:///{tmp_path}/events.db"
    now = datetime.now(UTC)
    events = [
        *shifted(curtailment("c1", 0, down=252, held=7500, up=45), now - timedelta(days=2)),
        *shifted(curtailment("old", 0), now - timedelta(days=30)),
        *shifted(
            [
                *curtailment("d1", 0, feed="f2")[:2],
                ev("start_ramp_down", 600, corr="d2", feed="f2", target=5.0, prev=6.5, calc=6.5),
            ],
            now - timedelta(hours=3),
        ),
    ]
    store = open_store(url)
    for event in events:
        store.add_event(event)
    store.close()
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_is_for_people(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    code, out, err = run(capsys, "episodes", "--store", store_url)
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split("  ")[0] == "FEED" and "REQUESTED MWh" in header
    assert len(rows) == 3  # the month-old one is outside the default 7 days
    c1 = next(r for r in rows if " c1 " in r)
    # 4 min 12 s down, held 2 h 05 min, 45 s up, 3.5 MW for 7500 s = 7.29 MWh requested.
    for cell in ("complete", "10 → 6.5", "4 min 12 s", "2 h 05 min", "45 s", "yes", "7.29"):
        assert cell in c1, cell
    d1 = next(r for r in rows if " d1 " in r)
    assert "replaced by d2" in d1 and "9 min" in d1  # held from 1m until d2 began at 10m
    d2 = next(r for r in rows if " d2 " in r)
    assert "stalled" in d2 and "6.5 → 5" in d2


def test_json_and_csv_carry_every_field(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    _, out, _ = run(capsys, "episodes", "--store", store_url, "--format", "json")
    listed = json.loads(out)
    assert [(e["correlation_id"], e["status"]) for e in listed] == [
        ("c1", "complete"),
        ("d1", "complete"),
        ("d2", "stalled"),
    ]
    c1 = listed[0]
    assert c1["ramp_down_seconds"] == 252 and c1["constrained_seconds"] == 7500
    assert c1["requested_energy_wh"] == pytest.approx(3.5e6 * 7500 / 3600)
    assert c1["target_load"] == {"value": 6.5, "unit": "mw"} and len(c1["event_ids"]) == 4
    assert listed[1]["superseded_by"] == listed[2]["episode_id"]
    _, out, _ = run(capsys, "episodes", "--store", store_url, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["correlation_id"] for r in rows] == ["c1", "d1", "d2"]
    assert rows[0]["compliant"] == "true" and rows[0]["ramp_down_seconds"] == "252"
    assert rows[2]["flags"].startswith("stalled: start_ramp_down received")
    assert rows[2]["ramp_down_ended_at"] == ""


def test_filters(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    def listed(*flags: str) -> list[str]:
        code, out, _ = run(capsys, "episodes", "--store", store_url, "--format", "json", *flags)
        assert code == 0
        return [e["correlation_id"] for e in json.loads(out)]

    assert listed("--feed", "f2") == ["d1", "d2"]
    assert listed("--status", "stalled") == ["d2"]
    assert listed("--since", "60d") == ["old", "c1", "d1", "d2"]
    assert listed("--since", "60d", "--until", "7d") == ["old"]
    assert listed("--correlation-id", "old") == ["old"]  # any time without --since
    assert listed("--correlation-id", "old", "--since", "7d") == []
    since = rfc3339(datetime.now(UTC) - timedelta(hours=4))
    assert listed("--since", since) == ["d1", "d2"]


def test_nothing_found_says_so_on_stderr(
    capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, out, err = run(capsys, "episodes", "--store", store_url, "--feed", "nowhere")
    assert (code, out) == (0, "")
    assert err.startswith("no episodes between ") and "(feed nowhere)" in err
    code, out, err = run(
        capsys, "episodes", "--store", store_url, "--feed", "x", "--format", "json"
    )
    assert (code, json.loads(out), err) == (0, [], "")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--status", "done"], "--status: 'done' is not one of complete, in_progress"),
        (["--format", "xml"], "--format: 'xml' is not one of table, json, csv"),
        (["--since", "yesterday"], "--since: 'yesterday' is neither an RFC 3339 time"),
        (["--since", "1d", "--until", "2d"], "--until: "),
        (["--store", "mysql://x"], "unknown store scheme 'mysql'"),
    ],
)
def test_bad_flags_get_one_clear_line(
    capsys: pytest.CaptureFixture[str], store_url: str, flags: list[str], message: str
) -> None:
    code, out, err = run(capsys, "episodes", "--store", store_url, *flags)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("gridhook episodes: ") and message in err


def test_the_ramp_deadline_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def d2_status() -> str:
        _, out, _ = run(capsys, "episodes", "--store", store_url, "--format", "json")
        return next(e["status"] for e in json.loads(out) if e["correlation_id"] == "d2")

    # d2's ramp down started about 2h50m ago.
    assert d2_status() == "stalled"  # the default deadline is 30 minutes
    monkeypatch.setenv("GRIDHOOK_RAMP_DEADLINE_SECONDS", str(4 * 3600))
    assert d2_status() == "in_progress"
    monkeypatch.setenv("GRIDHOOK_RAMP_DEADLINE_SECONDS", "soon")
    code, _, err = run(capsys, "episodes", "--store", store_url)
    assert code == 2 and "GRIDHOOK_RAMP_DEADLINE_SECONDS='soon' is not a number" in err


def test_the_dev_clock_decides_what_7d_means(tmp_path: Path) -> None:
    # A simulated day in 2031: the events were received then, on the simulator's clock.
    url = f"sqlite:///{tmp_path}/sim.db"
    sim_now = datetime(2031, 6, 1, 12, tzinfo=UTC)
    store = open_store(url)
    for event in shifted(curtailment("sim-1", 0), sim_now - timedelta(days=1)):
        store.add_event(event)
    store.close()
    real_now = rfc3339(datetime.now(UTC))
    env = clean_env()

    def episodes(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GRIDHOOK), "episodes", "--store", url, "--since", "7d", "--format", "json"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    on_sim_clock = episodes(GRIDHOOK_DEV_CLOCK=f"1@{rfc3339(sim_now)}@{real_now}")
    assert on_sim_clock.returncode == 0, on_sim_clock.stderr
    (episode,) = json.loads(on_sim_clock.stdout)
    assert (episode["correlation_id"], episode["status"]) == ("sim-1", "complete")
    on_system_clock = episodes()
    assert (on_system_clock.returncode, json.loads(on_system_clock.stdout)) == (0, [])
    bad = episodes(GRIDHOOK_DEV_CLOCK="fast")
    assert bad.returncode == 2 and bad.stderr.startswith("gridhook episodes: GRIDHOOK_DEV_CLOCK")


def test_samples_lists_what_dps_measured(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/samples.db"
    now = datetime.now(UTC)
    store = open_store(url)
    for minutes, feed, calc, target in (
        (50, "f1", 9.2e6, 6.5e6),
        (40, "f1", 6.5e6, 6.5e6),
        (30, "f2", 8e6, None),
        (60 * 30, "f1", 10e6, None),  # 30 hours ago: outside the default 24h
    ):
        store.add_sample(
            LoadSample(
                feed_tag=feed,
                sampled_at=now - timedelta(minutes=minutes),
                calculated_w=calc,
                target_w=target,
                correlation_id="c1" if target else None,
                expires_at=now + timedelta(days=400),
            )
        )
    store.close()
    code, out, err = run(capsys, "samples", "--store", url)
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == [
        "SAMPLED",
        "AT",
        "FEED",
        "CALCULATED",
        "MW",
        "TARGET",
        "MW",
        "CORRELATION",
        "ID",
    ]
    assert [r.split()[2:5] for r in rows] == [
        ["f1", "9.2", "6.5"],
        ["f1", "6.5", "6.5"],
        ["f2", "8", "default"],
    ]
    _, out, _ = run(
        capsys, "samples", "--store", url, "--feed", "f1", "--since", "2d", "--format", "json"
    )
    assert [s["calculated_w"] for s in json.loads(out)] == [10e6, 9.2e6, 6.5e6]
    _, out, _ = run(capsys, "samples", "--store", url, "--format", "csv")
    assert [r["target_mw"] for r in csv.DictReader(io.StringIO(out))] == ["6.5", "6.5", ""]
    code, out, err = run(capsys, "samples", "--store", url, "--feed", "f9")
    assert (code, out) == (0, "") and err.startswith("no samples since ")
    code, _, err = run(capsys, "samples", "--store", url, "--until", "junk")
    assert code == 2 and err.startswith("gridhook samples: --until: 'junk'")
