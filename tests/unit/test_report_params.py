"""The time ranges and filters reports accept (CLI and HTTP share these rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridhook.report.params import (
    MAX_RANGE,
    BadParameter,
    parse_choice,
    parse_range,
    parse_status,
    parse_tag,
    parse_when,
    single_values,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW - timedelta(days=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("90m", NOW - timedelta(minutes=90)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T02:00:00+02:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_times_are_rfc3339_or_ages_before_now(text, expected) -> None:
    assert parse_when("since", text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "30 d", "-3d", "3w", "2026-13-01", ""])
def test_a_bad_time_names_its_parameter(text) -> None:
    with pytest.raises(BadParameter) as caught:
        parse_when("until", text, NOW)
    assert caught.value.name == "until"


def test_range_defaults_to_ending_now() -> None:
    assert parse_range(None, None, now=NOW, default_since=timedelta(days=7)) == (
        NOW - timedelta(days=7),
        NOW,
    )
    assert parse_range("2h", "1h", now=NOW, default_since=timedelta(days=7)) == (
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=1),
    )


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("1h", "2h", "must be before until"),
        ("1h", "1h", "must be before until"),
        (f"{MAX_RANGE.days + 1}d", None, "at most"),
    ],
)
def test_backwards_or_overlong_ranges_are_refused(since, until, message) -> None:
    with pytest.raises(BadParameter, match=message) as caught:
        parse_range(since, until, now=NOW, default_since=timedelta(days=1))
    assert caught.value.name == "since"


def test_tags_and_choices() -> None:
    assert parse_tag("feed", "main_power_feed") == "main_power_feed"
    for bad in ("", "x" * 257, "tab\there"):
        with pytest.raises(BadParameter):
            parse_tag("feed", bad)
    assert parse_choice("format", "CSV", ("html", "json", "csv")) == "csv"
    with pytest.raises(BadParameter, match="not one of html, json"):
        parse_choice("format", "pdf", ("html", "json", "csv"))
    assert parse_status("stalled") == "stalled"
    with pytest.raises(BadParameter, match="complete, in_progress, stalled, partial"):
        parse_status("late")


@pytest.mark.parametrize(
    ("args", "name", "message"),
    [
        ({"feeds": ["a"]}, "feeds", "unknown parameter"),
        ({"feed": ["a", "b"]}, "feed", "more than once"),
        ({"feed": [""]}, "feed", "is empty"),
    ],
)
def test_query_parameters_are_single_known_and_not_empty(args, name, message) -> None:
    with pytest.raises(BadParameter, match=message) as caught:
        single_values(args, ("since", "feed"))
    assert caught.value.name == name
