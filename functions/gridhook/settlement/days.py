"""Local days: where a site's day begins and ends, and whether it is a weekday.

A day here is the site's local calendar day (issue 14): it has 23, 24 or 25 hours. A day
is a *weekday* when it is Monday to Friday and not a holiday; otherwise it is a
*weekend/holiday* day, the other day type baselines match on. The default holidays are
NERC's six "additional off-peak days" (see :class:`NercHolidays`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = [
    "NERC_HOLIDAY_NAMES",
    "NERC_HOLIDAY_WINDOWS",
    "HolidayCalendar",
    "NercHolidays",
    "day_type",
    "local_day",
    "local_midnight",
    "nerc_holidays",
]

#: The six holidays NERC counts as off-peak days, as the ``holidays`` package names them
#: (``language="en_US"``). When one falls on a Sunday the Monday after is the holiday;
#: on a Saturday it stays on the Saturday (already a weekend day).
NERC_HOLIDAY_NAMES = frozenset(
    {
        "New Year's Day",
        "Memorial Day",
        "Independence Day",
        "Labor Day",
        "Thanksgiving Day",
        "Christmas Day",
    }
)

#: Where NERC's holidays can fall (month, first day, last day): fixed dates, the Monday
#: after one that is a Sunday, and the Mondays and the Thursday their rules name. A day
#: outside these windows is no NERC holiday, so most days never load ``holidays`` (whose
#: import and first year cost a third of a second); a test holds the windows to the package.
NERC_HOLIDAY_WINDOWS = (
    (1, 1, 2),  # New Year's Day (or Monday 2 January)
    (5, 25, 31),  # Memorial Day: the last Monday of May
    (7, 4, 5),  # Independence Day
    (9, 1, 7),  # Labor Day: the first Monday of September
    (11, 22, 28),  # Thanksgiving Day: the fourth Thursday of November
    (12, 25, 26),  # Christmas Day
)

WEEKDAY = "weekday"
WEEKEND_HOLIDAY = "weekend_holiday"


class HolidayCalendar(Protocol):
    """Anything that answers ``day in calendar``: a set of dates, a ``holidays`` object."""

    def __contains__(self, day: object, /) -> bool: ...


@lru_cache(maxsize=64)
def _nerc_year(year: int) -> frozenset[date]:
    import holidays  # imported on first use: ~0.1 s, and only baselines need it

    us = holidays.country_holidays("US", years=year, observed=False, language="en_US")
    days = set()
    for day, name in us.items():
        if name in NERC_HOLIDAY_NAMES:
            days.add(day + timedelta(days=1) if day.weekday() == 6 else day)
    return frozenset(days)


def nerc_holidays(year: int) -> frozenset[date]:
    """NERC's six off-peak holidays of one year, Sunday holidays moved to the Monday."""
    return _nerc_year(year)


class NercHolidays:
    """The default holiday calendar: NERC's six (``date in NercHolidays()``)."""

    def __contains__(self, day: object, /) -> bool:
        if not isinstance(day, date):
            return False
        if not any(m == day.month and a <= day.day <= b for m, a, b in NERC_HOLIDAY_WINDOWS):
            return False
        # A Sunday New Year's Day of next year moves to Monday 2 January; a 1 January is
        # never pulled back into the year before, so one year's set is enough.
        return day in _nerc_year(day.year)

    def __repr__(self) -> str:
        return "NercHolidays()"


def day_type(day: date, holidays: HolidayCalendar) -> str:
    """``"weekday"`` (Monday to Friday, not a holiday) or ``"weekend_holiday"``."""
    if day.weekday() >= 5 or day in holidays:
        return WEEKEND_HOLIDAY
    return WEEKDAY


def local_midnight(day: date, tz: ZoneInfo) -> float:
    """The first instant of ``day`` in ``tz``, as POSIX seconds.

    Where midnight itself falls in a spring-forward gap, the day begins at the transition
    (fold 0 resolves a gap time with the offset before it, which lands there).
    """
    return datetime.combine(day, time(0), tzinfo=tz).timestamp()


def local_day(instant: float, tz: ZoneInfo) -> date:
    """The local calendar day an instant (POSIX seconds) falls on in ``tz``."""
    return datetime.fromtimestamp(instant, UTC).astimezone(tz).date()


class Midnights:
    """Local midnights of one zone, cached: baselines ask for the same days many times."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._cache: dict[date, float] = {}
        self.of: Callable[[date], float] = self._of

    def _of(self, day: date) -> float:
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache[day] = local_midnight(day, self.tz)
        return cached

    def day_span(self, day: date) -> tuple[float, float]:
        """``[start, end)`` of the local day, POSIX seconds (23, 24 or 25 hours)."""
        return self._of(day), self._of(day + timedelta(days=1))

    def instant(self, day: date, wall: time, fold: int) -> float:
        """The instant a local wall-clock time on ``day`` denotes (PEP 495 ``fold``).

        On a day without a transition that is midnight plus the wall time; on a DST day it
        is resolved by zoneinfo: ``fold`` picks the occurrence of a repeated time, and a
        time in the spring-forward gap lands one hour later on the wall.
        """
        start, end = self.day_span(day)
        if end - start == 86400.0:
            return start + wall.hour * 3600 + wall.minute * 60 + wall.second
        return datetime.combine(day, wall, tzinfo=self.tz).replace(fold=fold).timestamp()
