"""What a person sees of delivered curtailment: Debian's chromium (headless, driven by
playwright, as tests/e2e/test_browser_report.py drives it) opens the report ``gridhook
report`` writes over two days of tests/settlement_scenario.py's site, on SQLite.

The baseline is on the timeline — a dashed line over each episode's event intervals, its
legend naming the method — the delivered-against-needed chart is drawn, the episode table
has the delivered, needed, performance, settlement and source columns with the figures of
the store (computed by hand here), a feed without history says "insufficient history" where
a figure would be (never 0), and printed, each episode's settlement goes on a line of its
own under its row so the table fits A4. Screenshots in var/test-artifacts/delivery/.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhook.store import open_store
from tests.e2e.test_browser_report import (
    ARTIFACTS,
    _why_skip,
    browser,
    dev_clock_at,
    drawn_paths,
    visit,
)
from tests.harness import FUNCTIONS, REPO, clean_env
from tests.settlement_scenario import NOW, TIMEZONE, TZ, seed_settlement

__all__ = ["browser"]  # the fixture, used by name

pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")

METHOD = "caiso-10-in-10"
#: Wednesday 13 and Thursday 14 May 2026, local days: main's curtailments of both days,
#: aux's of Wednesday, young's of Thursday (two days of history: too few).
SINCE = "2026-05-13T04:00:00Z"
UNTIL = "2026-05-15T04:00:00Z"


def _main_delivered_mwh() -> float:
    """By hand: main held 7 MW from 14:00 to 16:00 local against its weekday shape,
    10 MW x (1 + 0.05 sin((hour - 8) / 24 x 2 pi)) (tests/settlement_scenario.py)."""
    return sum(10 * (1 + 0.05 * math.sin((h - 8) / 24 * 2 * math.pi)) - 7 for h in (14, 15))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report file, as ``gridhook report`` writes it."""
    where = tmp_path_factory.mktemp("browser-delivery")
    url = f"sqlite:///{where / 'events.db'}"
    store = open_store(url)
    try:
        seed_settlement(store)
    finally:
        store.close()
    out = where / "report.html"
    env = clean_env()
    env.update(
        {
            "PYTHONPATH": f"{FUNCTIONS}{os.pathsep}{REPO}",
            "GRIDHOOK_DEV_CLOCK": dev_clock_at(NOW),
            "GRIDHOOK_TIMEZONE": TIMEZONE,
        }
    )
    cli = "import sys; from gridhook.cli import main; sys.exit(main())"
    argv = ["report", "--store", url, "--since", SINCE, "--until", UNTIL, "--output", str(out)]
    subprocess.run(
        [sys.executable, "-c", cli, *argv],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


@pytest.fixture(scope="module")
def artifacts() -> Path:
    directory = ARTIFACTS / "delivery"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _feed(page: Any, tag: str) -> Any:
    return page.locator(f'section.feed[data-feed-tag="{tag}"]')


def test_the_baseline_on_the_chart_and_delivered_against_needed_in_the_table(
    browser: Any, report: Path, artifacts: Path
) -> None:
    seen = visit(browser, report.as_uri())
    page = seen.page
    page.screenshot(path=artifacts / "report.png", full_page=True)
    assert seen.errors == []
    assert seen.requests == [report.as_uri()], "the report fetched something"
    assert f"baseline {METHOD}" in page.locator("p.baseline-method").inner_text()

    main = _feed(page, "main")
    timeline = main.locator("figure.chart.timeline svg")
    # The baseline: a dashed line, its legend naming the method.
    # (A white halo under it keeps it readable across the load line: two paths.)
    paths = timeline.locator('g[id$="-baseline"] path')
    styles = paths.evaluate_all("ps => ps.map(p => p.getAttribute('style') || '')")
    assert all("stroke-dasharray" in s for s in styles) and len(styles) == 2, styles
    line = timeline.locator('g[id$="-baseline"] path[style*="#3b3b3b"]')
    assert line.count() == 1
    assert timeline.locator("text", has_text=f"baseline ({METHOD})").count() == 1
    # Over the event intervals of main's two curtailments in the range (14:00-16:00 each
    # local day): two runs of the line.
    path = line.get_attribute("d") or ""
    assert path.count("M") == 2, path[:200]
    plot = timeline.locator('g[id$="-patch_2"] path').first.bounding_box()  # the axes' area
    box = line.bounding_box()
    assert plot is not None and box is not None
    hours = box["width"] / plot["width"] * 48
    assert 24 < hours < 28, (
        f"the baseline spans {hours:.1f} h of the chart"
    )  # 14:00 to 16:00 next day
    main.locator("figure.chart.timeline").screenshot(path=artifacts / "main-timeline.png")

    # Delivered against needed: drawn, per episode.
    delivery = main.locator("figure.chart.delivery svg")
    assert delivery.count() == 1 and drawn_paths(delivery) > 10
    assert main.locator("figure.chart.delivery svg text", has_text="Delivered").count() >= 1

    # The table's columns, and the store's figures in them (by hand: 6.98 MWh each).
    headers = main.locator("table.episodes thead th").all_inner_texts()
    names = [h.splitlines()[0] for h in headers]
    for column in ("Delivered", "Needed", "Performance", "Settlement", "Source"):
        assert column in names, names
    expected = f"{_main_delivered_mwh():.2f} MWh"
    rows = main.locator("table.episodes tr[data-episode-id]")
    assert rows.count() == 2
    for index in range(2):
        row = rows.nth(index)
        assert row.locator("td.delivered").inner_text().splitlines()[0] == expected
        assert row.locator("td.needed").inner_text().splitlines()[0] == expected
        assert row.locator("td.settlement").inner_text().startswith("complete")
    # The table scrolls sideways on a laptop screen: the settlement columns, in view.
    table = main.locator(".table-scroll").last
    table.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    table.screenshot(path=artifacts / "main-table.png")

    # Too little history: the status in words where the figures would be, never 0.
    young = _feed(page, "young")
    row = young.locator("table.episodes tr[data-episode-id]")
    assert row.count() == 1
    for cell in ("td.delivered", "td.needed"):
        assert row.locator(cell).inner_text() == "insufficient history"
    assert "eligible" in row.locator("td.settlement").inner_text()
    figures = young.locator("dl.delivery-figures").inner_text()
    assert "insufficient history" in figures and "0.00 MWh" not in figures
    chart = young.locator("figure.chart.delivery svg")
    assert chart.locator("text", has_text="insufficient history").count() == 1
    assert young.locator('figure.chart.timeline svg g[id$="-baseline"]').count() == 0
    young.screenshot(path=artifacts / "young.png")

    # Printed: the settlement columns give way to a line under each row; A4 wide.
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 718, "height": 1000})
    assert page.evaluate("document.documentElement.scrollWidth") <= 718, "wider than the paper"
    lines = main.locator("tr.settlement-line").all_inner_texts()
    assert (
        lines
        == [
            f"Settled ({METHOD}): delivered {expected} of {expected} needed · performance 100% · "
            "complete · samples, 1h"
        ]
        * 2
    )
    assert "insufficient history" in young.locator("tr.settlement-line").inner_text()
    page.screenshot(path=artifacts / "report-print.png", full_page=True)
    page.close()


def test_the_baseline_is_the_hand_computed_weekday_load() -> None:
    """The figure the browser test reads, checked against the scenario's own shape (so a
    change to the scenario shows up here, not as a puzzling browser failure)."""
    local = datetime(2026, 5, 13, 14, tzinfo=TZ)
    assert local.weekday() == 2 and local + timedelta(hours=2) < NOW
    assert round(_main_delivered_mwh(), 2) == 6.98
