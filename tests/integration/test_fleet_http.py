"""power_report over a fleet (tests/fleet_scenario.py), as the real functions-framework app
in-process, on SQLite and on Firestore (the emulator, through the real client): the fleet
page at ``/`` with its totals, each site's page at ``/sites/<site>`` in its local time,
``site=`` on ``/report`` and ``/episodes`` (repeatable, as ``--site``), every refusal; and a
one-site deployment, whose ``/`` is its site's page as before sites."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest

from gridhook.store import open_store
from tests.fleet_scenario import AMS, AMS_ERROR, LAB, LONG, LONG_FEED, PHX, seed_fleet, sites_json
from tests.harness import FunctionApp, Reply, function_app
from tests.report_scenario import FEED_A, FEED_B, seed_day

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
NOW = ORIGIN + timedelta(hours=20, minutes=50)


def dev_clock() -> str:
    """gridhook's clock at the scenario's now, all but still (a microsecond a second), so
    "for 50 min" reads the same however long the tests take."""
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"0.000001@{NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def fleet_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The fleet seeded in a store of each backend, and power_report's environment for it."""
    env: dict[str, str] = {}
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fleet-http') / 'events.db'}"
    else:
        emulator = request.getfixturevalue("firestore_emulator")
        env["FIRESTORE_EMULATOR_HOST"] = emulator.host
        url = f"firestore://fleet-{uuid.uuid4().hex[:12]}/gridhook"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        store = open_store(url)
        try:
            seed_fleet(store, ORIGIN, NOW)
        finally:
            store.close()
    yield {
        **env,
        "GRIDHOOK_STORE": url,
        "GRIDHOOK_SITES": sites_json(),
        "GRIDHOOK_DEV_CLOCK": dev_clock(),
        "GRIDHOOK_RAMP_DEADLINE_SECONDS": "1800",
    }


@pytest.fixture(scope="module")
def app(fleet_env: dict[str, str]) -> Iterator[FunctionApp]:
    with function_app("power_report", fleet_env) as function:
        yield function


def page(app: FunctionApp, path: str, **params: object) -> str:
    response = app.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    return response.text


def text_of(html: str) -> str:
    """The page's words, tags dropped and spaces collapsed (none before punctuation)."""
    words = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))
    return re.sub(r" ([:,;)])", r"\1", words)


def figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">.*?<dd>(.*?)</dd>', html, re.S)
    assert found, name
    return text_of(found[1]).strip()


def row(html: str, site: str, feed: str) -> str:
    """The fleet table's row of one site's feed (its class and its words)."""
    block = re.search(
        rf'<tbody class="site-rows[^"]*" data-site="{re.escape(site)}">(.*?)</tbody>', html, re.S
    )
    assert block, site
    found = re.search(
        rf'<tr class="([^"]*)" data-feed-tag="{re.escape(feed)}">(.*?)</tr>', block[1], re.S
    )
    assert found, (site, feed)
    return found[1] + " | " + text_of(found[2])


def assert_error(response: Reply, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    return error


# -- the fleet page ------------------------------------------------------------------------


def test_the_fleet_page_shows_every_sites_feeds_and_the_totals(app: FunctionApp) -> None:
    html = page(app, "/")
    assert "<title>gridhook fleet control room</title>" in html
    assert '<meta http-equiv="refresh" content="30">' in html
    # phx1 and ams2 each have a feed held for the grid (its last ramp down, stalled).
    assert figure(html, "sites-constrained").startswith("2 of 4")
    assert figure(html, "feeds-constrained").startswith("2 of 5")
    # 10 -> 6 MW on each: 4 MW requested off on each site.
    assert figure(html, "requested-off").startswith("8 MW")
    assert figure(html, "open-episodes").startswith("2 2 stalled")

    phx_main = row(html, PHX, FEED_A)
    assert "phase-ramping_down" in phx_main and "row-stalled" in phx_main
    # Since 20:00 UTC, in Phoenix's time; the load DPS sampled last, above the 6 MW target.
    assert "2026-01-10 13:00 UTC-07:00 for 50 min" in phx_main
    assert "8.4 MW above target · sampled 7 min" in phx_main
    assert "6 MW from 10 MW" in phx_main and "stalled" in phx_main
    ams_main = row(html, AMS, FEED_A)
    assert "2026-01-10 12:00 UTC+01:00 for 9 h 50 min" in ams_main
    ams_backup = row(html, AMS, FEED_B)
    assert "phase-steady" in ams_backup and "row-stalled" not in ams_backup
    kolkata = row(html, LONG, LONG_FEED)
    assert "no power event yet" in kolkata and "41.25 MW" in kolkata and "default" in kolkata
    lab = re.search(rf'data-site="{LAB}">(.*?)</tbody>', html, re.S)
    assert lab and "No feed has reported" in text_of(lab[1])

    attention = text_of(re.search(r'<div class="attention">(.*?)</div>', html, re.S)[1])
    assert f"Stalled ramp · {PHX} · feed {FEED_A}" in attention
    assert f"Stalled ramp · {AMS} · feed {FEED_A}" in attention
    assert f"Registration failing · {AMS}: 3 failed attempts" in attention
    assert AMS_ERROR in attention
    assert f"Registration never recorded · {LAB}" in attention
    assert LONG not in attention  # registered, nothing stalled
    for site in (PHX, AMS, LONG, LAB):
        assert f'href="sites/{site}"' in html


# -- a site's page -------------------------------------------------------------------------


def test_a_sites_page_is_in_its_local_time(app: FunctionApp) -> None:
    html = page(app, f"/sites/{AMS}")
    assert f"<title>{AMS} · gridhook control room</title>" in html
    words = text_of(html)
    assert f"Fleet \u203a site Site {AMS}" in words
    assert "As of 2026-01-10 21:50:00 UTC+01:00 · Europe/Amsterdam, UTC+01:00" in words
    assert html.count('class="feed-card') == 2
    # Its stalled ramp began at 11:00 UTC: noon in Amsterdam, shown with the offset.
    assert "Since 2026-01-10 12:00:00 UTC+01:00 for 9 h 50 min" in words
    assert "Time (Europe/Amsterdam, UTC+01:00)" in html  # the charts' axes
    assert "UTC-07:00" not in html  # nothing of Phoenix's
    assert f'href="../report?site={AMS}&amp;since=24h"' in html
    assert 'href="../"' in html  # back to the fleet
    # Its episodes only: the open one is ams2's stalled ramp.
    assert html.count('<tr class="row-stalled"') == 2  # open, and among the recent

    kolkata = text_of(page(app, f"/sites/{LONG}"))
    assert (
        "UTC+05:30" in kolkata and "No feed of this site has reported a power event yet" in kolkata
    )


def test_unknown_paths_and_sites(app: FunctionApp) -> None:
    error = assert_error(app.get("/sites/phx9"), 404, "unknown_site")
    assert error["message"] == (
        f"unknown site 'phx9': this deployment serves {PHX}, {AMS}, {LONG}, {LAB}"
    )
    assert error["details"] == [{"site": "phx9"}]
    assert_error(app.get(f"/sites/{PHX}/feeds"), 404, "not_found")
    error = assert_error(app.get(f"/sites/{PHX}", params={"since": "1d"}), 400, "bad_parameter")
    assert error["details"][0]["parameter"] == "since"


# -- reports and episodes -------------------------------------------------------------------


def test_report_site_parameter_repeatable(app: FunctionApp) -> None:
    since = "2026-01-09T00:00:00Z"
    response = app.get(f"/report?since={since}&format=json&site={AMS}&site={PHX}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["site"] for s in body["sites"]] == [PHX, AMS]  # the deployment's order
    assert [(f["site"], f["feed_tag"]) for f in body["feeds"]] == [
        (PHX, FEED_A),
        (PHX, FEED_B),
        (AMS, FEED_A),
        (AMS, FEED_B),
    ]
    every = app.get("/report", params={"since": since, "format": "json"}).json()
    assert [s["site"] for s in every["sites"]] == [PHX, AMS, LONG, LAB]

    rows = list(
        csv.DictReader(
            io.StringIO(app.get(f"/report?since={since}&format=csv&site={PHX}").text, newline="")
        )
    )
    assert rows and {r["site"] for r in rows} == {PHX}

    html = page(app, "/report", since=since, site=LONG)
    assert 'Site <span class="tag">' + LONG in html and "UTC+05:30" in html


def test_episodes_by_site(app: FunctionApp) -> None:
    body = app.get(f"/episodes?since=2d&site={AMS}").json()
    assert body["count"] == 5 and {e["site"] for e in body["episodes"]} == {AMS}
    both = app.get("/episodes", params={"since": "2d", "status": "stalled"}).json()
    assert [(e["site"], e["correlation_id"]) for e in both["episodes"]] == [
        (PHX, "dr-2000"),
        (AMS, "dr-2000"),
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/report?site=phx9", f"unknown site 'phx9': this deployment serves {PHX}, {AMS}"),
        (f"/report?site={PHX}&site=phx9", "unknown site 'phx9'"),
        ("/episodes?site=", "is empty"),
        (f"/episodes?site={PHX}&site=", "is empty"),
        ("/report?site=PHX1", "unknown site 'PHX1'"),
    ],
)
def test_a_bad_site_parameter_is_a_400_naming_it(app: FunctionApp, path: str, message: str) -> None:
    error = assert_error(app.get(path), 400, "bad_parameter")
    assert error["details"][0]["parameter"] == "site"
    assert message in error["message"]


# -- one site ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionApp]:
    path: Path = tmp_path_factory.mktemp("one-site") / "events.db"
    store = open_store(f"sqlite:///{path}")
    try:
        seed_day(store, ORIGIN, hours=20.5)
    finally:
        store.close()
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{path}",
        "GRIDHOOK_TIMEZONE": "America/Phoenix",
        "GRIDHOOK_DEV_CLOCK": dev_clock(),
    }
    with function_app("power_report", env) as function:
        yield function


def test_one_sites_root_is_its_page_as_before_sites(one_site: FunctionApp) -> None:
    """A reader of one site wants its feeds, charts and episodes at once, not a table of
    one row that leads there: ``/`` stays the site's page, in the site's zone."""
    html = page(one_site, "/")
    assert "<title>gridhook control room</title>" in html and "<h1>Control room</h1>" in html
    assert "Fleet" not in text_of(html) and "data-site" not in html
    assert 'href="report?since=24h"' in html  # the reports of its root, as before
    assert "Time (America/Phoenix, UTC-07:00)" in html
    # Its page is also at /sites/default, whose links lead back up to the reports.
    sub = page(one_site, "/sites/default")
    assert 'href="../report?site=default&amp;since=24h"' in sub
    body = one_site.get("/report", params={"format": "json", "since": "1d"}).json()
    assert [s["site"] for s in body["sites"]] == ["default"]
    # A one-site report names no site: no Site column, no site sections.
    html = page(one_site, "/report", since="1d")
    assert "<th>Site</th>" not in html and 'class="site"' not in html
    assert "All times are the site's local time (America/Phoenix, UTC-07:00)" in text_of(html)
