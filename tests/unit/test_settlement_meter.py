"""Meter files: gridhook's CSV and Green Button "Download My Data", all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gridhook.settlement import MeterParseError, parse_meter_csv
from tests.unit.settlement_helpers import NY

LA = ZoneInfo("America/Los_Angeles")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def spans(text: str, tz: ZoneInfo = NY) -> list[tuple[datetime, datetime, float]]:
    return [
        (r.interval_start, r.interval_end, r.mean_w) for r in parse_meter_csv(text, tz).intervals
    ]


def error(text: str, tz: ZoneInfo = NY) -> MeterParseError:
    with pytest.raises(MeterParseError) as caught:
        parse_meter_csv(text, tz)
    return caught.value


# -- gridhook CSV ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "value", "watts"),
    [
        ("kwh", "250", 1_000_000.0),  # 250 kWh in 15 minutes: 1 MW
        ("mwh", "0.25", 1_000_000.0),
        ("kw", "1000", 1_000_000.0),
        ("MW", "1.5", 1_500_000.0),
    ],
)
def test_csv_energy_or_demand_becomes_mean_watts(unit: str, value: str, watts: float) -> None:
    text = (
        f"interval_start,interval_end,{unit}\n2025-06-18T14:00:00Z,2025-06-18T14:15:00Z,{value}\n"
    )
    assert spans(text) == [(utc(2025, 6, 18, 14), utc(2025, 6, 18, 14, 15), watts)]


def test_csv_offsets_are_honoured_and_rows_come_back_sorted() -> None:
    text = (
        "interval_start,interval_end,kw\n"
        "2025-06-18T10:15:00-04:00,2025-06-18T10:30:00-04:00,2\n"
        "2025-06-18T14:00:00Z,2025-06-18T14:15:00Z,1\n"
    )
    assert [s[2] for s in spans(text)] == [1000.0, 2000.0]


@pytest.mark.parametrize(
    ("row", "line", "says"),
    [
        ("2025-06-18T14:00:00,2025-06-18T14:15:00Z,1", 3, "not an RFC 3339 time with an offset"),
        ("2025-06-18T14:15:00Z,2025-06-18T14:00:00Z,1", 3, "must be after"),
        ("2025-06-18T14:00:00Z,2025-06-18T14:15:00Z,lots", 3, "'lots' is not a number"),
        ("2025-06-18T14:00:00Z,2025-06-18T14:15:00Z,nan", 3, "is not a number"),
        ("2025-06-18T14:00:00Z,2025-06-18T14:15:00Z", 3, "expected 3 fields, got 2"),
        ("2025-06-18T14:10:00Z,2025-06-18T14:25:00Z,1", 3, "overlaps line 2"),
    ],
)
def test_a_bad_row_rejects_the_whole_file_naming_its_line(row: str, line: int, says: str) -> None:
    text = f"interval_start,interval_end,kwh\n2025-06-18T14:00:00Z,2025-06-18T14:15:00Z,1\n{row}\n"
    caught = error(text)
    assert caught.line == line and says in str(caught) and str(caught).startswith(f"line {line}:")


def test_not_a_meter_file_says_what_it_expected() -> None:
    assert "interval_start,interval_end" in str(error("when,what\n1,2\n"))
    assert error("").line == 1
    assert "header must be" in str(error("interval_start,interval_end,therms\n"))
    assert "no readings" in str(error("interval_start,interval_end,kwh\n\n"))


# -- Green Button ----------------------------------------------------------------------------

# PG&E's shape: a BOM, a preamble with a quoted comma, USAGE (kWh) with no UNITS column,
# END TIME the last minute of the interval, COST with a dollar sign, a trailing NOTES.
PGE = (
    "\ufeffName,JANE DOE\n"
    'Address,"123 MAIN ST, SAN JOSE CA 95124"\n'
    "Account Number,1234567890\n"
    "Service,Service 1\n"
    "\n"
    "TYPE,DATE,START TIME,END TIME,USAGE (kWh),COST,NOTES\n"
    "Electric usage,2025-06-18,14:00,14:14,250.00,$31.25 ,\n"
    'Electric usage,2025-06-18,14:15,14:29,"1,000.00",$125.00,\n'
)


def test_green_button_with_a_preamble_and_inclusive_end_minutes() -> None:
    data = parse_meter_csv(PGE, LA)
    assert data.format == "green-button"
    assert [(r.interval_start, r.interval_end, r.mean_w, r.line) for r in data.intervals] == [
        (utc(2025, 6, 18, 21), utc(2025, 6, 18, 21, 15), 1_000_000.0, 7),  # 14:00 PDT
        (utc(2025, 6, 18, 21, 15), utc(2025, 6, 18, 21, 30), 4_000_000.0, 8),
    ]


def test_green_button_with_a_units_column_slashed_dates_and_exclusive_ends() -> None:
    text = (
        "TYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES\n"
        "Electric usage,6/18/2025,0:00,1:00,1.5,MWh,$0.00,\n"
        "Electric usage,6/18/2025,1:00,2:00,1200,kW,$0.00,\n"
    )
    assert spans(text) == [
        (utc(2025, 6, 18, 4), utc(2025, 6, 18, 5), 1_500_000.0),
        (utc(2025, 6, 18, 5), utc(2025, 6, 18, 6), 1_200_000.0),
    ]


def test_green_button_fall_back_hour_twice_in_file_order_either_way() -> None:
    rows = [
        "Electric usage,2025-11-02,00:00,00:59,1.0,kWh,,",
        "Electric usage,2025-11-02,01:00,01:59,2.0,kWh,,",  # 01:00 PDT
        "Electric usage,2025-11-02,01:00,01:59,3.0,kWh,,",  # 01:00 PST
        "Electric usage,2025-11-02,02:00,02:59,4.0,kWh,,",
    ]
    header = "TYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES\n"
    expected = [
        (utc(2025, 11, 2, 7), utc(2025, 11, 2, 8), 1000.0),
        (utc(2025, 11, 2, 8), utc(2025, 11, 2, 9), 2000.0),
        (utc(2025, 11, 2, 9), utc(2025, 11, 2, 10), 3000.0),
        (utc(2025, 11, 2, 10), utc(2025, 11, 2, 11), 4000.0),
    ]
    assert spans(header + "\n".join(rows), LA) == expected
    assert spans(header + "\n".join(reversed(rows)), LA) == expected  # newest first
    third = header + "\n".join([*rows, rows[1]])
    assert "more than twice" in str(error(third, LA))


def test_green_button_interval_across_the_fall_back_with_an_exclusive_end() -> None:
    text = (
        "TYPE,DATE,START TIME,END TIME,USAGE,UNITS\n"
        "Electric usage,2025-11-02,01:45,01:00,0.25,kWh\n"  # 01:45 PDT to 01:00 PST: 15 min
    )
    assert spans(text, LA) == [(utc(2025, 11, 2, 8, 45), utc(2025, 11, 2, 9), 1000.0)]


def test_green_button_spring_forward_gap_is_refused_naming_the_line() -> None:
    text = (
        "TYPE,DATE,START TIME,END TIME,USAGE,UNITS\n"
        "Electric usage,2025-03-09,01:00,01:59,1,kWh\n"
        "Electric usage,2025-03-09,02:00,02:59,1,kWh\n"
    )
    caught = error(text, LA)
    assert caught.line == 3 and "does not exist in America/Los_Angeles" in str(caught)


def test_green_button_missing_reading_is_listed_not_filled() -> None:
    text = (
        "TYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES\n"
        "Electric usage,2025-06-18,00:00,00:59,1,kWh,,\n"
        "Electric usage,2025-06-18,01:00,01:59,,kWh,,\n"
        "Electric usage,2025-06-18,02:00,02:59,1,kWh,,\n"
    )
    data = parse_meter_csv(text, NY)
    assert len(data.intervals) == 2 and data.missing_lines == (3,)


def test_green_button_net_of_export() -> None:
    text = (
        "TYPE,DATE,START TIME,END TIME,IMPORT (kWh),EXPORT (kWh),COST\n"
        "Electric usage,2025-06-18,00:00,00:59,5,2,$0\n"
    )
    assert spans(text)[0][2] == 3000.0


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("Natural gas usage,2025-06-18,00:00,23:59,1.0,therms,,", "is not electric usage"),
        ("Electric usage,2025-06-31,00:00,00:59,1.0,kWh,,", "DATE '2025-06-31'"),
        ("Electric usage,2025-06-18,25:00,00:59,1.0,kWh,,", "START TIME '25:00'"),
        ("Electric usage,2025-06-18,00:00,00:59,1.0,therms,,", "UNITS 'therms'"),
        ("Electric usage,2025-06-18,00:00,00:59,one,kWh,,", "USAGE 'one' is not a number"),
        ("Electric usage,2025-06-18,00:30,01:29,1.0,kWh,,", "overlaps line 3"),
    ],
)
def test_green_button_bad_rows_name_their_line(row: str, says: str) -> None:
    text = (
        "Name,X\n"  # line 1: a preamble line counts
        "TYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES\n"
        "Electric usage,2025-06-18,00:00,00:59,1.0,kWh,,\n"
        f"{row}\n"
    )
    caught = error(text)
    assert caught.line == 4 and says in str(caught), str(caught)
