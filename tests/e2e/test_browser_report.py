"""What a person sees: Debian's chromium (headless, driven by playwright) opens the HTML
report written by ``gridhook report`` and the control room served by the real
functions-framework server, on a store holding a realistic day: SQLite, and Firestore (the
emulator, through the real client).

It checks that the charts are there and drawn, that the episode rows are the store's,
that nothing is fetched from anywhere and nothing is logged as an error, and that the
printed report puts each feed on its own pages. Screenshots and the printed PDF are kept
in var/test-artifacts/BACKEND/ (git-ignored) for a person to look at.

And a fleet (tests/fleet_scenario.py, on SQLite): the fleet page, a site's page reached by
its link, its report, and the way back; a site with a 63-character name and no power event;
the fleet on a narrow screen. Screenshots in var/test-artifacts/fleet/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhook.episodes.load import load_episodes
from gridhook.store import open_store
from tests.fleet_scenario import AMS, LAB, LONG, PHX, seed_fleet, sites_json
from tests.harness import FUNCTIONS, REPO, FunctionServer, clean_env, function_server
from tests.report_scenario import FEED_A, FEED_B, seed_day

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "var" / "test-artifacts"
ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
DAY_END = ORIGIN + timedelta(hours=24)
NOW = ORIGIN + timedelta(hours=20, minutes=50)  # the last ramp has stalled by then
DEADLINE = timedelta(seconds=1800)


def _why_skip() -> str | None:
    if not CHROMIUM.exists():
        return (
            f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium; "
            ".ci/run installs it). This test never downloads a browser."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        return "the playwright package is missing: pip install -e '.[dev]'"
    return None


pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")


def dev_clock_at(moment: datetime) -> str:
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"1@{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The day, seeded in a store of each backend. For Firestore, FIRESTORE_EMULATOR_HOST is
    set for the module: this process, the CLI and the control room all read it."""
    with pytest.MonkeyPatch.context() as env:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'events.db'}"
        else:
            emulator = request.getfixturevalue("firestore_emulator")
            env.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
            url = f"firestore://browser-{uuid.uuid4().hex[:12]}/gridhook"
        store = open_store(url)
        try:
            seed_day(store, ORIGIN, hours=(NOW - ORIGIN).total_seconds() / 3600)
        finally:
            store.close()
        yield url


@pytest.fixture(scope="module")
def artifacts(store_url: str) -> Path:
    """Where this backend's screenshots go (one directory each: xdist may run both at once)."""
    directory = ARTIFACTS / store_url.partition(":")[0]
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def stored_episode_ids(store_url: str, since: datetime, until: datetime) -> list[str]:
    store = open_store(store_url)
    try:
        episodes = load_episodes(store, since=since, until=until, now=NOW, ramp_deadline=DEADLINE)
    finally:
        store.close()
    return [e.episode_id for e in episodes]


def write_report(store_url: str, out: Path, *args: str) -> None:
    env = clean_env()
    env.update(
        {"PYTHONPATH": f"{FUNCTIONS}{os.pathsep}{REPO}", "GRIDHOOK_DEV_CLOCK": dev_clock_at(NOW)}
    )
    if "FIRESTORE_EMULATOR_HOST" in os.environ:  # the store_url fixture's emulator, if any
        env["FIRESTORE_EMULATOR_HOST"] = os.environ["FIRESTORE_EMULATOR_HOST"]
    cli = "import sys; from gridhook.cli import main; sys.exit(main())"
    subprocess.run(
        [sys.executable, "-c", cli, "report", "--store", store_url, "--output", str(out), *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Visit:
    """A page as chromium loaded it, with everything it logged and fetched."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def visit(browser: Any, url: str, width: int = 1280) -> Visit:
    page = browser.new_page(viewport={"width": width, "height": 900})
    seen = Visit(page)
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    page.on("request", lambda r: seen.requests.append(r.url))
    response = page.goto(url, wait_until="load")
    assert response is None or response.ok, f"{url}: {response.status}"
    return seen


def drawn_paths(svg: Any) -> int:
    """Paths in an SVG that the browser actually laid out with a size."""
    return svg.evaluate(
        """svg => [...svg.querySelectorAll('path')].filter(p => {
            const box = p.getBBox();
            return (p.getAttribute('d') || '').length > 8 && (box.width > 0 || box.height > 0);
        }).length"""
    )


def assert_charts_drawn(page: Any, expected: int, charts_at: str = "figure.chart svg") -> None:
    charts = page.locator(charts_at)
    assert charts.count() == expected
    for index in range(expected):
        svg = charts.nth(index)
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
        assert drawn_paths(svg) > 10, f"chart {index} has almost nothing drawn"


def rows(page: Any, section: str) -> list[str]:
    return page.locator(f"section.{section} tr[data-episode-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.episodeId)"
    )


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", path.read_bytes()))


def test_the_html_report_as_a_person_sees_it(
    browser, store_url, artifacts: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    write_report(store_url, report, "--since", "2026-01-10T00:00:00Z")  # until now
    seen = visit(browser, report.as_uri())
    page = seen.page

    assert page.title().startswith("Curtailment report")
    # Per feed: the timeline, delivered against needed, and compliance by day. This day's
    # feeds have no history, so their delivered charts hold words, not bars (the settled
    # report is tests/e2e/test_browser_delivery.py's).
    assert page.locator("figure.chart svg").count() == 6
    assert_charts_drawn(page, 4, "figure.chart:not(.delivery) svg")
    words = page.locator("figure.chart.delivery svg text", has_text="insufficient history")
    assert words.count() == 5  # one per episode
    assert page.locator("svg text", has_text="Load (MW)").count() == 2
    assert page.locator("svg text", has_text="Ramp downs").count() == 2
    for label in ("Measured by DPS", "Requested", "Timed by gridhook"):
        assert page.get_by_text(label, exact=True).is_visible()
    expected = stored_episode_ids(store_url, ORIGIN, NOW)
    assert sorted(rows(page, "feed")) == sorted(expected) and len(expected) == 5
    stalled = page.locator("tr.row-stalled")
    assert stalled.count() == 1 and "dr-2000" in stalled.inner_text()
    assert page.get_by_text(FEED_B, exact=True).first.is_visible()
    assert seen.errors == []
    assert seen.requests == [report.as_uri()], "the report fetched something"
    page.screenshot(path=artifacts / "report.png", full_page=True)

    # Printed: each feed starts a page, and the charts fit the paper's width.
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 718, "height": 1000})  # A4 less margins, at 96 dpi
    breaks = page.locator("section.feed").evaluate_all(
        "sections => sections.map(s => getComputedStyle(s).breakBefore)"
    )
    assert breaks == ["page", "page"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 718, "wider than the paper"
    for box in (page.locator("figure.chart svg").nth(i).bounding_box() for i in range(6)):
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 718
    page.screenshot(path=artifacts / "report-print.png", full_page=True)
    pdf = artifacts / "report.pdf"
    page.pdf(path=pdf, format="A4", print_background=True)
    assert pdf_pages(pdf) >= 3  # the overview, then a page (or more) per feed
    page.close()


def test_a_report_over_part_of_the_day_counts_only_that_part(
    browser, store_url, artifacts: Path, tmp_path: Path
) -> None:
    """07:00-09:00 cuts the 06:00 curtailment (held to 07:36, 3.5 MW below its previous
    target) and the 08:00 one (held from 08:04, 2 MW below): 36 + 56 minutes, 3.97 MWh."""
    report = tmp_path / "part.html"
    write_report(
        store_url, report, "--since", "2026-01-10T07:00:00Z", "--until", "2026-01-10T09:00:00Z"
    )
    seen = visit(browser, report.as_uri())
    page = seen.page
    total = page.locator("table.overview-table tr.total")
    assert total.locator("td").nth(5).inner_text() == "1.5 h"
    assert total.locator("td").nth(6).inner_text() == "3.97 MWh"
    shares = page.locator("table.episodes .in-range").all_inner_texts()
    assert sorted(shares) == sorted(
        ["36 min in range", "56 min in range", "2.10 MWh in range", "1.87 MWh in range"]
    )
    held = page.locator("table.episodes tr[data-episode-id] td:nth-child(7)").all_inner_texts()
    assert [h.splitlines()[0] for h in held] == ["1 h 30 min", "2 h 00 min"]  # whole
    how_to_read = page.locator("section.reading").inner_text()
    assert "Totals" in how_to_read and "adjacent ranges add up" in how_to_read
    assert seen.errors == []
    page.screenshot(path=artifacts / "report-part-of-a-day.png", full_page=True)
    page.close()


def test_an_empty_report_says_so(browser, store_url, artifacts: Path, tmp_path: Path) -> None:
    report = tmp_path / "empty.html"
    write_report(store_url, report, "--since", "2025-06-01T00:00:00Z", "--until", "2025-06-02")
    seen = visit(browser, report.as_uri())
    assert seen.page.get_by_text("Nothing to report", exact=False).is_visible()
    assert seen.page.locator("svg").count() == 0 and seen.errors == []
    seen.page.screenshot(path=artifacts / "report-empty.png", full_page=True)
    seen.page.close()


@pytest.fixture(scope="module")
def control_room(store_url: str) -> Iterator[FunctionServer]:
    env = {
        "GRIDHOOK_STORE": store_url,
        "GRIDHOOK_DEV_CLOCK": dev_clock_at(NOW),
        "GRIDHOOK_RAMP_DEADLINE_SECONDS": str(int(DEADLINE.total_seconds())),
    }
    with function_server("power_report", env) as server:
        yield server


def test_the_control_room_as_a_person_sees_it(
    browser, store_url, artifacts: Path, control_room
) -> None:
    seen = visit(browser, control_room.url + "/")
    page = seen.page

    assert page.title() == "gridhook control room"
    assert_charts_drawn(page, 2)  # the last 24 hours of each feed
    cards = page.locator("article.feed-card")
    assert cards.count() == 2
    stalled_card = page.locator(f'article.feed-card[data-feed-tag="{FEED_A}"]')
    assert "stalled" in (stalled_card.get_attribute("class") or "")
    assert "Ramping down" in stalled_card.inner_text()
    week = stored_episode_ids(store_url, NOW - timedelta(days=7), NOW)
    assert sorted(rows(page, "recent-episodes")) == sorted(week)
    open_rows = rows(page, "open-episodes")
    assert len(open_rows) == 1 and open_rows[0] in week
    assert page.locator("section.open-episodes tr.row-stalled").count() == 1
    refresh = page.locator('meta[http-equiv="refresh"]').get_attribute("content")
    assert refresh == "30"
    assert seen.errors == []
    assert all(url.startswith(control_room.url) for url in seen.requests), seen.requests
    page.screenshot(path=artifacts / "control-room.png", full_page=True)
    page.close()


def test_the_control_room_on_a_narrow_screen(browser, artifacts: Path, control_room) -> None:
    seen = visit(browser, control_room.url + "/", width=420)
    page = seen.page
    # Nothing wider than the screen but the tables, which scroll inside their own box.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420 + 1, f"the page is {width}px wide on a 420px screen"
    assert seen.errors == []
    page.screenshot(path=artifacts / "control-room-narrow.png", full_page=True)
    page.close()


# -- the fleet: its page, a site's page, and the links between them --------------------------


@pytest.fixture(scope="module")
def fleet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    """power_report on a four-site fleet (tests/fleet_scenario.py), on SQLite."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-fleet') / 'events.db'}"
    store = open_store(url)
    try:
        seed_fleet(store, ORIGIN, NOW)
    finally:
        store.close()
    env = {
        "GRIDHOOK_STORE": url,
        "GRIDHOOK_SITES": sites_json(),
        "GRIDHOOK_DEV_CLOCK": dev_clock_at(NOW),
        "GRIDHOOK_RAMP_DEADLINE_SECONDS": str(int(DEADLINE.total_seconds())),
    }
    with function_server("power_report", env) as server:
        yield server


@pytest.fixture(scope="module")
def fleet_artifacts() -> Path:
    directory = ARTIFACTS / "fleet"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_the_fleet_page_as_a_person_sees_it(browser, fleet_server, fleet_artifacts: Path) -> None:
    seen = visit(browser, fleet_server.url + "/")
    page = seen.page

    assert page.title() == "gridhook fleet control room"
    figures = page.locator("section.totals .figure dd").all_inner_texts()
    assert [f.split("\n")[0] for f in figures] == ["2 of 4", "2 of 5", "8 MW", "2"]
    assert page.locator("svg").count() == 0  # the fleet page draws no chart: a site's does
    # Every site a group of rows, its feeds in it: the silent site says so.
    groups = page.locator("tbody.site-rows")
    assert groups.evaluate_all("gs => gs.map(g => g.dataset.site)") == [PHX, AMS, LONG, LAB]
    assert page.locator("tbody.site-rows tr[data-feed-tag]").count() == 5
    assert page.locator("tr.row-stalled").count() == 2
    assert "No feed has reported" in groups.nth(3).inner_text()
    attention = page.locator("div.attention")
    assert attention.is_visible() and attention.locator("li").count() == 4
    # The 63-character site name wraps inside its cell: nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    long_cell = page.locator(f'tbody[data-site="{LONG}"] th.site-cell')
    box = long_cell.bounding_box()
    assert box is not None and box["width"] < 300
    assert seen.errors == []
    assert all(url.startswith(fleet_server.url) for url in seen.requests), seen.requests
    page.screenshot(path=fleet_artifacts / "fleet.png", full_page=True)

    # A site's name leads to its page, in its local time.
    page.locator(f'tbody[data-site="{AMS}"] th.site-cell a').click()
    page.wait_for_load_state("load")
    assert page.url == f"{fleet_server.url}/sites/{AMS}"
    assert page.title() == f"{AMS} · gridhook control room"
    assert_charts_drawn(page, 2)
    assert page.locator("svg text", has_text="Time (Europe/Amsterdam, UTC+01:00)").count() == 2
    assert page.locator("article.feed-card.stalled").count() == 1
    assert "12:00:00 UTC+01:00" in page.locator("article.feed-card.stalled").inner_text()
    page.screenshot(path=fleet_artifacts / "site-ams2.png", full_page=True)

    # Its report links stay on the site; the fleet link goes back.
    page.get_by_role("link", name="7 days").click()
    page.wait_for_load_state("load")
    assert page.url == f"{fleet_server.url}/report?site={AMS}&since=7d"
    assert page.locator("section.site").count() == 1 and page.locator("section.feed").count() == 2
    assert page.locator("svg text", has_text="Day (Europe/Amsterdam, 2026)").count() == 2
    page.screenshot(path=fleet_artifacts / "report-ams2.png", full_page=True)
    page.go_back()
    page.get_by_role("link", name="Fleet").click()
    page.wait_for_load_state("load")
    assert page.title() == "gridhook fleet control room"
    page.close()


def test_a_quiet_site_and_the_fleet_on_a_narrow_screen(
    browser, fleet_server, fleet_artifacts: Path
) -> None:
    seen = visit(browser, f"{fleet_server.url}/sites/{LONG}")
    page = seen.page
    assert "No feed of this site has reported a power event yet." in page.inner_text("body")
    assert "UTC+05:30" in page.locator("header").inner_text()
    assert_charts_drawn(page, 1)  # its one feed, sampled: load, no webhook
    assert seen.errors == []
    page.screenshot(path=fleet_artifacts / "site-long-name.png", full_page=True)
    page.close()

    seen = visit(browser, fleet_server.url + "/", width=420)
    page = seen.page
    # Only the table scrolls, inside its own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= 421
    assert seen.errors == []
    page.screenshot(path=fleet_artifacts / "fleet-narrow.png", full_page=True)
    page.close()
