"""`gridhook-sim --history`: meter files from the load model that gridhook's own parser reads
(both formats, DST days included), covering the days before the clock starts, and from
which a baseline matches the live load. gridhook's settlement code is imported here, on the
tests' side: the simulator itself imports none of it."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridhook.settlement import load_from_meter, parse_meter_csv, settle
from simulator.cli import main
from simulator.config import default_feeds
from simulator.history import (
    INTERVALS,
    green_button_csv,
    gridhook_csv,
    history_window,
    readings,
)
from simulator.load import LoadModel, LoadShape
from simulator.server import load_model

NEW_YORK = ZoneInfo("America/New_York")


def site_model(zone: ZoneInfo = NEW_YORK, seed: int = 7, site: str = "nyc1") -> LoadModel:
    model = load_model(default_feeds(), site, zone, seed)
    assert model is not None
    return model


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        ("2026-03-08", 23),  # clocks spring forward: 02:00 does not exist
        ("2026-11-01", 25),  # clocks fall back: 01:00-02:00 twice
        ("2026-11-02", 24),
    ],
)
def test_both_formats_parse_with_gridhooks_parser_on_dst_days(day: str, hours: int) -> None:
    model = site_model()
    since = datetime.fromisoformat(day).replace(tzinfo=NEW_YORK).astimezone(UTC)
    until = (datetime.fromisoformat(day) + timedelta(days=1)).replace(tzinfo=NEW_YORK)
    rows = list(readings(model, "main_power_feed", since, until.astimezone(UTC), INTERVALS["1h"]))
    assert len(rows) == hours
    from_csv = parse_meter_csv(gridhook_csv(rows), NEW_YORK)
    from_gb = parse_meter_csv(green_button_csv(rows, NEW_YORK, "nyc1", "main"), NEW_YORK)
    assert (from_csv.format, from_gb.format) == ("csv", "green-button")
    for parsed in (from_csv, from_gb):
        assert [(i.interval_start, i.interval_end) for i in parsed.intervals] == [
            (r.start, r.end) for r in rows
        ]
        for interval, row in zip(parsed.intervals, rows, strict=True):
            # kWh with three decimals: within 1 Wh an hour of the model's mean
            assert interval.mean_w == pytest.approx(row.watts, abs=1.0)


def test_15_minute_intervals_in_a_half_hour_zone_parse_too() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    model = site_model(zone)
    since, until = history_window(
        2, datetime(2026, 6, 3, 12, 7, tzinfo=UTC), zone, INTERVALS["15m"]
    )
    rows = list(readings(model, "backup_power_feed", since, until, INTERVALS["15m"]))
    parsed = parse_meter_csv(green_button_csv(rows, zone, "blr1", "backup_power_feed"), zone)
    assert [i.interval_start for i in parsed.intervals] == [r.start for r in rows]
    assert rows[0].start.astimezone(zone).time().isoformat() == "00:00:00"


def test_the_window_is_the_whole_local_days_before_the_clock_start_and_today_so_far() -> None:
    clock_start = datetime(2026, 11, 30, 14, 20, tzinfo=UTC)  # 09:20 in New York
    since, until = history_window(45, clock_start, NEW_YORK, INTERVALS["15m"])
    assert since.astimezone(NEW_YORK).isoformat() == "2026-10-16T00:00:00-04:00"
    assert until.astimezone(NEW_YORK).isoformat() == "2026-11-30T09:15:00-05:00"
    rows = list(readings(site_model(), "main_power_feed", since, until, INTERVALS["15m"]))
    assert rows[0].start == since and rows[-1].end == until
    assert all(a.end == b.start for a, b in itertools.pairwise(rows))  # no gap, no overlap
    assert len(rows) == 45 * 96 + 4 + 37  # one 25-hour day, and 09:15 of today


def test_write_history_writes_every_feed_in_both_formats_with_an_index(tmp_path: Path) -> None:
    argv = [
        "--history", "3", "--out", str(tmp_path), "--load-seed", "7",
        "--site-name", "phx1", "--site-name", "ber1",
        "--timezone", "America/Phoenix", "--timezone", "ber1=Europe/Berlin",
        "--clock", "1440@2026-11-30T14:00:00Z@2026-12-01T00:00:00Z",
    ]  # fmt: skip
    assert main(argv) == 0
    index = json.loads((tmp_path / "index.json").read_text())["files"]
    assert {(f["site"], f["timezone"], f["feed"], f["format"]) for f in index} == {
        (site, zone, feed, kind)
        for site, zone in (("phx1", "America/Phoenix"), ("ber1", "Europe/Berlin"))
        for feed in ("main_power_feed", "backup_power_feed")
        for kind in ("csv", "green-button")
    }
    for entry in index:
        assert entry["until"] == "2026-11-30T14:00:00Z"  # the clock's start, on the hour
        parsed = parse_meter_csv(Path(entry["path"]).read_text(), ZoneInfo(entry["timezone"]))
        assert len(parsed.intervals) == entry["intervals"]
        # The model of the simulator that serves this site: same seed, site and zone.
        model = site_model(ZoneInfo(entry["timezone"]), seed=7, site=entry["site"])
        first = parsed.intervals[0]
        # 15-minute energies to 1 Wh: within 2 W of the model's mean
        assert first.mean_w == pytest.approx(
            model.mean_watts(entry["feed"], first.interval_start, first.interval_end), abs=2.0
        )


def test_history_without_a_load_seed_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--history", "3", "--out", "/nonexistent"])
    assert exited.value.code == 2
    assert "give --load-seed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("event_local", "method"),
    [
        ("2026-11-30T14:00", "caiso-10-in-10"),  # a Monday afternoon
        ("2026-11-30T14:00", "pjm-high-4-of-5"),
        ("2026-11-29T11:00", "caiso-10-in-10"),  # a Sunday
    ],
)
def test_a_baseline_from_the_history_matches_the_live_load(event_local: str, method: str) -> None:
    """45 days of history, then the event day's own load as the live simulator draws it
    (the model, uncurtailed): gridhook's baseline follows the live load's shape — the
    baseline of each event hour within a few percent of what was drawn, so a day without
    curtailment delivers about nothing."""
    model = LoadModel(
        7, "nyc1", NEW_YORK, [("main", 10e6, LoadShape(day_to_day=0.02, noise=0.015))]
    )
    start = datetime.fromisoformat(event_local).replace(tzinfo=NEW_YORK).astimezone(UTC)
    end = start + timedelta(hours=2)
    day_starts = start.astimezone(NEW_YORK).replace(hour=0, minute=0).astimezone(UTC)
    since, history_until = history_window(45, day_starts, NEW_YORK, INTERVALS["15m"])
    until = day_starts + timedelta(days=1)
    history = list(readings(model, "main", since, history_until, INTERVALS["15m"]))
    live_day = list(readings(model, "main", history_until, until, INTERVALS["15m"]))
    meter = parse_meter_csv(gridhook_csv(history + live_day), NEW_YORK)
    load = load_from_meter(
        meter.intervals, site="nyc1", feed="main", tz=NEW_YORK, since=since, until=until,
        resolution="1h",
    )  # fmt: skip
    result = settle(load, event_start=start, event_end=end, now=until, method=method)
    assert result.status == "complete", result.reason
    for interval in result.intervals:
        assert interval.baseline_w == pytest.approx(interval.actual_w, rel=0.05)
    drawn_wh = sum(i.actual_w for i in result.intervals) * 1.0
    assert result.delivered_wh is not None
    assert abs(result.delivered_wh) < 0.03 * drawn_wh
