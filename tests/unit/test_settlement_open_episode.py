"""A feed's episode still going (no end_time: until replaced) inside a baseline's look-back
makes its days ineligible and is named so, instead of failing the settlement (it raised
OverflowError naming its infinite end, and took the report and the control room with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gridhook.settlement import load_from_samples, settle

TZ = ZoneInfo("America/New_York")
START = datetime(2026, 3, 2, 5, tzinfo=UTC)  # Monday 00:00 EST
END = START + timedelta(days=21)


def test_an_open_episode_in_the_look_back_excludes_its_days_and_says_still_going() -> None:
    minutes = (START + timedelta(minutes=m) for m in range(21 * 1440))
    series = load_from_samples(
        [(at, 10e6) for at in minutes],
        site="default",
        feed="main",
        tz=TZ,
        since=START,
        until=END,
        resolution="1h",
    )
    event = START + timedelta(days=18, hours=14)  # Friday 19 March, 14:00 EDT
    still_going = (START + timedelta(days=17, hours=14), None)  # from the day before
    result = settle(
        series,
        event_start=event,
        event_end=event + timedelta(hours=2),
        now=END,
        target_w=6e6,
        other_events=[still_going],
    )
    clashes = [e for e in result.excluded_days if e.reason == "event"]
    assert clashes and all("still going" in e.detail for e in clashes)
    assert result.status == "complete" and result.delivered_mwh == 0.0
