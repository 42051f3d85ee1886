"""Delivered curtailment: interval load, customer baselines and settlement — pure.

Intervals in, figures out: nothing here reads or writes a store (a loader feeds it; see
ARCHITECTURE.md "Interval load, baselines and settlement" and docs/settlement.md).

- ``samples``: DPS samples as arrays; 5-minute buckets with the coverage rule.
- ``intervals``: the interval load model (:class:`IntervalLoad`, :class:`LoadSeries`) on a
  grid aligned in the site's local time, from samples or meter readings.
- ``rollup``: the hourly rollup record and the rule that joins rollups and raw samples.
- ``days``: local days, weekday or weekend/holiday, NERC's holidays.
- ``baselines``: the four methods and their parameters.
- ``delivered``: per-event figures (:func:`settle`) and range totals that add up.
- ``meter``: meter CSV parsing (gridhook's CSV and Green Button), all or nothing.

Quick use::

    load = load_from_samples(samples, site="phx1", feed="main", tz=ZoneInfo("America/Phoenix"),
                             since=since, until=until, resolution="1h")
    result = settle_episode(load, episode, now=now, method="caiso-10-in-10",
                            other_episodes=episodes)
    result.status, result.delivered_mwh, result.performance_factor
"""

from __future__ import annotations

from gridhook.settlement.baselines import (
    DEFAULT_METHOD,
    METHODS,
    STATUSES,
    Adjustment,
    BaselineParams,
    DayExclusion,
)
from gridhook.settlement.days import NercHolidays, day_type, nerc_holidays
from gridhook.settlement.delivered import (
    EpisodeLike,
    SettledInterval,
    Settlement,
    SettlementTotals,
    data_range,
    event_window,
    range_totals,
    settle,
    settle_episode,
    settle_episodes,
)
from gridhook.settlement.errors import MeterParseError, SettlementError, SettlementInputError
from gridhook.settlement.intervals import (
    DEFAULT_MIN_COVERAGE,
    RESOLUTIONS,
    SOURCES,
    IntervalLoad,
    LoadSeries,
    MeterInterval,
    load_from_meter,
    load_from_samples,
)
from gridhook.settlement.meter import MeterData, parse_meter_csv
from gridhook.settlement.rollup import (
    HourlyRollup,
    hour_complete,
    load_from_rollups,
    rollup_hours,
    sample_ranges_needed,
)
from gridhook.settlement.samples import DEFAULT_SAMPLE_CADENCE_S

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_MIN_COVERAGE",
    "DEFAULT_SAMPLE_CADENCE_S",
    "METHODS",
    "RESOLUTIONS",
    "SOURCES",
    "STATUSES",
    "Adjustment",
    "BaselineParams",
    "DayExclusion",
    "EpisodeLike",
    "HourlyRollup",
    "IntervalLoad",
    "LoadSeries",
    "MeterData",
    "MeterInterval",
    "MeterParseError",
    "NercHolidays",
    "SettledInterval",
    "Settlement",
    "SettlementError",
    "SettlementInputError",
    "SettlementTotals",
    "data_range",
    "day_type",
    "event_window",
    "hour_complete",
    "load_from_meter",
    "load_from_rollups",
    "load_from_samples",
    "nerc_holidays",
    "parse_meter_csv",
    "range_totals",
    "rollup_hours",
    "sample_ranges_needed",
    "settle",
    "settle_episode",
    "settle_episodes",
]
