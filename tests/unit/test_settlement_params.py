"""/settlement's and ``gridhook settlement``'s parameters follow the report's rules (one
parser, ``gridhook.report.params``), and the names they accept are the core's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridhook.intervals.load import LOAD_SOURCES
from gridhook.report.params import (
    SETTLEMENT_INTERVALS,
    SETTLEMENT_METHODS,
    SETTLEMENT_SOURCES,
    BadParameter,
    report_params,
    settlement_params,
)
from gridhook.settlement import METHODS, RESOLUTIONS

NOW = datetime(2026, 5, 15, 21, 30, tzinfo=UTC)


def test_the_choices_are_the_cores() -> None:
    assert SETTLEMENT_METHODS == METHODS
    assert set(SETTLEMENT_SOURCES) == set(LOAD_SOURCES)
    assert set(SETTLEMENT_INTERVALS) == set(RESOLUTIONS)


def test_defaults_and_the_reports_range_rules() -> None:
    query = settlement_params({}, now=NOW)
    assert (query.since, query.until) == (NOW - timedelta(days=30), NOW)
    assert (query.method, query.source, query.interval, query.format) == (
        None,
        "auto",
        "1h",
        "html",
    )
    values = {"since": "7d", "until": "2026-05-15T00:00:00z", "feed": "main"}
    report = report_params(values, now=NOW)
    query = settlement_params({**values, "method": "PJM-Same-Day"}, now=NOW)
    assert (query.since, query.until, query.feed_tag) == (
        report.since,
        report.until,
        report.feed_tag,
    )
    assert query.method == "pjm-same-day" and query.sites == report.sites
    assert settlement_params({}, now=NOW, formats=("table", "csv")).format == "table"


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"method": "10-in-10"}, "method"),
        ({"source": "meters"}, "source"),
        ({"interval": "30m"}, "interval"),
        ({"since": "2026-05-20T00:00:00Z"}, "since"),
        ({"site": ("a", "b")}, "site"),
        ({"feed": "a\x00b"}, "feed"),
        ({"format": ("csv", "json")}, "format"),
    ],
)
def test_a_bad_value_names_its_parameter(values: dict, name: str) -> None:
    with pytest.raises(BadParameter) as raised:
        settlement_params(values, now=NOW)
    assert raised.value.name == name
