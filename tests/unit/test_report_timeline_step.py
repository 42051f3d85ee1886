"""A long range's chart draws DPS's load as means over a coarser step (issue 14's 30-day
fleet report carried every 5-minute point of every feed: 334 MiB of JSON); short ranges
keep every sample and every 5-minute mean."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from gridhook.report import assemble_report
from gridhook.report.timeline import MAX_CHART_POINTS, chart_step, feed_timeline
from gridhook.store import RollupRecord
from tests.report_scenario import hand_built_episode, sample

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAR = datetime(2036, 1, 1, tzinfo=UTC)


def _rollup(hour: int, means: list[float | None], counts: list[int]) -> RollupRecord:
    return RollupRecord(
        site="default",
        feed="f1",
        hour_start=T0 + hour * HOUR,
        counts=tuple(counts),
        means=tuple(means),
        minima=tuple(means),
        maxima=tuple(means),
        covered_s=tuple(300.0 if c else 0.0 for c in counts),
        expires_at=FAR,
    )


@pytest.mark.parametrize(
    ("span", "minutes"),
    [(HOUR, 5), (5 * DAY + 5 * HOUR, 5), (5 * DAY + 6 * HOUR, 15), (15 * DAY, 15),
     (16 * DAY, 60), (30 * DAY, 60), (62 * DAY, 60), (63 * DAY, 180), (187 * DAY, 180),
     (188 * DAY, 360), (400 * DAY, 360)],
)  # fmt: skip
def test_the_step_is_the_finest_that_keeps_a_chart_readable(span: timedelta, minutes: int) -> None:
    step = chart_step(T0, T0 + span)
    assert step == timedelta(minutes=minutes)
    if minutes < 360:
        assert span / step <= MAX_CHART_POINTS


def test_a_step_mean_is_the_mean_of_its_samples_not_of_its_buckets() -> None:
    # Hour 0: twelve buckets, the first with 1 sample at 10 W, the others 5 samples each at
    # 20 W; hour 1: bucket 3 empty. Hourly means weigh each bucket by its samples.
    means0: list[float | None] = [10.0] + [20.0] * 11
    counts0 = [1] + [5] * 11
    means1: list[float | None] = [float(k) for k in range(12)]
    means1[3] = None
    counts1 = [0 if m is None else 2 for m in means1]
    rollups = [_rollup(0, means0, counts0), _rollup(1, means1, counts1)]

    timeline = feed_timeline(
        [], [], start=T0, end=T0 + 2 * HOUR, now=T0 + 2 * HOUR, rollups=rollups, step=HOUR
    )

    assert [p.at for p in timeline.points] == [T0, T0 + HOUR]
    assert timeline.points[0].calculated_w == pytest.approx((10 + 20 * 55) / 56)
    assert timeline.points[1].calculated_w == pytest.approx((sum(range(12)) - 3) / 11)
    assert timeline.step_seconds == 3600 and timeline.step_label == "hourly"
    assert timeline.load_source["rollup_points"] == 2
    assert timeline.load_source["step_seconds"] == 3600


def test_raw_samples_are_meaned_per_step_and_the_target_line_keeps_every_change() -> None:
    rng = random.Random(7)
    samples = []
    for minute in range(0, 6 * 60):
        target = 6.0 if 125 <= minute < 250 else 10.0  # changes inside a step
        samples.append(sample("f1", T0 + timedelta(minutes=minute), rng.uniform(5, 9), target))
    end = T0 + 6 * HOUR

    fine = feed_timeline([], samples, start=T0, end=end, now=end)
    coarse = feed_timeline([], samples, start=T0, end=end, now=end, step=HOUR)

    assert len(fine.points) == 360 and len(coarse.points) == 6
    for k, point in enumerate(coarse.points):
        hour = [s.calculated_w for s in samples[60 * k : 60 * (k + 1)]]
        assert point.at == T0 + k * HOUR and point.source == "sample"
        assert point.calculated_w == pytest.approx(sum(hour) / 60)
    # The target line is the same step function either way, drawn from every sample.
    assert fine.target_steps == coarse.target_steps
    assert [w for _, w in fine.target_steps] == [10e6, 6e6, 10e6, 10e6]
    assert [at for at, _ in fine.target_steps] == [
        T0,
        T0 + timedelta(minutes=125),
        T0 + timedelta(minutes=250),
        end,
    ]


def test_webhooks_are_drawn_one_by_one_at_any_step() -> None:
    episode = hand_built_episode(start=T0 + 3 * DAY, down_s=600, hold_s=3600, up_s=600)
    end = T0 + 30 * DAY
    timeline = feed_timeline([episode], [], start=T0, end=end, now=end, step=chart_step(T0, end))
    assert timeline.event_points == len(episode.events) == 4


def test_a_thirty_day_report_carries_hourly_means_and_a_day_report_every_bucket() -> None:
    rollups = [_rollup(h, [1e6] * 12, [5] * 12) for h in range(30 * 24)]
    month = assemble_report(
        [], [], since=T0, until=T0 + 30 * DAY, now=T0 + 30 * DAY,
        ramp_deadline_seconds=1800, rollups=rollups,
    )  # fmt: skip
    (feed,) = month.feeds
    assert feed.timeline.rollup_points == 30 * 24
    assert feed.timeline.to_dict()["load_source"]["step_seconds"] == 3600
    day = assemble_report(
        [], [], since=T0, until=T0 + DAY, now=T0 + 30 * DAY,
        ramp_deadline_seconds=1800, rollups=rollups,
    )  # fmt: skip
    assert day.feeds[0].timeline.rollup_points == 24 * 12
    assert day.feeds[0].timeline.step_seconds == 300
