"""Dataclasses <-> protobuf by NAME: event and unit names resolve through enum value names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dpsapi.v1 import nvgrid_pb2
from gridhook.nvgrid import Load, LoadTarget, NvGridConfigError, convert


def test_event_names_map_to_the_enum_by_name() -> None:
    request = nvgrid_pb2.RegisterWebhookRequest
    assert convert.event_numbers(["start_ramp_up", "end_ramp_up", "START_RAMP_DOWN"]) == [
        request.POWER_EVENT_START_RAMP_UP,
        request.POWER_EVENT_END_RAMP_UP,
        request.POWER_EVENT_START_RAMP_DOWN,
    ]
    assert convert.event_numbers(["POWER_EVENT_END_RAMP_DOWN"]) == [
        request.POWER_EVENT_END_RAMP_DOWN
    ]


@pytest.mark.parametrize("bad", ["ramp", "unspecified", "POWER_EVENT_UNSPECIFIED", ""])
def test_unknown_events_are_config_errors_listing_the_choices(bad: str) -> None:
    with pytest.raises(NvGridConfigError, match="start_ramp_up, end_ramp_up"):
        convert.event_numbers([bad])


def test_no_events_means_all() -> None:
    assert list(convert.register_webhook_request("http://x/", None).for_events) == []
    assert list(convert.register_webhook_request("http://x/", []).for_events) == []


@pytest.mark.parametrize(
    ("raw", "short"),
    [("MW", "mw"), ("megawatt", "mw"), ("kilowatts", "kw"), ("UNIT_WATT", "w"), ("w", "w")],
)
def test_unit_spellings(raw: str, short: str) -> None:
    assert convert.parse_unit(raw) == short


def test_unknown_unit() -> None:
    with pytest.raises(NvGridConfigError, match="unknown unit"):
        convert.parse_unit("hp")


def test_load_target_round_trip() -> None:
    start = datetime(2025, 10, 24, 17, tzinfo=UTC)
    target = LoadTarget(
        start_time=start,
        end_time=start + timedelta(hours=1),
        target_load=Load(6.5, "kw"),
        best_effort=True,
        feed_tags=("main_power_feed",),
        correlation_id="c-1",
    )
    [message] = convert.load_target_request([target]).load_targets
    assert message.target_load.unit == nvgrid_pb2.LoadValue.UNIT_KILOWATT
    assert convert.load_target_from_proto(message) == target


def test_null_target_and_open_end_stay_unset() -> None:
    target = LoadTarget(start_time=datetime(2025, 1, 1, tzinfo=UTC))
    [message] = convert.load_target_request([target]).load_targets
    assert not message.HasField("target_load") and not message.interval.HasField("end_time")
    assert convert.load_target_from_proto(message) == target


def test_naive_times_are_utc_and_offsets_are_converted() -> None:
    naive = datetime(2025, 10, 24, 17)
    plus_two = datetime(2025, 10, 24, 19, tzinfo=timezone(timedelta(hours=2)))
    for when in (naive, plus_two):
        [message] = convert.load_target_request([LoadTarget(start_time=when)]).load_targets
        assert convert.load_target_from_proto(message).start_time == datetime(
            2025, 10, 24, 17, tzinfo=UTC
        )


def test_action_result_uses_status_names() -> None:
    response = nvgrid_pb2.LoadTargetResponse(
        code=nvgrid_pb2.LoadTargetResponse.STATUS_CODE_ERROR, diag_msg="nope"
    )
    detail = response.details.add()
    detail.code = nvgrid_pb2.LoadTargetResponse.STATUS_CODE_ERROR
    detail.feed_tag = "main_power_feed"
    result = convert.action_result(response)
    assert result.code == "STATUS_CODE_ERROR" and not result.ok
    assert result.details[0].feed_tag == "main_power_feed"
