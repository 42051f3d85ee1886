"""Figures for people, formatted in one place (gridhook.display) for every view."""

from __future__ import annotations

import pytest

from gridhook.display import (
    format_duration,
    format_load,
    format_mw,
    format_mwh,
    format_target,
    is_default_target,
    to_mw,
)


@pytest.mark.parametrize("zero", [0, 0.0, -0.0])
def test_a_zero_target_is_the_default(zero: float) -> None:
    # DPS: "--value=0 with any unit also sets the default constraint" (issue 15 item 12).
    assert is_default_target(zero) and is_default_target(None)
    assert format_target(zero) == format_target(None) == "default"
    assert format_target(zero, unit=False) == "default"
    assert format_target(6.5e6) == "6.5 MW" and format_target(6.5e6, unit=False) == "6.5"


def test_a_missing_load_is_unknown_and_a_zero_load_is_zero() -> None:
    assert format_load(None) == "unknown" and format_load(None, unit=False) == "unknown"
    assert format_load(0) == "0 MW"  # a measured zero is a figure, not the default
    assert format_load(4.2e6) == "4.2 MW"


def test_megawatts_to_the_kilowatt() -> None:
    assert [format_mw(w) for w in (6.5e6, 1.2e9, 12_345.0, 1e6 / 3, -1.0)] == [
        "6.5 MW",
        "1,200 MW",
        "0.012 MW",
        "0.333 MW",
        "0 MW",
    ]
    assert format_mw(None) == "—" and format_mw(None, missing="-") == "-"
    assert format_mw(3.5e6, unit=False) == "3.5"
    assert to_mw(2.5e6) == 2.5 and to_mw(None) is None


def test_megawatt_hours_to_two_decimals() -> None:
    assert format_mwh(3.5e6) == "3.50 MWh" and format_mwh(15_224_000) == "15.22 MWh"
    assert format_mwh(2.1e6, unit=False) == "2.10" and format_mwh(None) == "—"
    assert format_mwh(-1.0) == "0.00 MWh"


def test_one_duration_style_everywhere() -> None:
    assert format_duration(0.4) == "0.4 s" and format_duration(605) == "10 min 05 s"
    assert format_duration(48 * 3600) == "2 d 00 h"
