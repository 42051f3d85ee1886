"""``gridhook settlement`` / ``gridhook baseline`` (the real CLI entry point, in this process)
and power_report's ``/settlement`` (the real functions-framework app, in-process), on SQLite
and Firestore, over tests/settlement_scenario.py: every format parses back to the figures
``settle_range`` gives, the meter-fed feed says it used meter data, a feed without history
shows its status and no figure, and every bad parameter is one clear error."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhook import clock
from gridhook.cli import main
from gridhook.intervals.settle import SettlementRun, settle_range
from gridhook.report.settlement import CSV_COLUMNS
from gridhook.sites import Site
from gridhook.store import open_store
from tests.harness import FunctionApp, function_app
from tests.settlement_scenario import (
    CURTAILMENTS,
    NOW,
    RANGE_SINCE,
    RANGE_UNTIL,
    TIMEZONE,
    settlement_store_url,
)

__all__ = ["settlement_store_url"]  # the fixture, used by name

SINCE = RANGE_SINCE.strftime("%Y-%m-%dT%H:%M:%SZ")
UNTIL = RANGE_UNTIL.strftime("%Y-%m-%dT%H:%M:%SZ")
RANGE = ("--since", SINCE, "--until", UNTIL)


def dev_clock() -> str:
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"1@{NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a user's shell would hold: the site's zone and the development clock at the
    scenario's now; gridhook's clock put back afterwards."""
    monkeypatch.setenv("GRIDHOOK_TIMEZONE", TIMEZONE)
    monkeypatch.setenv("GRIDHOOK_DEV_CLOCK", dev_clock())
    for name in ("GRIDHOOK_SITES", "GRIDHOOK_SITES_FILE", "GRIDHOOK_BASELINE_METHOD"):
        monkeypatch.delenv(name, raising=False)
    yield
    clock.configure(None)


def gridhook(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def expected(settlement_store_url: str) -> SettlementRun:
    """The settlement as the glue computes it, straight from the store."""
    store = open_store(settlement_store_url, timeout_seconds=60.0)
    try:
        return settle_range(
            store,
            [Site(name="default", timezone=TIMEZONE)],
            since=RANGE_SINCE,
            until=RANGE_UNTIL,
            now=NOW,
            method="caiso-10-in-10",
            ramp_deadline=timedelta(seconds=1800),
            min_coverage=0.8,
        )
    finally:
        store.close()


def _by_feed(rows: list[dict[str, str]], kind: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row["row"] == kind:
            found.setdefault(row["feed"], []).append(row)
    return found


def check_json(body: dict[str, Any], expected: SettlementRun) -> None:
    assert body["method"] == "caiso-10-in-10" and body["source"] == "auto"
    assert body["totals"]["delivered_mwh"] == pytest.approx(expected.totals.delivered_mwh)
    assert body["totals"]["needed_mwh"] == pytest.approx(expected.totals.needed_mwh)
    (site,) = body["sites"]
    assert site["timezone"] == TIMEZONE
    feeds = {f["feed"]: f for f in site["feeds"]}
    assert sorted(feeds) == ["aux", "main", "young"]
    starts = sorted(s["event_start"] for f in feeds.values() for s in f["settlements"])
    assert starts == sorted(c.start.strftime("%Y-%m-%dT%H:%M:%SZ") for c in CURTAILMENTS)
    (aux,) = feeds["aux"]["settlements"]
    assert aux["source"] == "meter" and feeds["aux"]["load"]["source"] == "meter"
    assert feeds["aux"]["shadow"][0]["source"] == "samples"
    assert aux["event_start_local"] == "2026-05-13T14:00:00-04:00"
    (young,) = feeds["young"]["settlements"]
    assert young["status"] == "insufficient_history" and young["reason"]
    assert young["delivered_mwh"] is None and young["performance_factor"] is None
    assert young["in_range"] is None
    for f in feeds.values():
        for s in f["settlements"]:
            assert s["method"] == "caiso-10-in-10"
            assert s["in_range"] is None or s["in_range"]["episodes"] == 1


def check_csv(text: str, expected: SettlementRun) -> None:
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    episodes = _by_feed(rows, "episode")
    assert {f: len(r) for f, r in episodes.items()} == {"aux": 1, "main": 3, "young": 1}
    (aux,) = episodes["aux"]
    assert aux["source"] == "meter" and aux["shadow_source"] == "samples"
    (young,) = episodes["young"]
    assert young["status"] == "insufficient_history" and young["reason"]
    assert young["delivered_mwh"] == "" and young["performance_factor"] == ""
    assert young["delivered_mwh_in_range"] == "" and young["needed_mwh_in_range"] == ""
    totals = _by_feed(rows, "feed")
    assert totals["young"][0]["delivered_mwh_in_range"] == ""  # no figure, not 0
    (fleet,) = [r for r in rows if r["row"] == "fleet"]
    assert rows[-1] is fleet
    assert float(fleet["delivered_mwh_in_range"]) == pytest.approx(
        expected.totals.delivered_mwh, abs=1e-6
    )
    assert fleet["episodes"] == "5"
    for row in episodes["main"]:
        assert float(row["delivered_mwh"]) == pytest.approx(
            float(row["delivered_mwh_in_range"]), abs=1e-6
        )
        assert row["event_start"].endswith("Z") and row["event_start_local"].endswith("-04:00")


def check_html(html: str, expected: SettlementRun) -> None:
    assert "How to read this settlement" in html
    assert "count only the intervals inside the range" in html.replace("Count", "count")
    for s in expected.settlements:
        assert f'data-episode-id="{s.episode_id}"' in html
    assert 'data-status="insufficient_history"' in html
    assert "insufficient history" in html and "no figures" in html
    assert "caiso-10-in-10" in html and ">meter<" in html


# -- the CLI ---------------------------------------------------------------------------------


def test_settlement_json_parses_back_to_the_stores_figures(
    cli_env: None, settlement_store_url: str, expected: SettlementRun, capsys: Any
) -> None:
    code, out, err = gridhook(
        capsys, "settlement", "--store", settlement_store_url, *RANGE, "--format", "json"
    )
    assert code == 0, err
    check_json(json.loads(out), expected)


def test_settlement_csv_parses_with_the_csv_module(
    cli_env: None, settlement_store_url: str, expected: SettlementRun, capsys: Any
) -> None:
    code, out, err = gridhook(
        capsys, "settlement", "--store", settlement_store_url, *RANGE, "--format", "CSV"
    )
    assert code == 0, err
    check_csv(out, expected)


def test_settlement_html_and_table(
    cli_env: None,
    settlement_store_url: str,
    expected: SettlementRun,
    capsys: Any,
    tmp_path: Path,
) -> None:
    page = tmp_path / "settlement.html"
    args = ("settlement", "--store", settlement_store_url, *RANGE)
    code, _, err = gridhook(capsys, *args, "--format", "html", "--output", str(page))
    assert code == 0 and "5 episode(s) settled" in err
    check_html(page.read_text(encoding="utf-8"), expected)
    code, out, _ = gridhook(capsys, *args)
    assert code == 0
    young = next(line for line in out.splitlines() if line.startswith("young total"))
    assert "insufficient_history" in young and "no figures" in young
    assert "note: default/young" in out and "eligible" in out
    assert "meter" in next(line for line in out.splitlines() if line.startswith("aux "))


def test_one_feed_and_another_method(cli_env: None, settlement_store_url: str, capsys: Any) -> None:
    code, out, err = gridhook(
        capsys,
        "settlement",
        "--store",
        settlement_store_url,
        *RANGE,
        "--feed",
        "main",
        "--method",
        "PJM-high-4-of-5",
        "--source",
        "samples",
        "--format",
        "json",
    )
    assert code == 0, err
    body = json.loads(out)
    assert body["method"] == "pjm-high-4-of-5"
    (feed,) = body["sites"][0]["feeds"]
    assert feed["feed"] == "main" and len(feed["settlements"]) == 3
    assert {s["method"] for s in feed["settlements"]} == {"pjm-high-4-of-5"}


def test_baseline_in_every_format(cli_env: None, settlement_store_url: str, capsys: Any) -> None:
    c = CURTAILMENTS[1]
    args = (
        "baseline",
        "--store",
        settlement_store_url,
        "--feed",
        c.feed,
        "--event-start",
        c.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--event-end",
        c.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    code, out, err = gridhook(capsys, *args, "--format", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "complete" and body["method"] == "caiso-10-in-10"
    assert body["target_w"] == c.target_w and len(body["intervals"]) == 2
    assert {"baseline_w", "actual_w", "delivered_w", "needed_w"} <= set(body["intervals"][0])
    assert len(body["selected_days"]) >= 5 and body["adjustment"]["kind"] == "factor"
    reasons = {e["reason"] for e in body["excluded_days"]}
    assert {"event", "day_type"} <= reasons
    code, out, _ = gridhook(capsys, *args, "--format", "csv", "--interval", "15m")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(rows) == 8 and rows[0]["interval_start"] == "2026-05-13T18:00:00Z"
    assert float(rows[0]["actual_mw"]) == pytest.approx(7.0)
    assert float(rows[0]["delivered_mw"]) == pytest.approx(
        float(rows[0]["baseline_mw"]) - 7.0, abs=2e-6
    )
    code, out, _ = gridhook(capsys, *args, "--method", "meter-before")
    assert code == 0
    assert "selected days (0)" in out and "BASELINE MW" in out and "status complete" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("settlement", "--method", "guess"), "--method: 'guess' is not one of"),
        (("settlement", "--source", "both"), "--source: 'both' is not one of"),
        (("settlement", "--interval", "2h"), "--interval: '2h' is not one of"),
        (("settlement", "--format", "xml"), "--format: 'xml' is not one of"),
        (("settlement", "--since", "yesterday"), "--since: 'yesterday' is neither"),
        (("settlement", "--since", "1d", "--until", "2d"), "is not after since"),
        (("settlement", "--site", "nowhere"), "--site: unknown site 'nowhere'"),
        (("settlement", "--feed", ""), "--feed: is empty"),
        (("baseline", "--event-start", "1d", "--event-end", "2h"), "--feed"),
        (
            ("baseline", "--feed", "main", "--event-start", "1d", "--event-end", "2d"),
            "--event-end: 2d is not after --event-start",
        ),
        (
            ("baseline", "--feed", "main", "--event-start", "x", "--event-end", "1d"),
            "--event-start: 'x' is neither",
        ),
    ],
)
def test_bad_arguments_are_one_clear_line(
    cli_env: None,
    settlement_store_url: str,
    capsys: Any,
    args: tuple[str, ...],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as raised:
        code = main([*args, "--store", settlement_store_url])
        raise SystemExit(code)
    out, err = capsys.readouterr()
    assert raised.value.code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# -- power_report ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(settlement_store_url: str) -> Iterator[FunctionApp]:
    env = {
        "GRIDHOOK_STORE": settlement_store_url,
        "GRIDHOOK_TIMEZONE": TIMEZONE,
        "GRIDHOOK_DEV_CLOCK": dev_clock(),
        "GRIDHOOK_WEBHOOK_TOKENS": "",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": "",
    }
    if "FIRESTORE_EMULATOR_HOST" in os.environ:
        env["FIRESTORE_EMULATOR_HOST"] = os.environ["FIRESTORE_EMULATOR_HOST"]
    with function_app("power_report", env) as function:
        yield function


def test_http_settlement_in_every_format(app: FunctionApp, expected: SettlementRun) -> None:
    params = {"since": SINCE, "until": UNTIL}
    answer = app.get("/settlement", params={**params, "format": "json"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    check_json(answer.json(), expected)
    answer = app.get("/settlement", params={**params, "format": "csv"})
    assert answer.status_code == 200 and "attachment" in answer.headers["Content-Disposition"]
    check_csv(answer.text, expected)
    answer = app.get("/settlement", params=params)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    check_html(answer.text, expected)
    assert f'href="report?since={SINCE}&amp;until={UNTIL}"' in answer.text


def test_the_report_and_the_control_room_link_to_the_settlement(app: FunctionApp) -> None:
    report = app.get("/report", params={"since": SINCE, "until": UNTIL})
    # The report's method and source go along (the report settled with them).
    link = f"settlement?since={SINCE}&amp;until={UNTIL}&amp;method=caiso-10-in-10&amp;source=auto"
    assert f'href="{link}"' in report.text
    assert 'href="settlement?since=30d"' in app.get("/").text


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("method=guess", "method"),
        ("source=both", "source"),
        ("interval=2h", "interval"),
        ("format=table", "format"),
        ("since=yesterday", "since"),
        ("since=1d&until=2d", "until"),
        ("site=nowhere", "site"),
        ("feed=", "feed"),
        ("format=json&format=csv", "format"),
        ("colour=red", "colour"),
        ("since=9999-01-01T00:00:00Z", "since"),
        ("until=%00", "until"),
    ],
)
def test_http_bad_parameters_are_400_naming_them(
    app: FunctionApp, query: str, parameter: str
) -> None:
    answer = app.get(f"/settlement?{query}")
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "bad_parameter" and error["details"][0]["parameter"] == parameter


def test_http_without_a_store_is_503(tmp_path: Path) -> None:
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/nothing-here.db",
        "GRIDHOOK_WEBHOOK_TOKENS": "",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": "",
    }
    with function_app("power_report", env) as srv:
        answer = srv.get("/settlement")
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "store_not_found"
        assert not (tmp_path / "nothing-here.db").exists()
