"""Shared builders for the settlement tests: hourly series from a load shape, times."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gridhook.settlement import IntervalLoad, LoadSeries

NY = ZoneInfo("America/New_York")
KW = 1e3

#: NERC's holidays in the months these tests use, by hand (not from the code under test).
HOLIDAYS_2025 = {date(2025, 5, 26), date(2025, 7, 4), date(2025, 9, 1)}


def at(day: date, hour: int, minute: int = 0, *, fold: int = 0, tz: ZoneInfo = NY) -> datetime:
    """A local wall time as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz).replace(fold=fold)


def weekend_or_holiday(day: date) -> bool:
    return day.weekday() >= 5 or day in HOLIDAYS_2025


def standard_kw(day: date, hour: int) -> float:
    """The test load: 1000 kW + the day of the month on weekdays, 500 kW + it on weekend
    days and holidays, plus 10 kW per wall-clock hour."""
    base = 500 if weekend_or_holiday(day) else 1000
    return base + day.day + 10 * hour


Level = Callable[[date, int, int], float | None]  # (local day, wall hour, fold) -> kW


def hourly(
    level: Level,
    first: date,
    last: date,
    *,
    tz: ZoneInfo = NY,
    site: str = "s1",
    feed: str = "f1",
    source: str = "samples",
) -> LoadSeries:
    """Hourly intervals over the local days ``first``..``last``; ``level`` gives kW or None
    (missing). Walks absolute hours from local midnight, so DST days get 23 or 25."""
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    records = []
    t = start
    while t < end:
        local = t.astimezone(tz)
        kw = level(local.date(), local.hour, local.fold)
        records.append(
            IntervalLoad(
                site,
                feed,
                t,
                t + timedelta(hours=1),
                None if kw is None else kw * KW,
                source,
                0.0 if kw is None else 1.0,
            )
        )
        t += timedelta(hours=1)
    return LoadSeries.from_intervals(records, tz=tz, resolution="1h", since=start, until=end)


def scenario(
    event_day: date,
    event_hours: Iterable[int],
    *,
    event_kw: float,
    other_kw: float | None,
    missing: Iterable[tuple[date, int]] = (),
    first: date | None = None,
    tz: ZoneInfo = NY,
) -> LoadSeries:
    """The standard load, except on the event day: ``event_kw`` in its event hours and
    ``other_kw`` in every other hour (None: the standard load there too)."""
    hours = set(event_hours)
    holes = set(missing)

    def level(day: date, hour: int, fold: int) -> float | None:
        if (day, hour) in holes:
            return None
        if day == event_day:
            if hour in hours:
                return event_kw
            if other_kw is not None:
                return other_kw
        return standard_kw(day, hour)

    return hourly(
        level, first or event_day - timedelta(days=50), event_day + timedelta(days=1), tz=tz
    )
