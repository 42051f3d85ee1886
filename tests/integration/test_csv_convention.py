"""One CSV convention for every table gridhook exports (issue 15, item 10; docs/reports.md).

The four CSVs — events, samples, episodes (CLI) and the report (CLI and power_report's
``/report?format=csv``) — are read back with the ``csv`` module and checked against the
same command's JSON: loads in MW and energy in MWh as plain numbers, the unit in the
column's name, RFC 4180 CRLF line ends, times RFC 3339, booleans true/false.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gridhook.cli import main
from gridhook.store import open_store
from tests.report_app import power_report_client
from tests.report_scenario import seed_day

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
RANGE = ["--since", "2026-01-10T00:00:00Z", "--until", "2026-01-11T00:00:00Z"]
NUMBER = re.compile(r"-?\d+(\.\d+)?")  # no unit, no exponent, no thousands separator
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('csv') / 'events.db'}"
    store = open_store(url)
    try:
        seed_day(store, ORIGIN)
    finally:
        store.close()
    return url


def gridhook(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def read_csv(text: str) -> list[dict[str, str]]:
    """The rows, after checking what every gridhook CSV shares."""
    assert text.endswith("\r\n") and text.count("\n") == text.count("\r\n"), "CRLF, RFC 4180"
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows, "the scenario gives every table rows"
    for column in rows[0]:
        assert not re.search(r"(^|_)(w|wh|kw|kwh)(_|$)", column), f"{column}: watts in a CSV"
        numeric = re.search(r"(^|_)(mw|mwh|seconds)(_|$)", column)
        timed = column.endswith(("_at", "_start", "_end"))
        for row in rows:
            cell = row[column]
            if numeric and cell:
                assert NUMBER.fullmatch(cell), f"{column}={cell!r} is not a plain number"
            if timed and cell:
                assert TIME.fullmatch(cell), f"{column}={cell!r} is not RFC 3339 UTC"
            if column in ("compliant", "compliant_dps", "open"):
                assert cell in ("", "true", "false")
    return rows


def mw(watts: float | None) -> Any:
    return "" if watts is None else pytest.approx(watts / 1e6, abs=5e-7)


def number(cell: str) -> float | str:
    return cell if cell == "" else float(cell)


def test_events(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["events", "--store", store_url, *RANGE, "--limit", "1000"]
    rows = read_csv(gridhook(capsys, *argv, "--format", "csv"))
    listed = {e["event_id"]: e for e in json.loads(gridhook(capsys, *argv, "--format", "json"))}
    assert len(rows) == len(listed) == 17
    for row in rows:
        event = listed[row["event_id"]]
        assert row["received_at"] == event["received_at"]
        assert number(row["target_mw"]) == mw(event["target_w"])
        assert number(row["prev_target_mw"]) == mw(event["prev_target_w"])
        assert number(row["calculated_mw"]) == mw(event["calculated_w"])
        # and against the payload as DPS sent it (the seed sends MW)
        assert number(row["calculated_mw"]) == pytest.approx(
            event["payload"]["calculated_load"]["value"]
        )
        compliant = event["compliant"]
        assert row["compliant"] == ("" if compliant is None else str(compliant).lower())


def test_samples(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["samples", "--store", store_url, *RANGE]
    rows = read_csv(gridhook(capsys, *argv, "--format", "csv"))
    listed = {s["sample_id"]: s for s in json.loads(gridhook(capsys, *argv, "--format", "json"))}
    assert len(rows) == len(listed) == 288
    for row in rows:
        sample = listed[row["sample_id"]]
        assert row["sampled_at"] == sample["sampled_at"]
        assert number(row["calculated_mw"]) == mw(sample["calculated_w"])
        assert number(row["target_mw"]) == mw(sample["target_w"])


def assert_episode_matches(
    row: dict[str, str], episode: dict[str, Any], names: dict[str, str]
) -> None:
    """``names``: the CSV column of each JSON figure (episodes and report name them apart)."""
    assert number(row[names["target_w"]]) == mw(episode["target_w"])
    assert number(row[names["prev_target_w"]]) == mw(episode["prev_target_w"])
    assert number(row[names["requested_reduction_w"]]) == mw(episode["requested_reduction_w"])
    energy = episode["requested_energy_wh"]
    assert number(row[names["requested_energy_wh"]]) == mw(energy)  # Wh -> MWh, as W -> MW
    for figure in ("ramp_down_seconds", "constrained_seconds", "ramp_up_seconds"):
        expected = episode[figure]
        assert number(row[figure]) == (
            "" if expected is None else pytest.approx(expected, abs=5e-4)
        )


def test_episodes(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["episodes", "--store", store_url, *RANGE]
    rows = read_csv(gridhook(capsys, *argv, "--format", "csv"))
    listed = {e["episode_id"]: e for e in json.loads(gridhook(capsys, *argv, "--format", "json"))}
    assert len(rows) == len(listed) == 5
    names = {
        "target_w": "target_mw",
        "prev_target_w": "prev_target_mw",
        "requested_reduction_w": "requested_reduction_mw",
        "requested_energy_wh": "requested_energy_mwh",
    }
    for row in rows:
        assert_episode_matches(row, listed[row["episode_id"]], names)


REPORT_NAMES = {
    "target_w": "target_mw_requested",
    "prev_target_w": "prev_target_mw_requested",
    "requested_reduction_w": "reduction_mw_requested",
    "requested_energy_wh": "energy_mwh_requested",
}


def assert_report_csv_matches_json(text: str, data: dict[str, Any]) -> None:
    rows = read_csv(text)
    listed = {e["episode_id"]: e for f in data["feeds"] for e in f["episodes"]}
    assert len(rows) == len(listed) == 5
    for row in rows:
        episode = listed[row["episode_id"]]
        assert_episode_matches(row, episode, REPORT_NAMES)
        load = episode["load_w"]
        assert number(row["load_at_end_ramp_down_mw_dps"]) == mw(load.get("end_ramp_down"))


def test_report_from_the_cli(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["report", "--store", store_url, *RANGE]
    text = gridhook(capsys, *argv, "--format", "csv")
    assert_report_csv_matches_json(text, json.loads(gridhook(capsys, *argv, "--format", "json")))


@pytest.fixture
def client(store_url: str) -> Iterator[Any]:
    with power_report_client(store_url) as test_client:
        yield test_client


def test_report_over_http(client: Any) -> None:
    query = {"since": "2026-01-10T00:00:00Z", "until": "2026-01-11T00:00:00Z"}
    response = client.get("/report", query_string={**query, "format": "csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    data = client.get("/report", query_string={**query, "format": "json"}).get_json()
    assert_report_csv_matches_json(text, data)
