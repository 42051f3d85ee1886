"""What a person sees of a settlement: Debian's chromium (headless, driven by playwright, as in
tests/e2e/test_browser_report.py) opens power_report's ``/settlement`` served by the real
functions-framework server over tests/settlement_scenario.py, on SQLite and on Firestore
(the emulator, through the real client).

It checks that every episode's row and the totals are visible with the store's figures,
that the feed without history shows its status and reason (not 0), that the meter-fed feed
says so, that the page fetches nothing and logs no error, that it fits the paper when
printed, and that the report's link leads to it. Screenshots and the PDF in
var/test-artifacts/settlement-BACKEND/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhook.display import format_mwh
from gridhook.intervals.settle import SettlementRun, settle_range
from gridhook.sites import Site
from gridhook.store import open_store
from tests.e2e.test_browser_report import (
    ARTIFACTS,
    _why_skip,
    browser,
    dev_clock_at,
    pdf_pages,
    visit,
)
from tests.harness import FunctionServer, function_server
from tests.settlement_scenario import (
    NOW,
    RANGE_SINCE,
    RANGE_UNTIL,
    TIMEZONE,
    settlement_store_url,
)

__all__ = ["browser", "settlement_store_url"]  # the fixtures, used by name

pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")

SINCE = RANGE_SINCE.strftime("%Y-%m-%dT%H:%M:%SZ")
UNTIL = RANGE_UNTIL.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def server(settlement_store_url: str) -> Iterator[FunctionServer]:
    env = {
        "GRIDHOOK_STORE": settlement_store_url,
        "GRIDHOOK_TIMEZONE": TIMEZONE,
        "GRIDHOOK_DEV_CLOCK": dev_clock_at(NOW),
    }
    with function_server("power_report", env) as srv:
        yield srv


@pytest.fixture(scope="module")
def expected(settlement_store_url: str) -> SettlementRun:
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


@pytest.fixture(scope="module")
def artifacts(settlement_store_url: str) -> Path:
    directory = ARTIFACTS / f"settlement-{settlement_store_url.partition(':')[0]}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_the_settlement_page_as_a_person_sees_it(
    browser: Any, server: FunctionServer, expected: SettlementRun, artifacts: Path
) -> None:
    url = f"{server.url}/settlement?since={SINCE}&until={UNTIL}"
    seen = visit(browser, url)
    page = seen.page
    assert page.title().startswith("Settlement")
    assert page.get_by_text("How to read this settlement").is_visible()

    rows = page.locator("table.settlements tr[data-episode-id]")
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.episodeId)")
    assert sorted(shown) == sorted(s.episode_id for s in expected.settlements)
    assert len(shown) == 5
    for index in range(rows.count()):
        assert rows.nth(index).is_visible()
    for s in expected.settlements:
        row = page.locator(f'table.settlements tr[data-episode-id="{s.episode_id}"]')
        text = row.inner_text()
        if s.delivered_wh is None:
            assert "insufficient history" in text and "eligible" in text
            assert "MWh" not in text
        else:
            assert format_mwh(s.delivered_wh) in text and s.source in text

    total = page.locator("table.settlement-totals tr.fleet-total")
    assert total.is_visible()
    cells = total.locator("td").all_inner_texts()
    assert cells[1] == "5"
    assert cells[2] == format_mwh(expected.totals.delivered_wh)
    assert cells[3] == format_mwh(expected.totals.needed_wh)
    young = page.locator("table.settlement-totals tr.feed-total", has_text="young")
    assert "no figures" in young.inner_text() and "0.00 MWh" not in young.inner_text()
    aux = page.locator('section.feed[data-feed-tag="aux"]')
    assert aux.locator("[data-source]").inner_text() == "meter"
    assert seen.errors == []
    assert seen.requests == [url], "the page fetched something"
    page.screenshot(path=artifacts / "settlement.png", full_page=True)

    # Printed: each feed on its own page, nothing wider than the paper.
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 718, "height": 1000})  # A4 less margins, at 96 dpi
    assert page.evaluate("document.documentElement.scrollWidth") <= 718, "wider than the paper"
    pdf = artifacts / "settlement.pdf"
    page.pdf(path=pdf, format="A4", print_background=True)
    assert pdf_pages(pdf) >= 4  # the totals, then a page per feed
    page.close()


def test_the_reports_link_leads_to_the_settlement_of_its_range(
    browser: Any, server: FunctionServer, artifacts: Path
) -> None:
    seen = visit(browser, f"{server.url}/report?since={SINCE}&until={UNTIL}")
    page = seen.page
    page.locator("a.settlement-link").click()
    page.wait_for_load_state("load")
    assert page.url.startswith(f"{server.url}/settlement?since={SINCE}&until={UNTIL}")
    assert page.locator("table.settlements tr[data-episode-id]").count() == 5
    page.screenshot(path=artifacts / "settlement-from-report.png", full_page=True)
    page.close()
