"""The report's figures from episodes and samples (pure: episodes built by hand; the
derivation of episodes from stored events is tested with the episodes)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from gridhook.report import assemble_report
from gridhook.report.summary import compliance_by_day, percentile, summarise
from gridhook.report.timeline import feed_timeline
from tests.report_scenario import hand_built_episode, sample

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([42.0], 0.95) == 42.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    values = [float(v) for v in range(1, 101)]
    # rank (n - 1) * 0.95 = 94.05: between the 95th (95.0) and 96th (96.0) values
    assert percentile(values, 0.95) == pytest.approx(95.05)


def test_summary_counts_judges_and_adds_up() -> None:
    met = hand_built_episode(start=T0, down_s=300, hold_s=3600, up_s=120, prev_mw=10, target_mw=6)
    missed = hand_built_episode(
        start=T0 + 3 * HOUR, down_s=600, hold_s=1800, up_s=240, target_mw=5, reached_mw=5.5
    )
    stalled = hand_built_episode(
        start=T0 + 6 * HOUR, through="start_ramp_down", status="stalled", now=T0 + 8 * HOUR
    )
    summary = summarise([met, missed, stalled], T0, T0 + 12 * HOUR)

    assert summary.episodes == 3
    assert summary.by_status == {"complete": 2, "in_progress": 0, "stalled": 1, "partial": 0}
    assert (summary.judged, summary.compliant, summary.not_judged) == (2, 1, 1)
    assert summary.compliance_rate == 0.5
    assert summary.ramp_down.count == 2
    assert summary.ramp_down.median_seconds == (300 + 600) / 2
    assert summary.ramp_up.median_seconds == (120 + 240) / 2
    assert summary.hours_constrained == pytest.approx((3600 + 1800) / 3600)
    # requested energy: 4 MW held 1 h, plus 5 MW held 0.5 h
    assert summary.requested_mwh == pytest.approx(4 * 1 + 5 * 0.5)


def test_a_load_increase_is_no_curtailment() -> None:
    curtailment = hand_built_episode(start=T0)
    increase = dataclasses.replace(hand_built_episode(start=T0 + 3 * HOUR), kind="increase")
    summary = summarise([curtailment, increase], T0, T0 + 6 * HOUR)
    assert (summary.episodes, summary.increases, summary.judged) == (2, 1, 1)
    alone = summarise([curtailment], T0, T0 + 6 * HOUR)
    assert summary.requested_mwh == pytest.approx(alone.requested_mwh)
    days = compliance_by_day([curtailment, increase], T0, T0 + 6 * HOUR)
    assert sum(d.judged for d in days) == 1


def test_summary_of_nothing_has_no_rate_and_no_durations() -> None:
    summary = summarise([], T0, T0 + HOUR)
    assert summary.episodes == 0 and summary.compliance_rate is None
    assert summary.ramp_down.median_seconds is None and summary.ramp_down.p95_seconds is None
    assert summary.requested_mwh == 0 and summary.hours_constrained == 0


def test_compliance_counts_on_the_day_the_ramp_down_ended() -> None:
    since = datetime(2026, 11, 1, tzinfo=UTC)
    until = datetime(2026, 11, 4, tzinfo=UTC)
    # Starts on Nov 1 at 23:58, its ramp down ends on Nov 2: it counts on Nov 2.
    late = hand_built_episode(start=since + timedelta(hours=23, minutes=58), down_s=300)
    missed = hand_built_episode(start=T0, reached_mw=7.0)
    outside = hand_built_episode(start=until + HOUR)
    unjudged = hand_built_episode(start=T0, through="start_ramp_down")

    days = compliance_by_day([late, missed, outside, unjudged], since, until)

    assert [d.day for d in days] == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    assert [(d.judged, d.compliant) for d in days] == [(0, 0), (2, 1), (0, 0)]
    assert days[1].rate == 0.5 and days[0].rate is None


def test_timeline_merges_events_and_samples_and_carries_the_target_in() -> None:
    episode = hand_built_episode(start=T0, down_s=600, hold_s=3600, up_s=600, prev_mw=10)
    window_start = T0 + timedelta(minutes=30)  # after the ramp down
    samples = [sample("f1", T0 + timedelta(minutes=m), 6.0, 6.0) for m in (40, 50)]

    timeline = feed_timeline(
        [episode], samples, start=window_start, end=T0 + 3 * HOUR, now=T0 + 3 * HOUR
    )

    assert [p.source for p in timeline.points] == ["sample", "sample", "event", "event"]
    assert [p.event for p in timeline.points if p.source == "event"] == [
        "start_ramp_up",
        "end_ramp_up",
    ]
    # The target in force at the window's start comes from the end_ramp_down before it.
    assert timeline.target_steps[0] == (window_start, 6e6)
    assert timeline.target_steps[-1] == (T0 + 3 * HOUR, 10e6)
    phases = [(p.phase, p.start, p.end) for p in timeline.phases]
    assert phases == [
        ("constrained", window_start, T0 + timedelta(minutes=70)),
        ("ramping_up", T0 + timedelta(minutes=70), T0 + timedelta(minutes=80)),
    ]


def test_timeline_before_any_change_shows_the_previous_target() -> None:
    episode = hand_built_episode(start=T0 + HOUR, prev_mw=9, target_mw=4)
    timeline = feed_timeline(
        [episode], [], start=T0, end=T0 + 4 * HOUR, now=T0 + 4 * HOUR, seen_before=True
    )
    assert timeline.target_steps[0] == (T0, 9e6)
    assert timeline.target_steps[1] == (T0 + HOUR, 4e6)


def test_timeline_draws_no_target_before_a_feeds_first_event_ever() -> None:
    """Issue 15 item 12: before its first event, gridhook knew nothing of the feed."""
    episode = hand_built_episode(start=T0 + HOUR, prev_mw=9, target_mw=4)
    timeline = feed_timeline([episode], [], start=T0, end=T0 + 4 * HOUR, now=T0 + 4 * HOUR)
    assert timeline.target_steps[0] == (T0 + HOUR, 4e6)
    assert all(at >= T0 + HOUR for at, _ in timeline.target_steps)


def test_a_zero_target_is_the_default_on_the_chart() -> None:
    """DPS: "--value=0 with any unit also sets the default constraint": a gap, not 0 MW."""
    samples = [sample("f1", T0, 8.0, 0.0), sample("f1", T0 + HOUR, 8.0, 5.0)]
    timeline = feed_timeline([], samples, start=T0, end=T0 + 2 * HOUR, now=T0 + 2 * HOUR)
    assert [w for _, w in timeline.target_steps] == [None, 5e6, 5e6]
    assert timeline.points[0].target_w is None and timeline.has_default_target


def test_open_and_stalled_phases_run_until_now() -> None:
    now = T0 + 2 * HOUR
    stalled = hand_built_episode(start=T0, through="start_ramp_down", status="stalled", now=now)
    held = hand_built_episode(start=T0, feed="f2", through="end_ramp_down", now=now)

    (ramp,) = feed_timeline([stalled], [], start=T0, end=now, now=now).phases
    assert (ramp.phase, ramp.end, ramp.stalled, ramp.ongoing) == ("ramping_down", now, True, True)

    down, constrained = feed_timeline([held], [], start=T0, end=now, now=now).phases
    assert not down.ongoing and not down.stalled
    assert (constrained.phase, constrained.end, constrained.ongoing) == ("constrained", now, True)


def test_report_groups_by_feed_and_keeps_to_its_range() -> None:
    since, until = T0 - HOUR, T0 + 12 * HOUR
    a = hand_built_episode(start=T0, feed="a")
    b = hand_built_episode(start=T0 + HOUR, feed="b", reached_mw=8)
    before = hand_built_episode(start=since - 5 * HOUR, feed="a")  # over before the range
    nameless = hand_built_episode(start=T0, feed=None, correlation_id=None)
    samples = [sample("c", T0, 3.0, None)]

    report = assemble_report(
        [a, b, before, nameless],
        samples,
        since=since,
        until=until,
        now=until,
        ramp_deadline_seconds=1800,
    )

    assert [f.feed_tag for f in report.feeds] == ["a", "b", "c", None]
    assert [len(f.episodes) for f in report.feeds] == [1, 1, 0, 1]
    assert report.feeds[3].label == "(no feed tag)"
    assert report.overall.episodes == 3 and report.overall.compliant == 2
    assert report.feeds[2].timeline.sample_points == 1 and not report.empty


def test_a_feed_filter_reports_that_feed_even_when_nothing_happened() -> None:
    episode = hand_built_episode(start=T0, feed="a")
    report = assemble_report(
        [episode],
        [],
        since=T0 - HOUR,
        until=T0 + HOUR,
        now=T0 + HOUR,
        feed_filter="quiet",
        ramp_deadline_seconds=1800,
    )
    assert [f.feed_tag for f in report.feeds] == ["quiet"]
    assert report.empty and report.overall.episodes == 0


def test_an_empty_range_is_an_empty_report() -> None:
    report = assemble_report(
        [], [], since=T0, until=T0 + HOUR, now=T0 + HOUR, ramp_deadline_seconds=1800
    )
    assert report.feeds == () and report.empty
    assert report.to_dict()["overall"]["compliance_rate"] is None


def test_charts_stop_at_now_when_the_range_runs_past_it() -> None:
    report = assemble_report(
        [hand_built_episode(start=T0)],
        [],
        since=T0 - HOUR,
        until=T0 + 48 * HOUR,
        now=T0 + 2 * HOUR,
        ramp_deadline_seconds=1800,
    )
    (feed,) = report.feeds
    assert feed.timeline.end == T0 + 2 * HOUR
    assert len(feed.compliance_by_day) == 3  # every day asked for, even those to come
