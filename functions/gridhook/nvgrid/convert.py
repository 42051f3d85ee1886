"""Between the NvGrid protobuf messages and gridhook's dataclasses — by NAME only.

Field numbers in our ``nvgrid.proto`` are a reconstruction, so this module never uses a field
or enum number: fields are set and read by name, nested messages are reached through their
parent field (so their type names do not matter either), and enum values are resolved through
the field's descriptor by value name. Dropping in the vendor's ``nvgrid.proto`` and running
``make proto`` therefore needs no change here, as long as the names match the public docs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf.message import Message

from dpsapi.v1 import nvgrid_pb2

from .errors import NvGridConfigError
from .models import (
    POWER_EVENTS,
    UNITS,
    ActionResult,
    FeedCaps,
    FeedStatus,
    Load,
    LoadTarget,
    ResponseDetail,
)

__all__ = [
    "action_result",
    "event_numbers",
    "feed_caps_map",
    "feed_status_map",
    "load_target_from_proto",
    "load_target_request",
    "parse_unit",
    "register_webhook_request",
    "schedule_request",
    "status_name",
    "target_map",
]

_POWER_EVENT_ENUM = nvgrid_pb2.RegisterWebhookRequest.PowerEvent.DESCRIPTOR
_UNIT_ENUM = nvgrid_pb2.LoadValue.Unit.DESCRIPTOR
_STATUS_ENUM = nvgrid_pb2.LoadTargetResponse.StatusCode.DESCRIPTOR

# Long spellings (proto names, dpsctl style) accepted alongside the short ones.
_UNIT_ALIASES = {
    "watt": "w",
    "watts": "w",
    "kilowatt": "kw",
    "kilowatts": "kw",
    "megawatt": "mw",
    "megawatts": "mw",
}


# --- enums ---------------------------------------------------------------------------------


def event_numbers(events: Iterable[str]) -> list[int]:
    """``['start_ramp_down', ...]`` -> PowerEvent values, resolved by enum value NAME.

    Accepts the payload spelling (``start_ramp_down``), any case, or the full enum name
    (``POWER_EVENT_START_RAMP_DOWN``). Unknown names raise :class:`NvGridConfigError`.
    """
    numbers = []
    for raw in events:
        name = raw.strip().upper()
        if not name.startswith("POWER_EVENT_"):
            name = f"POWER_EVENT_{name}"
        value = _POWER_EVENT_ENUM.values_by_name.get(name)
        if value is None or name == "POWER_EVENT_UNSPECIFIED":
            raise NvGridConfigError(
                f"unknown power event {raw!r}: use one or more of {', '.join(POWER_EVENTS)} "
                "(none = all events)"
            )
        numbers.append(value.number)
    return numbers


def parse_unit(raw: str) -> str:
    """Any accepted unit spelling -> the short one (``w``, ``kw``, ``mw``)."""
    key = raw.strip().lower().removeprefix("unit_")
    key = _UNIT_ALIASES.get(key, key)
    if key not in UNITS:
        raise NvGridConfigError(
            f"unknown unit {raw!r}: use w, kw or mw (or watt, kilowatt, megawatt)"
        )
    return key


def _unit_number(unit: str) -> int:
    return _UNIT_ENUM.values_by_name[UNITS[parse_unit(unit)]].number


def _unit_name(number: int) -> str:
    value = _UNIT_ENUM.values_by_number.get(number)
    if value is None:
        return str(number)  # a unit this build does not know; keep the raw value visible
    for short, enum_name in UNITS.items():
        if enum_name == value.name:
            return short
    return value.name.lower().removeprefix("unit_")


def status_name(number: int) -> str:
    """A StatusCode value -> its enum name, e.g. ``STATUS_CODE_SUCCESS``."""
    value = _STATUS_ENUM.values_by_number.get(number)
    return value.name if value is not None else f"STATUS_CODE_{number}"


# --- requests ------------------------------------------------------------------------------


def _set_time(timestamp: Message, when: datetime) -> None:
    # Naive datetimes are taken as UTC: the API speaks UTC and local time would be a guess.
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    timestamp.FromDatetime(aware.astimezone(UTC))  # type: ignore[attr-defined]


def _fill_target(message: Any, target: LoadTarget) -> None:
    if target.start_time is not None:
        _set_time(message.interval.start_time, target.start_time)
    if target.end_time is not None:
        _set_time(message.interval.end_time, target.end_time)
    if target.target_load is not None:
        message.target_load.value = float(target.target_load.value)
        message.target_load.unit = _unit_number(target.target_load.unit)
    if target.best_effort:
        message.strategy.best_effort = True
    message.feed_tags.extend(target.feed_tags)
    if target.correlation_id:
        message.correlation_id = target.correlation_id


def load_target_request(targets: Sequence[LoadTarget]) -> Any:
    request = nvgrid_pb2.LoadTargetRequest()
    for target in targets:
        _fill_target(request.load_targets.add(), target)
    return request


def schedule_request(
    start_time: datetime | None, end_time: datetime | None, feed_tags: Sequence[str]
) -> Any:
    request = nvgrid_pb2.GetLoadScheduleRequest()
    if start_time is not None:
        _set_time(request.interval.start_time, start_time)
    if end_time is not None:
        _set_time(request.interval.end_time, end_time)
    request.feed_tags.extend(feed_tags)
    return request


def register_webhook_request(url: str, events: Iterable[str] | None) -> Any:
    request = nvgrid_pb2.RegisterWebhookRequest(url=url)
    # The enum's values are its numbers; the stubs type them as the enum class.
    request.for_events.extend(cast(list[Any], event_numbers(events or ())))
    return request


# --- responses -----------------------------------------------------------------------------


def _time(parent: Any, name: str) -> datetime | None:
    if not parent.HasField(name):
        return None
    return getattr(parent, name).ToDatetime(tzinfo=UTC)


def _load(parent: Any, name: str) -> Load | None:
    if not parent.HasField(name):
        return None
    value = getattr(parent, name)
    return Load(value=value.value, unit=_unit_name(value.unit))


def load_target_from_proto(message: Any) -> LoadTarget:
    interval = message.interval if message.HasField("interval") else None
    return LoadTarget(
        start_time=_time(interval, "start_time") if interval is not None else None,
        end_time=_time(interval, "end_time") if interval is not None else None,
        target_load=_load(message, "target_load"),
        best_effort=message.strategy.best_effort if message.HasField("strategy") else False,
        feed_tags=tuple(message.feed_tags),
        correlation_id=message.correlation_id,
    )


def target_map(entries: Any) -> dict[str, LoadTarget]:
    return {tag: load_target_from_proto(entries[tag]) for tag in sorted(entries)}


def feed_caps_map(entries: Any) -> dict[str, FeedCaps]:
    return {
        tag: FeedCaps(
            min_power_cap=_load(entries[tag], "min_power_cap"),
            max_power_cap=_load(entries[tag], "max_power_cap"),
            default_constraint=_load(entries[tag], "default_constraint"),
        )
        for tag in sorted(entries)
    }


def feed_status_map(entries: Any) -> dict[str, FeedStatus]:
    result = {}
    for tag in sorted(entries):
        status = entries[tag]
        current = status.current_target if status.HasField("current_target") else None
        result[tag] = FeedStatus(
            current_target=load_target_from_proto(current) if current is not None else None,
            calculated_load=_load(status, "calculated_load"),
        )
    return result


def action_result(response: Any) -> ActionResult:
    # `details` and its feed_tag / correlation_id are not in the public docs' field list, so
    # they are read defensively: a vendor proto without them still works.
    return ActionResult(
        code=status_name(response.code),
        diag_msg=response.diag_msg,
        details=tuple(
            ResponseDetail(
                code=status_name(detail.code),
                diag_msg=getattr(detail, "diag_msg", ""),
                feed_tag=getattr(detail, "feed_tag", ""),
                correlation_id=getattr(detail, "correlation_id", ""),
            )
            for detail in getattr(response, "details", ())
        ),
    )
