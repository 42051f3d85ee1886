"""Delivered against needed in the report and the control rooms, through power_report as
the real functions-framework app (in-process) on SQLite and Firestore (the emulator):

- where a feed has history, each curtailment has its baseline (the figures computed by
  hand below, not by the code under test); where it has too little, the status in words
  (never 0) in HTML, JSON and CSV;
- the report's totals over adjacent ranges add up to the union's, delivered and needed;
- ``method=`` and ``source=`` pick the baseline method and the load, a bad one is a 400;
- while a feed is constrained, its site page and the fleet page say "delivering X MW
  against the baseline (method)", or why there is no such figure.

The store is tests/settlement_scenario.py's three weeks of a New York site.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridhook.report.fleet import build_fleet_report
from gridhook.report.settled import DeliveryOptions
from gridhook.sites import Site
from gridhook.store import EventStore, LoadSample, RollupRecord, open_store
from tests.harness import FunctionApp, function_app
from tests.settlement_scenario import (
    CURTAILMENTS,
    NOW,
    RANGE_SINCE,
    RANGE_UNTIL,
    TIMEZONE,
    TZ,
    seed_settlement,
    settlement_store_url,
)

__all__ = ["settlement_store_url"]  # the fixture, used by name

SITE = Site(name="default", timezone=TIMEZONE)
DEADLINE = timedelta(minutes=30)
METHOD = "caiso-10-in-10"


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(moment: datetime) -> str:
    """gridhook's clock at ``moment``, all but still."""
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"0.000001@{_rfc3339(moment)}@{real}"


def _env(url: str, moment: datetime, **more: str) -> dict[str, str]:
    env = {
        "GRIDHOOK_STORE": url,
        "GRIDHOOK_TIMEZONE": TIMEZONE,
        "GRIDHOOK_DEV_CLOCK": _clock(moment),
        "GRIDHOOK_RAMP_DEADLINE_SECONDS": "1800",
        **more,
    }
    if url.startswith("firestore://"):
        import os

        env["FIRESTORE_EMULATOR_HOST"] = os.environ["FIRESTORE_EMULATOR_HOST"]
    return env


def _weekday_baseline_w(feed_base_w: float, local_hour: int) -> float:
    """The scenario's weekday load at a local hour (tests/settlement_scenario.py's shape):
    what a 10-in-10 baseline is on a weekday when every past weekday had that shape and the
    day-of hours before the event had it too (so its factor is 1)."""
    return feed_base_w * (1.0 + 0.05 * math.sin((local_hour - 8) / 24 * 2 * math.pi))


def _expected_mwh(feed_base_w: float, curtailment: Any) -> float:
    """Delivered (= needed: the feed held exactly its target) over the curtailment's whole
    hours, by hand: the sum of (baseline - target) times 1 h."""
    local = curtailment.start.astimezone(TZ)
    return (
        sum(
            _weekday_baseline_w(feed_base_w, local.hour + k) - curtailment.target_w
            for k in range(curtailment.hours)
        )
        / 1e6
    )


@pytest.fixture(scope="module")
def app(settlement_store_url: str) -> Iterator[FunctionApp]:
    with function_app("power_report", _env(settlement_store_url, NOW)) as function:
        yield function


def _report(app: FunctionApp, fmt: str, **params: str) -> Any:
    response = app.get(
        "/report",
        params={
            "since": _rfc3339(RANGE_SINCE),
            "until": _rfc3339(RANGE_UNTIL),
            **params,
            "format": fmt,
        },
    )
    assert response.status_code == 200, response.text
    return response


def _feed(body: dict[str, Any], tag: str) -> dict[str, Any]:
    return next(f for f in body["feeds"] if f["feed_tag"] == tag)


def test_a_baseline_where_history_suffices_and_the_status_in_words_where_not(
    app: FunctionApp,
) -> None:
    body = _report(app, "json").json()
    assert body["delivery"]["method"] == METHOD and body["delivery"]["source"] == "auto"

    main = _feed(body, "main")
    assert main["delivery"]["source"] == "samples"
    episodes = main["episodes"]
    assert len(episodes) == 3
    for episode, curtailment in zip(
        episodes, [c for c in CURTAILMENTS if c.feed == "main"], strict=True
    ):
        delivery = episode["delivery"]
        settlement = delivery["settlement"]
        assert delivery["status"] == "complete" and delivery["method"] == METHOD
        # The baseline over each event interval is the weekday shape at that hour.
        local_hours = [
            datetime.fromisoformat(i["interval_start"]).astimezone(TZ).hour
            for i in settlement["intervals"]
        ]
        assert local_hours == [14, 15]
        for row, hour in zip(settlement["intervals"], local_hours, strict=True):
            assert row["baseline_w"] == pytest.approx(_weekday_baseline_w(10e6, hour), rel=1e-6)
        expected = _expected_mwh(10e6, curtailment)
        assert settlement["delivered_mwh"] == pytest.approx(expected, rel=1e-6)
        assert settlement["needed_mwh"] == pytest.approx(expected, rel=1e-6)
        assert delivery["in_range"]["delivered_mwh"] == pytest.approx(expected, rel=1e-6)
        assert settlement["source"] == "samples"

    # The meter wins where a feed has meter data (auto), and says so.
    aux = _feed(body, "aux")
    assert aux["delivery"]["source"] == "meter"
    assert aux["episodes"][0]["delivery"]["settlement"]["source"] == "meter"

    # Two days of history: no baseline, the status and its reason, no figure (not 0).
    young = _feed(body, "young")
    (episode,) = young["episodes"]
    assert episode["delivery"]["status"] == "insufficient_history"
    assert "eligible" in episode["delivery"]["reason"]
    assert episode["delivery"]["settlement"]["delivered_mwh"] is None
    assert episode["delivery"]["in_range"] is None
    totals = young["delivery"]["totals"]
    assert totals["delivered_mwh"] is None and totals["needed_mwh"] is None
    assert totals["statuses"] == {"insufficient_history": 1} and totals["with_figures"] == 0

    rows = list(csv.DictReader(io.StringIO(_report(app, "csv").text)))
    by_feed = {r["feed_tag"]: r for r in rows}
    assert by_feed["young"]["settlement_status"] == "insufficient_history"
    assert by_feed["young"]["delivered_mwh"] == by_feed["young"]["needed_mwh"] == ""
    assert by_feed["young"]["settlement_reason"] == episode["delivery"]["reason"]
    assert by_feed["young"]["baseline_method"] == METHOD
    main_rows = [r for r in rows if r["feed_tag"] == "main"]
    assert [float(r["delivered_mwh"]) for r in main_rows] == pytest.approx(
        [e["delivery"]["settlement"]["delivered_mwh"] for e in episodes], abs=1e-6
    )
    assert {r["settlement_source"] for r in main_rows} == {"samples"}
    assert by_feed["aux"]["settlement_source"] == "meter"

    html = _report(app, "html").text
    young_section = html[html.index('data-feed-tag="young"') :]
    young_section = young_section[: young_section.index("</section>")]
    assert "insufficient history" in young_section
    assert "0.00 MWh" not in young_section.split("Episodes (1)")[1]  # no 0 in its row
    assert f"baseline ({METHOD})" in html  # the chart's legend names the method
    assert html.count('id="feed-') >= 3


def _totals(store: EventStore, since: datetime, until: datetime) -> dict[str, float]:
    report = build_fleet_report(
        store,
        [SITE],
        since=since,
        until=until,
        now=NOW,
        ramp_deadline=DEADLINE,
        delivery=DeliveryOptions(METHOD),
    )
    found: dict[str, float] = {}
    for feed in report.feeds:
        assert feed.delivery is not None
        totals = feed.delivery.totals.totals
        found[f"{feed.feed_tag} delivered"] = totals.delivered_mwh
        found[f"{feed.feed_tag} needed"] = totals.needed_mwh
    overall = report.delivery_totals
    assert overall is not None
    found["all delivered"] = overall.totals.delivered_mwh
    found["all needed"] = overall.totals.needed_mwh
    return found


@pytest.mark.parametrize(
    "cuts",
    [
        # Inside Wednesday's main (14:00-16:00) and aux (14:00-15:00) curtailments, at
        # 14:30 and 15:20 local: intervals split between the parts.
        (datetime(2026, 5, 13, 18, 30, tzinfo=UTC), datetime(2026, 5, 13, 19, 20, tzinfo=UTC)),
        # Between days.
        (datetime(2026, 5, 13, 4, tzinfo=UTC),),
    ],
)
def test_report_totals_over_adjacent_ranges_add_up_to_the_union(
    settlement_store_url: str, cuts: tuple[datetime, ...]
) -> None:
    store = open_store(settlement_store_url, timeout_seconds=60.0)
    try:
        whole = _totals(store, RANGE_SINCE, RANGE_UNTIL)
        edges = [RANGE_SINCE, *cuts, RANGE_UNTIL]
        parts = [_totals(store, a, b) for a, b in itertools.pairwise(edges)]
    finally:
        store.close()
    assert whole["all delivered"] > 20  # three main and one aux curtailment settled
    for key, value in whole.items():
        assert sum(p.get(key, 0.0) for p in parts) == pytest.approx(value, abs=1e-9), key
    # The cut through Wednesday's curtailments leaves a share on each side.
    if len(cuts) == 2:
        assert 0 < parts[1]["main delivered"] < whole["main delivered"]


def test_method_and_source_pick_the_baseline_and_the_load(app: FunctionApp) -> None:
    body = _report(app, "json", method="PJM-Same-Day", source="samples").json()
    assert body["delivery"]["method"] == "pjm-same-day"
    aux = _feed(body, "aux")
    assert aux["delivery"]["source"] == "samples"
    settlement = aux["episodes"][0]["delivery"]["settlement"]
    assert settlement["method"] == "pjm-same-day" and settlement["source"] == "samples"
    # Same day needs no past days: the young feed has a baseline with it.
    young = _feed(body, "young")["episodes"][0]["delivery"]
    assert young["status"] == "complete" and young["settlement"]["delivered_mwh"] > 0
    html = _report(app, "html", method="pjm-same-day").text
    assert "baseline (pjm-same-day)" in html

    for name, value in (("method", "10-in-10"), ("source", "metre")):
        response = app.get("/report", params={name: value})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["details"] == [{"parameter": name, "message": error["details"][0]["message"]}]
        assert repr(value) in error["message"]


# -- the control rooms, during Thursday's curtailments ------------------------------------

#: Thursday 14 May, 14:40 EDT: main (14:00-16:00) and young (14:00-15:00) are held.
DURING = datetime(2026, 5, 14, 18, 40, tzinfo=UTC)


class _Until:
    """A store that keeps only what had happened by ``moment``: events received and hours
    rolled up before it (the scenario writes its whole three weeks)."""

    def __init__(self, store: EventStore, moment: datetime) -> None:
        self._store = store
        self._moment = moment

    def add_event(self, event: Any) -> Any:
        if event.received_at < self._moment:
            return self._store.add_event(event)
        return None

    def add_rollups(self, rollups: list[RollupRecord]) -> int:
        done = [r for r in rollups if r.hour_start + timedelta(hours=1) <= self._moment]
        return self._store.add_rollups(done)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def during_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The scenario as it stood at DURING, with the open hour's raw samples (one a minute:
    the held feeds at their targets), in a store of each backend."""
    with pytest.MonkeyPatch.context() as env:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('during') / 'events.db'}"
        else:
            emulator = request.getfixturevalue("firestore_emulator")
            env.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
            url = f"firestore://during-{uuid.uuid4().hex[:12]}/gridhook"
        store = open_store(url, timeout_seconds=60.0)
        try:
            seed_settlement(_Until(store, DURING))  # type: ignore[arg-type]  # a store, cut
            hour = DURING.replace(minute=0)
            for minute in range(40):
                at = hour + timedelta(minutes=minute, seconds=7)
                for feed, watts in (("main", 7e6), ("young", 1.5e6), ("aux", 4.2e6)):
                    keep = at + timedelta(days=3650)
                    store.add_sample(LoadSample(feed, at, watts, None, None, keep))
        finally:
            store.close()
        yield url


def test_a_constrained_feed_says_what_it_delivers_against_the_baseline(during_url: str) -> None:
    # At the 14:15-14:30 interval, main's baseline is its weekday 14:00 load, 10.5 MW, and
    # it draws its 7 MW target: 3.5 MW delivered.
    with function_app("power_report", _env(during_url, DURING)) as site_app:
        page = site_app.get("/")
        assert page.status_code == 200, page.text
    main = _card(page.text, "main")
    assert "delivering 3.5 MW against the baseline (caiso-10-in-10)" in main
    assert "baseline 10.5 MW" in main and "load 7 MW" in main
    young = _card(page.text, "young")
    assert "no delivered figure against the baseline (caiso-10-in-10)" in young
    assert "eligible" in young  # the reason: too few past days
    assert "delivering" not in _card(page.text, "aux")  # not constrained now
    # The day's chart draws main's baseline over its event intervals.
    assert "baseline (caiso-10-in-10)" in page.text

    sites = json.dumps(
        {
            "sites": {
                name: {
                    "timezone": zone,
                    "nvgrid_host": f"dps.{name}.example.com:443",
                    "nvgrid_credentials_file": f"/secrets/{name}/credentials",
                    "webhook_tokens_file": f"/secrets/{name}/webhook-tokens",
                }
                for name, zone in (("default", TIMEZONE), ("ams2", "Europe/Amsterdam"))
            }
        }
    )
    with function_app("power_report", _env(during_url, DURING, GRIDHOOK_SITES=sites)) as fleet:
        page = fleet.get("/")
        assert page.status_code == 200, page.text
    row = _row(page.text, "main")
    assert "delivering 3.5 MW against the baseline (caiso-10-in-10)" in row
    assert "no delivered figure" in _row(page.text, "young")
    assert "delivering" not in _row(page.text, "aux")


def _card(html: str, feed: str) -> str:
    start = html.index('<article class="feed-card')
    start = html.index(f'data-feed-tag="{feed}"', start)
    return html[start : html.index("</article>", start)]


def _row(html: str, feed: str) -> str:
    start = html.index('<tr class="phase-', html.index('class="fleet-table"'))
    start = html.index(f'data-feed-tag="{feed}"', start)
    return html[start : html.index("</tr>", start)]


def test_a_site_whose_zone_cannot_carry_the_grid_still_gets_its_report(
    settlement_store_url: str,
) -> None:
    """Lord Howe moves its clocks by half an hour (on 5 April 2026, inside the baselines'
    look-back): no hourly grid fits, so nothing is settled — and the report and the site's
    page still answer, saying why, instead of failing."""
    env = _env(settlement_store_url, NOW, GRIDHOOK_TIMEZONE="Australia/Lord_Howe")
    with function_app("power_report", env) as lord_howe:
        body = lord_howe.get(
            "/report",
            params={
                "since": _rfc3339(RANGE_SINCE),
                "until": _rfc3339(RANGE_UNTIL),
                "format": "json",
            },
        )
        html = lord_howe.get(
            "/report", params={"since": _rfc3339(RANGE_SINCE), "until": _rfc3339(RANGE_UNTIL)}
        )
        page = lord_howe.get("/")
    assert body.status_code == html.status_code == page.status_code == 200
    main = _feed(body.json(), "main")
    assert "Lord_Howe" in main["delivery"]["unavailable"]
    assert all(e["delivery"]["status"] is None for e in main["episodes"])
    assert "by a fraction of 60 minutes" in main["episodes"][0]["delivery"]["reason"]
    assert "not settled: Australia/Lord_Howe" in html.text


def test_gridhook_report_takes_method_and_source_and_the_settings_default(
    settlement_store_url: str,
) -> None:
    from tests.integration.test_report_cli import gridhook

    env = {k: v for k, v in _env(settlement_store_url, NOW).items() if k != "GRIDHOOK_STORE"}
    range_args = ("--since", _rfc3339(RANGE_SINCE), "--until", _rfc3339(RANGE_UNTIL))
    store = ("--store", settlement_store_url)

    def report(*args: str, **more: str) -> Any:
        done = gridhook(
            "report", *store, *range_args, "--format", "json", *args, env={**env, **more}
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert report()["delivery"]["method"] == METHOD
    assert report(GRIDHOOK_BASELINE_METHOD="pjm-high-4-of-5")["delivery"]["method"] == (
        "pjm-high-4-of-5"
    )
    chosen = report(
        "--method",
        "PJM-SAME-DAY",
        "--source",
        "samples",
        GRIDHOOK_BASELINE_METHOD="pjm-high-4-of-5",
    )
    assert chosen["delivery"]["method"] == "pjm-same-day"
    assert _feed(chosen, "aux")["delivery"]["source"] == "samples"

    refused = gridhook("report", *store, "--method", "10-in-10", env=env)
    assert refused.returncode == 2 and "--method" in refused.stderr
    assert "'10-in-10'" in refused.stderr and refused.stdout == ""
