"""``gridhook samples rollup`` and ``gridhook meter import`` as a user runs them: real
processes on real stores (SQLite; meter import on every backend)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridhook.store import MeterQuery, open_store
from tests.integration.test_report_cli import DAY_END, ORIGIN, dev_clock_at, gridhook
from tests.report_scenario import seed_day

RANGE = ["--since", "2026-01-10T00:00:00Z", "--until", "2026-01-11T00:00:00Z"]


@pytest.fixture
def day_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    try:
        seed_day(store, ORIGIN)  # two feeds, a sample each every 10 minutes
    finally:
        store.close()
    return url


def _json(*args: str, env: dict[str, str] | None = None) -> object:
    answer = gridhook(*args, "--format", "json", env=env)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


# -- gridhook samples rollup -------------------------------------------------------------


def test_samples_rollup_writes_each_hour_once_and_the_report_draws_it(day_store: str) -> None:
    clock = {"GRIDHOOK_DEV_CLOCK": dev_clock_at(DAY_END + timedelta(hours=1))}
    before = _json("report", "--store", day_store, *RANGE, env=clock)
    (run,) = _json("samples", "rollup", "--store", day_store, *RANGE, env=clock)
    assert (run["site"], run["hours"], run["rolled_up_before"]) == ("default", 24, 0)
    assert run["written"] == 48 and run["samples_read"] == 288 and len(run["feeds"]) == 2
    # Twice: nothing new, no sample read.
    (again,) = _json("samples", "rollup", "--store", day_store, *RANGE, env=clock)
    assert (again["written"], again["rolled_up_before"], again["samples_read"]) == (0, 24, 0)
    table = gridhook("samples", "rollup", "--store", day_store, *RANGE, env=clock)
    assert table.returncode == 0 and "0 rollup(s) written for 24 complete hour(s)" in table.stderr

    after = _json("report", "--store", day_store, *RANGE, env=clock)
    for old, new in zip(before["feeds"], after["feeds"], strict=True):  # type: ignore[index]
        # The figures do not depend on where the load came from; the chart's points do.
        assert (new["summary"], new["episodes"]) == (old["summary"], old["episodes"])
        assert old["timeline"]["load_source"]["drawn"] == "samples"
        assert new["timeline"]["load_source"] == {
            "drawn": "rollups",
            "rollup_hours": 24,
            "rollup_points": 144,
            "sample_points": 0,
            "step_seconds": 300,
        }
        # One sample per 5-minute bucket here: each mean is that sample's load.
        raw = [p["calculated_w"] for p in old["timeline"]["points"] if p["source"] == "sample"]
        means = [p["calculated_w"] for p in new["timeline"]["points"] if p["source"] == "rollup"]
        assert means == raw
    html = gridhook("report", "--store", day_store, *RANGE, env=clock)
    assert "144 5-minute means of DPS samples (24 h read as hourly rollups)" in html.stdout

    # The day is packed once no sampling run can add to it (3 h after it ended): one day
    # record per feed. A report over the days around it (enough whole days for readers to
    # look for day records) reads the same from them as from the hourly rollups.
    assert run["days_packed"] == again["days_packed"] == 0
    around = ["--since", "2026-01-07T00:00:00Z", "--until", "2026-01-11T00:00:00Z"]
    hourly = _json("report", "--store", day_store, *around, env=clock)
    later = {"GRIDHOOK_DEV_CLOCK": dev_clock_at(DAY_END + timedelta(hours=4))}
    (packing,) = _json("samples", "rollup", "--store", day_store, *RANGE, env=later)
    assert (packing["written"], packing["days_packed"]) == (0, 2)
    (done,) = _json("samples", "rollup", "--store", day_store, *RANGE, env=later)
    assert done["days_packed"] == 0
    packed = _json("report", "--store", day_store, *around, env=later)
    for old, new in zip(hourly["feeds"], packed["feeds"], strict=True):  # type: ignore[index]
        assert new["timeline"]["load_source"]["rollup_hours"] == 24
        # (An open episode's flag says how long ago it began: the clock moved on.)
        assert (new["summary"], new["timeline"]) == (old["summary"], old["timeline"])


def test_samples_rollup_leaves_the_open_hour_to_the_raw_samples(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    seed_day(store, ORIGIN, hours=10.5)
    store.close()
    clock = {"GRIDHOOK_DEV_CLOCK": dev_clock_at(ORIGIN + timedelta(hours=10, minutes=30))}
    (run,) = _json("samples", "rollup", "--store", url, "--since", RANGE[1], env=clock)
    assert (run["hours"], run["written"]) == (10, 20)  # 10:00 is still open
    report = _json("report", "--store", url, *RANGE, env=clock)
    sources = [f["timeline"]["load_source"] for f in report["feeds"]]  # type: ignore[index]
    assert [s["drawn"] for s in sources] == ["rollups+samples"] * 2
    assert [(s["rollup_hours"], s["sample_points"]) for s in sources] == [(10, 3)] * 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "2026-01-11T00:00:00Z", "--until", "2026-01-10T00:00:00Z"], "--until: must"),
        (["--since", "yesterday"], "--since: 'yesterday' is neither an RFC 3339 time"),
        (["--site", "phx1"], "unknown site 'phx1': this deployment serves default"),
    ],
)
def test_samples_rollup_refuses_in_one_line(day_store: str, args: list[str], says: str) -> None:
    answer = gridhook("samples", "rollup", "--store", day_store, *args)
    assert answer.returncode == 2 and answer.stdout == ""
    assert answer.stderr.count("\n") == 1 and says in answer.stderr, answer.stderr


def test_samples_rollup_never_creates_a_store(tmp_path: Path) -> None:
    answer = gridhook("samples", "rollup", "--store", f"sqlite:///{tmp_path}/nothing.db")
    assert answer.returncode == 2 and "no store at" in answer.stderr
    assert not (tmp_path / "nothing.db").exists()


def test_gridhook_samples_still_lists_samples(day_store: str) -> None:
    listed = _json("samples", "--store", day_store, "--since", "2026-01-10T00:00:00Z", "--until",
                   "2026-01-10T00:30:00Z")  # fmt: skip
    assert len(listed) == 6  # type: ignore[arg-type]


# -- gridhook meter import ---------------------------------------------------------------

T0 = datetime(2026, 5, 4, tzinfo=UTC)


def _csv(path: Path, kwh: list[float], *, bad: int | None = None) -> Path:
    rows = ["interval_start,interval_end,kwh"]
    for k, value in enumerate(kwh):
        start = T0 + timedelta(minutes=15 * k)
        end = start + timedelta(minutes=15)
        cell = "n/a" if k == bad else f"{value}"
        rows.append(f"{start:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ},{cell}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _stored(url: str, feed: str = "main", site: str = "default") -> list:
    store = open_store(url)
    try:
        return store.meter_records(
            MeterQuery(feed=feed, since=T0 - timedelta(days=365), until=T0 + timedelta(days=30),
                       site=site)
        )  # fmt: skip
    finally:
        store.close()


@pytest.fixture
def backend(store_url: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """A store URL on each backend and the environment a CLI process needs to reach it."""
    scheme = store_url.partition(":")[0]
    env = {} if scheme == "sqlite" else dict(request.getfixturevalue(f"{scheme}_env"))
    return store_url, env


def test_meter_import_new_unchanged_refused_and_replaced(
    backend: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = backend
    kwh = [250.0 + k for k in range(96)]  # a day of 15-minute energy readings
    first = _csv(tmp_path / "may-4.csv", kwh)
    run = gridhook("meter", "import", str(first), "--store", url, "--feed", "main", env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        f"{first}: 96 interval(s) of feed main at site default (csv): "
        "96 new, 0 unchanged, 0 replaced\n"
    )
    stored = _stored(url)
    assert len(stored) == 96 and {r.revision for r in stored} == {1}
    assert stored[0].mean_w == pytest.approx(250.0 * 4 * 1000)  # 250 kWh in 15 min: 1 MW
    assert stored[0].source == "may-4.csv:2"

    # The same file again: nothing new.
    again = _json("meter", "import", str(first), "--store", url, "--feed", "main", env=env)
    assert {k: again[k] for k in ("new", "unchanged", "replaced")} == {  # type: ignore[index]
        "new": 0,
        "unchanged": 96,
        "replaced": 0,
    }
    # Different values: refused, naming the first line that differs; nothing stored.
    changed = _csv(tmp_path / "may-4-fixed.csv", [*kwh[:10], 999.0, *kwh[11:95], 1.0])
    refused = gridhook("meter", "import", str(changed), "--store", url, "--feed", "main", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"{changed}: line 12: " in refused.stderr
    assert "2 interval(s) in the file are not as stored: nothing imported" in refused.stderr
    assert "--replace" in refused.stderr
    assert _stored(url) == stored
    # With --replace: the file's values are the current revision, the old ones kept.
    replaced = _json(
        "meter", "import", str(changed), "--store", url, "--feed", "main", "--replace", env=env
    )
    assert {k: replaced[k] for k in ("new", "unchanged", "replaced")} == {  # type: ignore[index]
        "new": 0,
        "unchanged": 94,
        "replaced": 2,
    }
    revisions = [r for r in _stored(url) if r.interval_start == T0 + timedelta(minutes=150)]
    assert [(r.revision, r.mean_w, r.source) for r in revisions] == [
        (1, pytest.approx(260.0 * 4000), "may-4.csv:12"),
        (2, pytest.approx(999.0 * 4000), "may-4-fixed.csv:12"),
    ]
    # Another site's and feed's data are their own.
    assert _stored(url, feed="aux") == [] and _stored(url, site="phx1") == []


def test_meter_import_a_bad_row_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    bad = _csv(tmp_path / "bad.csv", [100.0] * 20, bad=13)
    answer = gridhook("meter", "import", str(bad), "--store", url, "--feed", "main")
    assert answer.returncode == 2 and answer.stdout == ""
    assert answer.stderr == (
        f"gridhook meter: {bad}: line 15: kwh 'n/a' is not a number; nothing imported\n"
    )
    assert _stored(url) == []


GREEN_BUTTON = """Name,ACME DATA CENTER
Address,"1 Main St, Springfield, NY"
Account Number,1234

TYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES
"""


def test_meter_import_green_button_in_the_sites_time_zone(tmp_path: Path) -> None:
    """The spring-forward day in New York: 23 hours of hourly rows, local times."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    zone = ZoneInfo("America/New_York")
    rows = []
    for hour in range(24):
        if hour == 2:
            continue  # 02:00 does not exist that day
        rows.append(f"Electric usage,2026-03-08,{hour}:00,{hour}:59,{1000 + hour},kWh,$1.00,")
    rows.append("Electric usage,2026-03-09,0:00,0:59,,kWh,,")  # a missing reading
    path = tmp_path / "GreenButton.csv"
    path.write_text(GREEN_BUTTON + "\n".join(rows) + "\n", encoding="utf-8")
    env = {"GRIDHOOK_TIMEZONE": "America/New_York"}
    answer = gridhook("meter", "import", str(path), "--store", url, "--feed", "main", env=env)
    assert answer.returncode == 0, answer.stderr
    assert "23 interval(s) of feed main at site default (green-button): 23 new" in answer.stdout
    assert "1 row(s) without a usage value (lines 29)" in answer.stderr
    stored = _stored(url)
    assert [r.interval_start for r in stored] == [
        datetime(2026, 3, 8, h, tzinfo=zone).astimezone(UTC) for h in range(24) if h != 2
    ]
    assert stored[0].interval_start == datetime(2026, 3, 8, 5, tzinfo=UTC)  # EST
    assert stored[2].interval_start == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT
    assert stored[2].mean_w == pytest.approx(1003 * 1000)  # kWh in an hour: kW
    # Read as UTC instead, the same file is another set of intervals: the zone matters.
    utc = gridhook("meter", "import", str(path), "--store", url, "--feed", "main")
    assert utc.returncode == 2 and "nothing imported" in utc.stderr


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--site", "phx1"], "unknown site 'phx1': this deployment serves default"),
        (["--feed", ""], "--feed: "),
    ],
)
def test_meter_import_refuses_in_one_line(tmp_path: Path, argv: list[str], says: str) -> None:
    path = _csv(tmp_path / "m.csv", [1.0])
    args = ["meter", "import", str(path), "--store", f"sqlite:///{tmp_path}/e.db", "--feed", "m"]
    answer = gridhook(*args, *argv)
    assert answer.returncode == 2 and answer.stderr.count("\n") == 1, answer.stderr
    assert says in answer.stderr


def test_meter_import_of_a_file_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    answer = gridhook(
        "meter", "import", str(missing), "--store", f"sqlite:///{tmp_path}/e.db", "--feed", "m"
    )
    assert answer.returncode == 2
    assert answer.stderr == f"gridhook meter: cannot read {missing}: No such file or directory\n"
