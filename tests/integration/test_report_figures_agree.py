"""The figures a utility is shown agree wherever they are shown — the CLI's episode table,
JSON and CSV, the report as JSON, CSV and HTML over HTTP (the real functions-framework app,
in-process), the control room and ``gridhook state`` — and count only what lies inside the
range asked for (issue 15 items 1, 2 and 12)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest

from gridhook import report_http
from gridhook.cli import main
from gridhook.events import normalise
from gridhook.report import build_report
from gridhook.settings import get_settings
from gridhook.store import EventStore, open_store
from tests.harness import FUNCTIONS
from tests.report_scenario import seed_day

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)  # in the past: "now" is the real clock here
# 07:00-09:00 cuts two episodes: main_power_feed held 06:06-07:36 at 3.5 MW below its
# previous target, the other feed 08:04-10:04 at 2 MW below.
CUT = ("2026-01-10T07:00:00Z", "2026-01-10T09:00:00Z")
CUT_HOURS = 36 / 60 + 56 / 60
CUT_MWH = 3.5 * 36 / 60 + 2 * 56 / 60
FUTURE = ("2098-12-01T00:00:00Z", "2099-01-01T00:00:00Z")
HELD_FEED = "held-feed"  # a curtailment at 01:00, then one held since 22:00, still open
ZERO_FEED = "zero-feed"  # its last target is zero (the default), its load not reported


def _event(
    store: EventStore,
    feed: str,
    event: str,
    at: datetime,
    corr: str,
    *,
    target: float,
    prev: float,
    calculated: float | None,
) -> None:
    payload: dict[str, Any] = {
        "event": event,
        "feed_tag": feed,
        "start_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": None,
        "strategy": "best_effort",
        "target_load": {"value": target, "unit": "mw"},
        "prev_target_load": {"value": prev, "unit": "mw"},
        "calculated_load": None if calculated is None else {"value": calculated, "unit": "mw"},
        "compliant": True,
        "correlation_id": corr,
    }
    store.add_event(normalise(payload, at))


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('agree') / 'events.db'}"
    store = open_store(url)
    try:
        seed_day(store, ORIGIN)
        for hour, corr, events in (
            (1, "early", ("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up")),
            (22, "late", ("start_ramp_down", "end_ramp_down")),
        ):
            for minute, event in enumerate(events):
                down = event.endswith("down")
                _event(
                    store,
                    HELD_FEED,
                    event,
                    ORIGIN + timedelta(hours=hour, minutes=10 * minute),
                    corr,
                    target=7.0 if down else 9.0,
                    prev=9.0 if down else 7.0,
                    calculated=7.0,
                )
        at = ORIGIN + timedelta(hours=23)
        _event(store, ZERO_FEED, "start_ramp_down", at, "z", target=6, prev=0, calculated=8)
        _event(
            store,
            ZERO_FEED,
            "end_ramp_down",
            at + timedelta(minutes=5),
            "z",
            target=6,
            prev=0,
            calculated=6,
        )
        _event(
            store,
            ZERO_FEED,
            "start_ramp_up",
            at + timedelta(minutes=30),
            "z",
            target=0,
            prev=6,
            calculated=None,
        )
    finally:
        store.close()
    return url


@pytest.fixture(scope="module")
def app(store_url: str) -> Iterator[flask.Flask]:
    """power_report as deployed (main.py under functions-framework), in-process."""
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDHOOK_STORE", store_url)
        for name in ("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_WEBHOOK_TOKENS_FILE"):
            mp.delenv(name, raising=False)
        mp.setenv("GRIDHOOK_RAMP_DEADLINE_SECONDS", "1800")
        # Settings and the service are process-wide singletons: start from this env.
        get_settings.cache_clear()
        mp.setattr(report_http, "_service", None)
        mp.setattr(report_http, "_started", False)
        yield create_app("power_report", str(FUNCTIONS / "main.py"))
        if report_http._service is not None:
            report_http._service.store().close()
    get_settings.cache_clear()


def get(app: flask.Flask, path: str, **params: str) -> Any:
    response = app.test_client().get(path, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_cut_range_counts_only_its_part_in_every_view(
    app: flask.Flask, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    since, until = CUT
    data = get(app, "/report", since=since, until=until, format="json").get_json()
    overall = data["overall"]
    assert overall["hours_constrained"] == pytest.approx(CUT_HOURS)
    assert overall["requested_mwh"] == pytest.approx(CUT_MWH)
    assert (overall["judged"], overall["ramp_down"]["count"]) == (1, 1)  # only 08:04's ended
    episodes = [e for f in data["feeds"] for e in f["episodes"]]
    assert sorted(e["correlation_id"] for e in episodes) == ["dr-0600", "dr-0800"]
    # Rows keep the whole episode, and carry its share of the range.
    whole = {e["correlation_id"]: e["requested_energy_wh"] for e in episodes}
    assert whole == {"dr-0600": pytest.approx(3.5e6 * 1.5), "dr-0800": pytest.approx(2e6 * 2)}
    share = sum(e["in_range"]["requested_energy_wh"] for e in episodes)
    assert share / 1e6 == pytest.approx(CUT_MWH)

    # The report's CSV: whole figures and the share, summing to the JSON's totals.
    text = get(app, "/report", since=since, until=until, format="csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(float(r["energy_mwh_requested_in_range"]) for r in rows) == pytest.approx(
        CUT_MWH, abs=1e-5
    )
    assert sum(float(r["constrained_seconds_in_range"]) for r in rows) == pytest.approx(
        CUT_HOURS * 3600
    )

    # The HTML: the overview's totals as a person reads them, and each row's share.
    page = _visible(get(app, "/report", since=since, until=until).get_data(as_text=True))
    assert f"{CUT_HOURS:.1f} h" in page and f"{CUT_MWH:.2f} MWh" in page
    assert "36 min in range" in page and "56 min in range" in page
    assert "2.10 MWh in range" in page and "1.87 MWh in range" in page
    assert "Totals" in page and "count only the part of each episode inside the range" in page

    # The CLI: the same report as JSON; the episodes as JSON, CSV and a table.
    assert (
        json.loads(
            cli(
                capsys,
                "report",
                "--store",
                store_url,
                "--since",
                since,
                "--until",
                until,
                "--format",
                "json",
            )
        )["overall"]
        == overall
    )
    listed = json.loads(
        cli(
            capsys,
            "episodes",
            "--store",
            store_url,
            "--since",
            since,
            "--until",
            until,
            "--format",
            "json",
        )
    )
    assert sorted(e["correlation_id"] for e in listed) == ["dr-0600", "dr-0800"]
    assert sum(e["in_range"]["requested_energy_wh"] for e in listed) == pytest.approx(share)
    text = cli(
        capsys,
        "episodes",
        "--store",
        store_url,
        "--since",
        since,
        "--until",
        until,
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(float(r["requested_energy_mwh_in_range"]) * 1e6 for r in rows) == pytest.approx(
        share
    )
    table = cli(capsys, "episodes", "--store", store_url, "--since", since, "--until", until)
    header, *lines = table.splitlines()
    assert "HELD IN RANGE" in header and "MWh IN RANGE" in header
    by_corr = {line.split()[1]: line for line in lines}
    assert "36 min" in by_corr["dr-0600"] and "2.10" in by_corr["dr-0600"]
    assert "56 min" in by_corr["dr-0800"] and "1.87" in by_corr["dr-0800"]
    # /episodes over HTTP, the same shares.
    body = get(app, "/episodes", since=since, until=until).get_json()
    assert [e["in_range"] for e in body["episodes"]] == [e["in_range"] for e in listed]


def test_adjacent_ranges_add_up_in_the_json(app: flask.Flask) -> None:
    def totals(since: str, until: str) -> tuple[float, float]:
        data = get(app, "/report", since=since, until=until, format="json").get_json()
        return data["overall"]["hours_constrained"], data["overall"]["requested_mwh"]

    morning = totals("2026-01-10T04:00:00Z", "2026-01-10T08:00:00Z")
    rest = totals("2026-01-10T08:00:00Z", "2026-01-11T00:00:00Z")
    day = totals("2026-01-10T04:00:00Z", "2026-01-11T00:00:00Z")
    assert morning[0] + rest[0] == pytest.approx(day[0])
    assert morning[1] + rest[1] == pytest.approx(day[1])


def test_a_range_in_the_future_lists_nothing(
    app: flask.Flask, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The held and the stalled episodes are open: they go on up to now, never beyond."""
    since, until = FUTURE
    assert get(app, "/episodes", since=since, until=until).get_json()["count"] == 0
    data = get(app, "/report", since=since, until=until, format="json").get_json()
    assert data["overall"]["episodes"] == 0 and data["overall"]["requested_mwh"] == 0
    assert "Nothing to report" in get(app, "/report", since=since, until=until).get_data(
        as_text=True
    )
    assert (
        cli(
            capsys,
            "episodes",
            "--store",
            store_url,
            "--since",
            since,
            "--until",
            until,
            "--format",
            "json",
        )
        == "[]\n"
    )
    # Both are open, and listed over any range up to now.
    now = get(app, "/episodes", since="2026-01-10T00:00:00Z", until="1s").get_json()
    open_ones = {e["correlation_id"]: e["status"] for e in now["episodes"] if e["open"]}
    assert open_ones == {"dr-2000": "stalled", "late": "in_progress", "z": "stalled"}


def test_a_zero_target_is_the_default_and_a_missing_load_unknown(
    app: flask.Flask, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page = get(app, "/").get_data(as_text=True)
    card = page[page.index(f'data-feed-tag="{ZERO_FEED}"') :]
    card = _visible(card[: card.index("</article>")])
    assert "Target requested default" in card and "0 MW" not in card
    assert "Load DPS unknown at the last webhook" in card
    (row,) = [
        line
        for line in cli(capsys, "state", "--store", store_url).splitlines()
        if line.startswith(ZERO_FEED)
    ]
    assert row.split()[4:6] == ["default", "unknown"], row
    assert " 0 MW" not in row


def test_the_chart_draws_no_target_before_a_feeds_first_event_ever(store_url: str) -> None:
    """Before 01:00 nothing was known of the held feed; from 21:00 its history was."""
    store = open_store(store_url)
    now = datetime.now(UTC)
    try:

        def steps(since: datetime, until: datetime) -> list[tuple[datetime, float | None]]:
            report = build_report(
                store,
                since=since,
                until=until,
                feed_tag=HELD_FEED,
                now=now,
                ramp_deadline=timedelta(minutes=30),
            )
            return list(report.feeds[0].timeline.target_steps)

        first = steps(ORIGIN, ORIGIN + timedelta(hours=3))
        assert first[0] == (ORIGIN + timedelta(hours=1), 7e6)  # not 9 MW from midnight
        later = steps(ORIGIN + timedelta(hours=21), ORIGIN + timedelta(hours=23))
        assert later[0] == (ORIGIN + timedelta(hours=21), 9e6)  # the previous target, known
    finally:
        store.close()
