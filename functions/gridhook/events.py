"""Power events: the canonical form, the event id, and the normalised (stored) form.

DPS payloads carry no event id, so the id is a hash of the canonical payload (sorted
keys, no whitespace, integral floats written as integers): an exact redelivery maps to
the same id whatever its key order or spacing, so storing is an insert-if-absent. The
site a payload was delivered to is part of its id, except for the ``default`` site, whose
ids are what they were before sites (so a store from then still deduplicates).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from gridhook import units
from gridhook.schema import Violation
from gridhook.sites import DEFAULT_SITE, site_digest
from gridhook.timestamps import parse_time, rfc3339

__all__ = [
    "PHASE_OF_EVENT",
    "CannotNormalise",
    "StoredEvent",
    "canonical_json",
    "event_id",
    "normalise",
    "parse_time",
    "rfc3339",
    "to_watts",
]

_T = TypeVar("_T")

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


def event_id(payload: dict[str, Any], site: str = DEFAULT_SITE) -> str:
    """The id of an event: 128 bits of SHA-256 over its canonical JSON, in hex; for a site
    other than ``default``, over the site's name and the canonical JSON (``site_digest``)."""
    return site_digest(canonical_json(payload).encode("utf-8"), site)[:32]


def to_watts(load: dict[str, Any] | None) -> float | None:
    """A ``{value, unit}`` load in watts; None for a null load (the default target).

    Raises units.UnknownUnit for a unit the table lacks.
    """
    if load is None:
        return None
    return units.to_watts(load["value"], load["unit"])


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
    #: The site it was delivered to (its path): part of its id, except for ``default``.
    site: str = DEFAULT_SITE
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
            "site": self.site,
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


class CannotNormalise(ValueError):
    """A payload gridhook cannot turn into a stored event, naming every field it cannot read.

    The schema rules each of these out; a schema edited to admit more than gridhook
    understands (a unit without a size in the units table, say) does not, and such a payload
    must be quarantined, not fail.
    """

    def __init__(self, problems: list[Violation]) -> None:
        super().__init__("; ".join(f"{p.path or '/'}: {p.message}" for p in problems))
        self.problems = problems


def normalise(
    payload: dict[str, Any],
    received_at: datetime,
    event_id_: str | None = None,
    *,
    site: str = DEFAULT_SITE,
) -> StoredEvent:
    """Build the stored form of a payload that has passed the schema, delivered to ``site``.

    Total: whatever the payload holds, the answer is a StoredEvent or CannotNormalise
    listing every field that cannot be read (never a KeyError or a TypeError).
    """
    problems: list[Violation] = []

    def read(name: str, reader: Callable[[Any], _T]) -> _T | None:
        try:
            return reader(payload.get(name))
        except _Unreadable as exc:
            problems.append(Violation(f"/{name}{exc.where}", str(exc)))
            return None

    event = read("event", _event_type)
    stored = StoredEvent(
        event_id=event_id_ or event_id(payload, site),
        received_at=received_at,
        event=event or "",
        payload=payload,
        feed_tag=read("feed_tag", _text),
        correlation_id=read("correlation_id", _text),
        start_time=read("start_time", _time),
        end_time=read("end_time", _time),
        target_w=read("target_load", _watts),
        prev_target_w=read("prev_target_load", _watts),
        calculated_w=read("calculated_load", _watts),
        compliant=read("compliant", _flag),
        site=site,
    )
    if problems:
        raise CannotNormalise(problems)
    return stored


# -- reading one field of a payload (each raises _Unreadable saying why) --------------------


class _Unreadable(ValueError):
    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where  # a JSON pointer below the field, e.g. "/unit"


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _event_type(value: Any) -> str:
    if value is None:
        raise _Unreadable("gridhook cannot store an event without its type")
    if not isinstance(value, str) or value.lower() not in PHASE_OF_EVENT:
        known = ", ".join(PHASE_OF_EVENT)
        raise _Unreadable(f"{_shown(value)} is not an event type gridhook knows ({known})")
    return value.lower()


def _text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _Unreadable(f"{_shown(value)}: gridhook reads this field as a string")
    return value


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return parse_time(value)
    except ValueError:
        pass
    raise _Unreadable(f"{_shown(value)} is not an RFC 3339 date-time gridhook can read")


def _flag(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _Unreadable(f"{_shown(value)}: gridhook reads this field as true or false")
    return value


def _watts(load: Any) -> float | None:
    if load is None:
        return None
    if not isinstance(load, dict):
        raise _Unreadable(f"{_shown(load)}: gridhook reads a load as {{value, unit}} or null")
    value, unit = load.get("value"), load.get("unit")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unreadable(f"{_shown(value)}: a load's value must be a number", "/value")
    if not isinstance(unit, str):
        raise _Unreadable(f"{_shown(unit)}: a load's unit must be a string", "/unit")
    try:
        return units.to_watts(value, unit)
    except units.UnknownUnit as exc:
        raise _Unreadable(str(exc), "/unit") from None
