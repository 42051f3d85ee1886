"""The report's delivered figures, pure (``gridhook.report.delivery`` and the charts): real
settlements from the settlement core on a made-up feed, no store.

A feed drawing 10 MW every minute of three weeks, held at 6 MW (or 8 MW: short of its 6 MW
target) for two hours on three weekdays: the first too early for a 10-in-10 baseline, the
two others with a baseline of exactly 10 MW (every past weekday at 10 MW, factor 1).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gridhook.episodes import Episode
from gridhook.report import render
from gridhook.report.build import assemble_report
from gridhook.report.charts import delivery_svg, timeline_svg
from gridhook.report.delivery import FeedDelivery, delivery_totals
from gridhook.report.settled import DeliveryOptions, QuarterHourCache
from gridhook.settlement import Settlement, load_from_samples, settle_episodes
from tests.report_scenario import hand_built_episode

TZ = ZoneInfo("America/New_York")
START = datetime(2026, 3, 2, 5, tzinfo=UTC)  # Monday 00:00 EST
DAYS = 21
END = START + timedelta(days=DAYS)
METHOD = "caiso-10-in-10"


def _episodes() -> list[Episode]:
    found = []
    for day, name, reached in ((2, "early", 6.0), (15, "good", 6.0), (18, "short", 8.0)):
        start = START + timedelta(days=day, hours=14)
        episode = hand_built_episode(
            start=start, feed="main", correlation_id=name, hold_s=7200, reached_mw=reached
        )
        found.append(dataclasses.replace(episode, interval_end=start + timedelta(hours=2)))
    return found


def _delivery(since: datetime = START + timedelta(days=1), until: datetime = END) -> FeedDelivery:
    episodes = _episodes()

    def load(at: datetime) -> float:
        for e in episodes:
            assert e.interval_start is not None and e.interval_end is not None
            if e.interval_start <= at < e.interval_end:
                return e.load_w["end_ramp_down"]
        return 10e6

    minutes = (START + timedelta(minutes=m) for m in range(DAYS * 1440))
    series = load_from_samples(
        [(at, load(at)) for at in minutes],
        site="default",
        feed="main",
        tz=TZ,
        since=START,
        until=END,
        resolution="1h",
    )
    settled = settle_episodes(series, episodes, now=END, method=METHOD)
    return FeedDelivery(
        "default", "main", since, until, METHOD, "1h", "samples", "auto", tuple(settled), {}
    )


def _of(delivery: FeedDelivery, episode: Episode) -> Settlement:
    found = delivery.of(episode.episode_id)
    assert found is not None
    return found


def test_figures_where_there_is_a_baseline_and_the_status_where_not() -> None:
    delivery = _delivery()
    early, good, short = _episodes()
    assert _of(delivery, early).status == "insufficient_history"
    # Baseline 10 MW for 2 h: needed (10 - 6) x 2 = 8 MWh; delivered 8 and 4 MWh.
    assert _of(delivery, good).delivered_mwh == pytest.approx(8.0)
    assert _of(delivery, short).delivered_mwh == pytest.approx(4.0)
    totals = delivery.totals
    assert totals.shown and totals.with_figures == 2
    assert totals.totals.delivered_mwh == pytest.approx(12.0)
    assert totals.totals.needed_mwh == pytest.approx(16.0)

    bars = delivery.bars(_episodes())
    assert [(b.delivered_mwh, b.word) for b in bars] == [
        (None, "insufficient history"),
        (pytest.approx(8.0), None),
        (pytest.approx(4.0), None),
    ]


def test_a_range_holding_only_an_episode_without_a_baseline_has_no_total_not_zero() -> None:
    # Only the early episode's day.
    day = START + timedelta(days=2)
    delivery = _delivery(day, day + timedelta(days=1))
    totals = delivery_totals([delivery], day, day + timedelta(days=1))
    assert not totals.shown and totals.words == "insufficient history"
    body = totals.to_dict()
    assert body["delivered_mwh"] is None and body["needed_mwh"] is None


def test_the_baseline_on_the_timeline_is_dashed_and_named_and_broken_between_episodes() -> None:
    delivery = _delivery()
    report = assemble_report(
        _episodes(),
        [],
        since=delivery.since,
        until=delivery.until,
        now=END,
        ramp_deadline_seconds=1800,
        zone=TZ,
        delivery=DeliveryOptions(METHOD),
        deliveries={"main": delivery},
    )
    (feed,) = report.feeds
    steps = delivery.baseline_steps(feed.timeline.start, feed.timeline.end)
    assert [w for _, _, w in steps] == [10e6] * 4  # two hours of each settled episode
    svg = timeline_svg(feed.timeline, "t", TZ, baseline=steps, baseline_method=METHOD)
    group = re.search(r'<g id="t-baseline">(.*?)</g>', svg, re.S)
    assert group is not None and "stroke-dasharray" in group[1]
    # One path drawn twice (a white halo, then the dashes), each in two runs (two episodes).
    paths = re.findall(r' d="([^"]+)"', group[1])
    assert len(paths) == 2 and all(p.count("M") == 2 for p in paths)
    assert f"baseline ({METHOD})" in svg
    # Without a baseline, nothing is drawn or named.
    plain = timeline_svg(feed.timeline, "p", TZ)
    assert "baseline" not in plain

    html = render.render_html(report)
    assert f"baseline ({METHOD})" in html and "insufficient history" in html
    data = json.loads(render.render_json(report))
    assert data["delivery"]["totals"]["delivered_mwh"] == pytest.approx(12.0)
    early = data["feeds"][0]["episodes"][0]["delivery"]
    assert early["status"] == "insufficient_history" and early["in_range"] is None


def test_the_delivery_chart_says_a_status_in_words_and_marks_it_past_two_dozen() -> None:
    delivery = _delivery()
    few = delivery_svg(delivery.bars(_episodes()), "few", TZ, method=METHOD)
    assert few.count(">insufficient history<") == 1
    many_bars = delivery.bars(_episodes()) * 10  # 30 episodes: words would not fit
    many = delivery_svg(many_bars, "many", TZ, method=METHOD)
    assert "insufficient history" not in many
    assert "No figure (status in the table)" in many
    empty = delivery_svg([], "empty", TZ)
    assert "No curtailment to settle in this range" in empty


def test_live_delivery_at_the_latest_interval_or_why_not() -> None:
    delivery = _delivery()
    early, good, _ = _episodes()
    live = delivery.live(good.episode_id)
    assert live.delivered_w == pytest.approx(4e6) and live.reason == ""
    assert live.interval_end == good.interval_end
    missing = delivery.live(early.episode_id)
    assert missing.delivered_w is None and "eligible" in missing.reason
    unknown = delivery.live("no-such-episode")
    assert unknown.delivered_w is None and unknown.reason


def test_the_control_rooms_settle_once_a_quarter_hour_per_key() -> None:
    cache = QuarterHourCache(size=2)
    calls: list[str] = []

    def settle(name: str) -> Callable[[], str]:
        def run() -> str:
            calls.append(name)
            return f"{name}#{len(calls)}"

        return run

    at = datetime(2026, 5, 14, 18, 31, tzinfo=UTC)
    first = cache.get("main", at, settle("main"))
    # The same key in the same quarter hour (18:30-18:45): kept, not settled again.
    assert cache.get("main", at + timedelta(minutes=13, seconds=59), settle("main")) == first
    assert calls == ["main"]
    # The next quarter hour, or another key (an episode began): settled again.
    assert cache.get("main", at + timedelta(minutes=14), settle("main")) != first
    cache.get("other", at, settle("other"))
    assert calls == ["main", "main", "other"]
    # At most two kept: the least recently used (main at 18:30) went.
    cache.get("main", at, settle("main"))
    assert calls == ["main", "main", "other", "main"]
