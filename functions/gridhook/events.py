"""Power events: the canonical form, the event id, and normalised loads.

DPS payloads carry no event id, so the id is a hash of the canonical payload (sorted
keys, no whitespace, integral floats written as integers): an exact redelivery maps to
the same id whatever its key order or spacing, so storing is an insert-if-absent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

__all__ = [
    "PHASE_OF_EVENT",
    "StoredEvent",
    "canonical_json",
    "event_id",
    "normalise",
    "parse_time",
    "rfc3339",
    "to_watts",
]

_WATTS_PER_UNIT = {
    "w": 1.0,
    "watt": 1.0,
    "kw": 1e3,
    "kilowatt": 1e3,
    "mw": 1e6,
    "megawatt": 1e6,
}

#: The phase a feed enters when each event arrives.
PHASE_OF_EVENT = {
    "start_ramp_down": "ramping_down",
    "end_ramp_down": "constrained",
    "start_ramp_up": "ramping_up",
    "end_ramp_up": "steady",
}


def _normalise_numbers(value: Any) -> Any:
    # 10 and 10.0 are the same quantity; hash them the same.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise_numbers(v) for v in value]
    return value


def canonical_json(payload: dict[str, Any]) -> str:
    """The payload as canonical JSON: sorted keys, no whitespace, numbers normalised."""
    return json.dumps(
        _normalise_numbers(payload),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def event_id(payload: dict[str, Any]) -> str:
    """The id of an event: 128 bits of SHA-256 over its canonical JSON, in hex."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:32]


def to_watts(load: dict[str, Any] | None) -> float | None:
    """A ``{value, unit}`` load in watts; None for a null load (the default target)."""
    if load is None:
        return None
    return float(load["value"]) * _WATTS_PER_UNIT[str(load["unit"]).lower()]


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T", 1))
    if parsed.tzinfo is None:  # the schema's pattern requires an offset; belt and braces
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One received power event, as stored: the payload as received plus derived fields."""

    event_id: str
    received_at: datetime
    event: str
    payload: dict[str, Any]
    feed_tag: str | None = None
    correlation_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    target_w: float | None = None
    prev_target_w: float | None = None
    calculated_w: float | None = None
    compliant: bool | None = None
    #: When the store wrote it (the write order a tail follows), set by the store; not
    #: part of the event's identity: a redelivery stored elsewhere is the same event.
    stored_at: datetime | None = field(default=None, compare=False)

    @property
    def phase(self) -> str:
        """The feed phase this event puts the feed in."""
        return PHASE_OF_EVENT[self.event]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (times in RFC 3339)."""
        return {
            "event_id": self.event_id,
            "received_at": rfc3339(self.received_at),
            "event": self.event,
            "feed_tag": self.feed_tag,
            "correlation_id": self.correlation_id,
            "start_time": rfc3339(self.start_time),
            "end_time": rfc3339(self.end_time),
            "target_w": self.target_w,
            "prev_target_w": self.prev_target_w,
            "calculated_w": self.calculated_w,
            "compliant": self.compliant,
            "payload": self.payload,
            "stored_at": rfc3339(self.stored_at),
        }


@overload
def rfc3339(value: datetime) -> str: ...
@overload
def rfc3339(value: datetime | None) -> str | None: ...
def rfc3339(value: datetime | None) -> str | None:
    """A datetime as RFC 3339 in UTC with a ``Z`` (None stays None)."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def normalise(
    payload: dict[str, Any], received_at: datetime, event_id_: str | None = None
) -> StoredEvent:
    """Build the stored form of a payload that has passed the schema."""
    return StoredEvent(
        event_id=event_id_ or event_id(payload),
        received_at=received_at,
        event=payload["event"].lower(),
        payload=payload,
        feed_tag=payload.get("feed_tag"),
        correlation_id=payload.get("correlation_id"),
        start_time=parse_time(payload.get("start_time")),
        end_time=parse_time(payload.get("end_time")),
        target_w=to_watts(payload.get("target_load")),
        prev_target_w=to_watts(payload.get("prev_target_load")),
        calculated_w=to_watts(payload.get("calculated_load")),
        compliant=payload.get("compliant"),
    )
