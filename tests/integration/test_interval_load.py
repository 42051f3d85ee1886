"""The interval loader and the rollup writer on every backend: intervals read from rollups
plus the open hour are exactly those of the raw samples, only the hours without a rollup
cost raw samples, meter data wins where present (samples the shadow), and a report draws
5-minute means of the hours rolled up and says so."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gridhook.events import rfc3339
from gridhook.intervals.load import load_intervals
from gridhook.intervals.rollups import roll_up
from gridhook.report import build_report
from gridhook.settlement import SettlementInputError, load_from_samples
from gridhook.store import EventStore, LoadSample, MeterRecord, RollupQuery, open_store

T0 = datetime(2026, 3, 7, 22, tzinfo=UTC)  # 17:00 in New York
TZ = ZoneInfo("America/New_York")
HOURS = 4
NOW = T0 + timedelta(hours=HOURS, minutes=30)  # four complete hours, half of the fifth
FEEDS = ("main", "aux")
KEEP = timedelta(days=3650)


def _watts(feed: str, minute: int) -> float:
    base = 5e6 if feed == "main" else 2e6
    return base + 1e5 * math.sin(minute / 17) + (minute % 7) * 1e3


def _samples() -> list[LoadSample]:
    """One a minute, 7 s past it; a gap of 20 minutes on main in the second hour (its
    intervals there are missing), a duplicate reading that counts once."""
    found = []
    for feed in FEEDS:
        for minute in range(HOURS * 60 + 30):
            if feed == "main" and 70 <= minute < 90:
                continue
            at = T0 + timedelta(minutes=minute, seconds=7)
            found.append(LoadSample(feed, at, _watts(feed, minute), None, None, at + KEEP))
    return found


@pytest.fixture
def loaded(store_url: str) -> Iterator[EventStore]:
    # A longer timeout than the shared store fixture's 5 s: moto takes seconds to answer a
    # Query of a few hundred items when the suite keeps the machine busy.
    store = open_store(store_url, timeout_seconds=60.0)
    for sample in _samples():
        store.add_sample(sample)
    yield store
    store.close()


def _raw(feed: str, resolution: str) -> np.ndarray:
    series = load_from_samples(
        [s for s in _samples() if s.feed_tag == feed],
        site="default",
        feed=feed,
        tz=TZ,
        since=T0,
        until=NOW,
        resolution=resolution,
    )
    return series.mean_w


def test_rollups_then_the_open_hour_give_the_raw_samples_intervals(loaded: EventStore) -> None:
    run = roll_up(
        loaded, site="default", since=T0, until=NOW, now=NOW, retention=timedelta(days=400)
    )
    assert (run.hours, run.written, run.rolled_up_before) == (HOURS, HOURS * 2, 0)
    assert run.feeds == ("aux", "main") and run.samples_read == len(_samples()) - 60
    # Twice: nothing new, and no sample read (every hour has its rollups).
    again = roll_up(
        loaded, site="default", since=T0, until=NOW, now=NOW, retention=timedelta(days=400)
    )
    assert (again.written, again.rolled_up_before, again.samples_read) == (0, HOURS, 0)
    for feed in FEEDS:
        for resolution in ("5m", "15m", "1h"):
            load = load_intervals(
                loaded, feed=feed, tz=TZ, since=T0, until=NOW, resolution=resolution
            )
            assert load.source == "samples" and load.shadow is None
            np.testing.assert_allclose(load.series.mean_w, _raw(feed, resolution), rtol=1e-12)
            # Four hours from rollups; raw samples only for the open half hour (and the
            # one read just before it, which covers its first seconds).
            assert (load.rollup_hours, load.raw_samples) == (HOURS, 31)
    main = load_intervals(loaded, feed="main", tz=TZ, since=T0, until=NOW, resolution="15m")
    # main's 20-minute gap: the two quarter hours it spans are missing, never filled in.
    missing = [i.interval_start for i in main.series.intervals() if i.missing]
    assert missing == [T0 + timedelta(minutes=60), T0 + timedelta(minutes=75)]


def test_an_hour_not_rolled_up_is_read_from_its_samples(loaded: EventStore) -> None:
    # Only the first two hours rolled up (a job that stopped): the rest comes raw.
    roll_up(
        loaded,
        site="default",
        since=T0,
        until=T0 + timedelta(hours=2),
        now=NOW,
        retention=timedelta(days=400),
    )
    load = load_intervals(loaded, feed="aux", tz=TZ, since=T0, until=NOW, resolution="1h")
    assert (load.rollup_hours, load.raw_samples) == (2, 2 * 60 + 30 + 1)
    np.testing.assert_allclose(load.series.mean_w, _raw("aux", "1h"), rtol=1e-12)


def _meter(feed: str, minute: int, watts: float | None, revision: int = 1) -> MeterRecord:
    start = T0 + timedelta(minutes=minute)
    return MeterRecord(
        "default", feed, start, start + timedelta(minutes=15), watts, revision, T0, "m.csv:2"
    )


def test_meter_data_wins_where_present_and_samples_are_the_shadow(loaded: EventStore) -> None:
    loaded.add_meter_records([_meter("main", m, 4e6) for m in range(0, HOURS * 60, 15)])
    # A replaced value: the current revision is read, the old one kept but not.
    loaded.add_meter_records([_meter("main", 0, 3e6, revision=2)])
    load = load_intervals(loaded, feed="main", tz=TZ, since=T0, until=NOW, resolution="1h")
    assert load.source == "meter" and load.meter_intervals == HOURS * 4
    assert load.series.mean_w[0] == pytest.approx((3e6 + 3 * 4e6) / 4)
    assert list(load.series.mean_w[1:HOURS]) == [4e6] * (HOURS - 1)
    assert math.isnan(load.series.mean_w[HOURS])  # the open hour: no meter data yet
    assert load.shadow is not None and load.shadow.source == "samples"
    np.testing.assert_allclose(load.shadow.mean_w, _raw("main", "1h"), rtol=1e-12)
    # Asked for: samples only, or meter only (aux has none: every interval missing).
    forced = load_intervals(
        loaded, feed="main", tz=TZ, since=T0, until=NOW, resolution="1h", source="samples"
    )
    assert forced.source == "samples" and forced.shadow is None
    aux = load_intervals(
        loaded, feed="aux", tz=TZ, since=T0, until=NOW, resolution="1h", source="meter"
    )
    assert aux.source == "meter" and bool(np.isnan(aux.series.mean_w).all())
    assert load_intervals(loaded, feed="aux", tz=TZ, since=T0, until=NOW).source == "samples"
    with pytest.raises(SettlementInputError, match="unknown source 'both'"):
        load_intervals(loaded, feed="aux", tz=TZ, since=T0, until=NOW, source="both")


def test_another_site_never_reads_the_default_sites_samples(loaded: EventStore) -> None:
    # Samples carry their site: phx1 has none here, so every one of its intervals is
    # missing (never the default site's load under another name), with or without rollups.
    own = load_intervals(loaded, feed="aux", tz=TZ, since=T0, until=NOW)
    assert not all(i.missing for i in own.series.intervals())
    for rolled in (False, True):
        if rolled:
            roll_up(
                loaded, site="default", since=T0, until=NOW, now=NOW, retention=timedelta(days=400)
            )
        other = load_intervals(loaded, feed="aux", tz=TZ, since=T0, until=NOW, site="phx1")
        assert other.raw_samples == 0 and other.rollup_hours == 0
        assert all(i.missing for i in other.series.intervals())


def test_the_report_draws_five_minute_means_of_the_hours_rolled_up(loaded: EventStore) -> None:
    def timeline(feed: str) -> dict:
        report = build_report(
            loaded, since=T0, until=NOW, now=NOW, ramp_deadline=timedelta(minutes=30)
        )
        (section,) = [f for f in report.feeds if f.feed_tag == feed]
        return section.timeline.to_dict()

    before = timeline("aux")
    assert before["load_source"] == {
        "drawn": "samples",
        "rollup_hours": 0,
        "rollup_points": 0,
        "sample_points": HOURS * 60 + 30,
        "step_seconds": 300,
    }
    roll_up(loaded, site="default", since=T0, until=NOW, now=NOW, retention=timedelta(days=400))
    after = timeline("aux")
    # Twelve points an hour where rolled up, the raw samples of the open half hour.
    assert after["load_source"] == {
        "drawn": "rollups+samples",
        "rollup_hours": HOURS,
        "rollup_points": HOURS * 12,
        "sample_points": 30,
        "step_seconds": 300,
    }
    means = [p for p in after["points"] if p["source"] == "rollup"]
    rolled_until = rfc3339(T0 + timedelta(hours=HOURS))
    raw = [p for p in before["points"] if p["at"] < rolled_until]
    assert len(raw) == 5 * len(means)
    for k, point in enumerate(means):
        five = [p["calculated_w"] for p in raw[5 * k : 5 * k + 5]]
        assert point["calculated_w"] == pytest.approx(sum(five) / 5, rel=1e-12)
        assert point["target_w"] is None
    stored = loaded.rollups(RollupQuery(since=T0, until=NOW, feed="aux"))
    assert [r.hour_start for r in stored] == [T0 + timedelta(hours=h) for h in range(HOURS)]
