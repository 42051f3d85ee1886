"""Reports rendered as HTML, JSON and CSV: self-contained, honest about where each figure
comes from, and sensible for an empty range, a single event and a stalled ramp."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from gridhook.report import Report, assemble_report
from gridhook.report.render import (
    CSV_COLUMNS,
    format_duration,
    render_csv,
    render_html,
    render_json,
)
from tests.report_scenario import hand_built_episode, sample

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class _Page(HTMLParser):
    """What a page is made of: its tags with their attributes, and its visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "svg"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "svg"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(" ".join(data.split()))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def visible(self) -> str:
        return " ".join(self.text)


def _report(episodes, samples=(), *, since=T0 - HOUR, until=T0 + 6 * HOUR, now=None) -> Report:
    return assemble_report(
        episodes,
        list(samples),
        since=since,
        until=until,
        now=now or until,
        ramp_deadline_seconds=1800,
    )


def _day() -> Report:
    samples = [sample("feed-a", T0 + timedelta(minutes=m), 10.0, 10.0) for m in range(-50, 0, 10)]
    return _report(
        [
            hand_built_episode(start=T0, feed="feed-a", correlation_id="dr-1"),
            hand_built_episode(
                start=T0 + 2 * HOUR, feed="feed-b", correlation_id="dr-2", reached_mw=7.5
            ),
        ],
        samples,
    )


def assert_self_contained(html: str) -> None:
    page = _Page(html)
    assert not page.all("script") and not page.all("link") and not page.all("img")
    for _, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:)?//", value), f"{name}={value!r} leaves the page"
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(?!#)", html), "only url(#local-id) references"
    (csp,) = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in (csp["content"] or "")


def test_html_report_is_one_self_contained_page_with_its_charts() -> None:
    report = _day()
    html = render_html(report)
    assert_self_contained(html)
    page = _Page(html)
    svgs = page.all("svg")
    assert len(svgs) == 2 * len(report.feeds)  # a timeline and compliance by day per feed
    assert len(re.findall(r"<path\b", html)) > 20
    ids = [attrs["id"] for _, attrs in page.tags if attrs.get("id")]
    assert len(ids) == len(set(ids)), "ids repeat across the inline SVGs"
    rows = [a["data-episode-id"] for a in page.all("tr") if a.get("data-episode-id")]
    assert rows == [e.episode_id for e in report.episodes]


def test_html_says_which_figures_are_measured_and_which_requested() -> None:
    text = _Page(render_html(_day())).visible
    assert "Measured by DPS" in text and "Requested" in text and "Timed by gridhook" in text
    assert "not metered" in text
    assert "MWh" in text and "MW" in text


def test_html_prints_each_feed_on_its_own_pages() -> None:
    html = render_html(_day())
    style = html[html.index("<style>") : html.index("</style>")]
    print_rules = style[style.index("@media print") :]
    assert "section.feed { break-before: page; }" in print_rules
    assert "@page" in print_rules
    assert "figure.chart svg { display: block; width: 100%; height: auto; }" in style


def test_feed_tags_and_correlation_ids_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    report = _report([hand_built_episode(start=T0, feed=hostile, correlation_id=hostile)])
    html = render_html(report)
    assert hostile not in html
    assert "&lt;script&gt;" in html
    assert not _Page(html).all("script")


def test_an_empty_range_says_so_plainly() -> None:
    html = render_html(_report([]))
    assert_self_contained(html)
    page = _Page(html)
    assert "Nothing to report" in page.visible
    assert "no power events and no DPS samples" in page.visible
    assert not page.all("svg") and not page.all("table")


def test_a_single_event_renders_as_an_open_episode() -> None:
    now = T0 + timedelta(minutes=10)
    only = hand_built_episode(start=T0, through="start_ramp_down", now=now)
    report = _report([only], until=now, now=now)
    html = render_html(report)
    page = _Page(html)
    assert "in progress" in page.visible
    assert "10 min so far" in page.visible  # the ramp down has not ended yet
    (feed,) = report.feeds
    assert feed.timeline.event_points == 1
    # The timeline still draws: the event, the target steps and the ramp-down shading.
    timeline_svg = html[html.index("<svg", html.index('class="chart timeline"')) :]
    assert "<path" in timeline_svg[: timeline_svg.index("</svg>")]


def test_a_stalled_ramp_is_marked_in_table_and_chart() -> None:
    now = T0 + 3 * HOUR
    flag = "stalled: no end_ramp_down within the ramp deadline"
    stalled = hand_built_episode(
        start=T0, through="start_ramp_down", status="stalled", flags=(flag,), now=now
    )
    html = render_html(_report([stalled], until=now, now=now))
    page = _Page(html)
    (row,) = [a for a in page.all("tr") if a.get("data-episode-id")]
    assert row["class"] == "row-stalled"
    assert flag in page.visible and "3 h 00 min so far" in page.visible
    assert "Stalled ramp" in html  # the chart's legend (SVG text)
    assert "not judged" in page.visible


def test_json_carries_every_figure_and_the_definitions() -> None:
    report = _day()
    data = json.loads(render_json(report))
    assert set(data["definitions"]) == {"measured", "requested", "timed", "settled"}
    assert [f["feed_tag"] for f in data["feeds"]] == ["feed-a", "feed-b"]
    feed_a = data["feeds"][0]
    assert feed_a["summary"]["compliance_rate"] == 1.0
    assert len(feed_a["episodes"]) == 1
    sources = {p["source"] for p in feed_a["timeline"]["points"]}
    assert sources == {"event", "sample"}
    assert data["overall"]["episodes"] == 2 and data["overall"]["compliant"] == 1


def test_csv_has_one_row_per_episode_in_mw_and_mwh() -> None:
    report = _day()
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["episode_id"] for r in rows] == [e.episode_id for e in report.episodes]
    first, second = rows
    assert (first["target_mw_requested"], first["prev_target_mw_requested"]) == ("6", "10")
    assert float(first["energy_mwh_requested"]) == pytest.approx(4.0)  # 4 MW for 1 h
    assert (first["compliant_dps"], second["compliant_dps"]) == ("true", "false")
    assert second["load_at_end_ramp_down_mw_dps"] == "7.5"


def test_csv_of_an_empty_range_is_just_the_header() -> None:
    assert render_csv(_report([])).strip() == ",".join(CSV_COLUMNS)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (45.4, "45 s"),
        (89, "89 s"),
        (605, "10 min 05 s"),
        (1800, "30 min"),
        (3600, "1 h 00 min"),
        (5400, "1 h 30 min"),
        (3 * 86400 + 7200, "3 d 02 h"),
    ],
)
def test_durations_read_naturally(seconds, text) -> None:
    assert format_duration(seconds) == text
