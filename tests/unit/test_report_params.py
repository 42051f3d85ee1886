"""The time ranges and filters reports accept (CLI and HTTP share these rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridhook.report.params import (
    EARLIEST,
    MAX_RANGE,
    BadParameter,
    episode_params,
    parse_choice,
    parse_range,
    parse_status,
    parse_tag,
    parse_when,
    report_params,
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
        # RFC 3339 lets T and Z be lowercase (section 5.6, NOTE).
        ("2026-12-02t04:00:00z", datetime(2026, 12, 2, 4, tzinfo=UTC)),
        ("2026-12-02 04:00:00Z", datetime(2026, 12, 2, 4, tzinfo=UTC)),
        ("12H", NOW - timedelta(hours=12)),
    ],
)
def test_times_are_rfc3339_or_ages_before_now(text, expected) -> None:
    assert parse_when("since", text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "30 d",
        "-3d",
        "3w",
        "2026-13-01",
        "",
        # Times a datetime cannot hold once converted, or that reports cannot look around.
        "9999999d",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1969-12-31T23:59:59Z",
        "9000-01-01T00:00:00Z",
    ],
)
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
    ("since", "until", "blamed", "message"),
    [
        # Backwards: the one given; of two, the one farther from now.
        ("2099-01-01T00:00:00Z", None, "since", "is not before until"),
        (None, "1970-01-01T00:00:00Z", "until", "is not after since"),
        ("1h", "2h", "until", "is not after since"),
        ("2h", "2h", "since", "is not before until"),
        # Too long: the same rule (issue 15: since=1d&until=2099-… blamed since).
        (f"{MAX_RANGE.days + 1}d", None, "since", "at most 400 days"),
        ("1d", "2099-01-01T00:00:00Z", "until", "at most 400 days"),
        ("2020-01-01T00:00:00Z", "1d", "since", "at most 400 days"),
    ],
)
def test_a_bad_range_blames_the_parameter_that_is_wrong(since, until, blamed, message) -> None:
    with pytest.raises(BadParameter, match=message) as caught:
        parse_range(since, until, now=NOW, default_since=timedelta(days=1))
    assert caught.value.name == blamed


def test_a_range_in_the_future_within_the_bound_is_a_range() -> None:
    since, until = parse_range(
        "2098-12-01T00:00:00Z", "2099-01-01T00:00:00Z", now=NOW, default_since=timedelta(days=1)
    )
    assert until - since == timedelta(days=31)


def test_report_and_episode_parameters() -> None:
    query = report_params({"format": "CSV", "feed": "main", "since": "2d"}, now=NOW)
    assert (query.format, query.feed_tag, query.since, query.until) == (
        "csv",
        "main",
        NOW - timedelta(days=2),
        NOW,
    )
    assert report_params({}, now=NOW).since == NOW - timedelta(days=30)
    episodes = episode_params({"status": "Stalled"}, now=NOW)
    assert (episodes.status, episodes.since) == ("stalled", NOW - timedelta(days=7))
    # A correlation id is looked up by id: without since, any time (no 400-day bound).
    assert episode_params({"correlation_id": "c1"}, now=NOW).since == EARLIEST
    with pytest.raises(BadParameter) as caught:
        episode_params({"correlation_id": ""}, now=NOW)
    assert caught.value.name == "correlation_id"


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
