"""Intake: a webhook body and its receipt time in, an event or a typed rejection out.

The one path from bytes to a storable event — parse, validate against the schema, compute
the event id, normalise — shared by the receiver (a delivery) and quarantine replay (a kept
body, judged again under today's schema). Each caller only maps the outcome to its answer:

| outcome | the receiver | replay |
|---|---|---|
| :class:`Accepted` | stores it: 200 | stores it with the original receipt time |
| :class:`Unreadable` | 400 with its ``code``; nothing kept | still rejected |
| :class:`Rejected` | 422 with every problem; the body is quarantined | still rejected |

Every step after schema validation is total: a payload the schema admits but gridhook
cannot normalise (a schema edited to admit a unit the units table lacks, say) is a
Rejected (``cannot_normalise``), never an exception — so it is quarantined, not answered
503 forever, and a replay batch goes on past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridhook.events import CannotNormalise, StoredEvent, event_id, normalise
from gridhook.parsing import BadPayload, parse_payload
from gridhook.schema import Violation, violations
from gridhook.sites import DEFAULT_SITE

__all__ = ["Accepted", "Intake", "RejectReason", "Rejected", "Unreadable", "read_event"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A payload that is an event: store it."""

    event: StoredEvent


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Not a JSON object gridhook can read; ``code`` is machine-readable (``invalid_json``…)."""

    code: str
    message: str


class RejectReason(StrEnum):
    """Why a readable payload is not an event: the 422's code and the quarantine's reason."""

    SCHEMA_VIOLATION = "schema_violation"  # fails the power-event schema
    CANNOT_NORMALISE = "cannot_normalise"  # passes it, but gridhook cannot read a field


@dataclass(frozen=True, slots=True)
class Rejected:
    """A JSON object that is not an event gridhook can store: every problem, by JSON pointer."""

    reason: RejectReason
    message: str
    problems: list[Violation]
    event_type: str | None  # the payload's ``event`` when short text, for the log line only


Intake = Accepted | Unreadable | Rejected

_SURROGATE = "body has a string with an unpaired UTF-16 surrogate"


def read_event(body: bytes, received_at: datetime, site: str = DEFAULT_SITE) -> Intake:
    """The event ``body`` is, received at ``received_at`` on ``site``, or why it is not one."""
    try:
        payload = parse_payload(body)
    except BadPayload as exc:
        return Unreadable(exc.code, exc.message)
    event_type = payload.get("event")
    # Unvalidated text: kept for the log only when short enough to be an event type.
    logged_type = event_type if isinstance(event_type, str) and len(event_type) <= 64 else None
    found = violations(payload)
    if found:
        message = f"payload fails the power-event schema ({len(found)} violation(s))"
        return Rejected(RejectReason.SCHEMA_VIOLATION, message, found, logged_type)
    try:
        eid = event_id(payload, site)
    except UnicodeEncodeError:  # JSON may escape a lone surrogate; UTF-8 cannot hold it
        return Unreadable("invalid_json", _SURROGATE)
    try:
        return Accepted(normalise(payload, received_at, eid, site=site))
    except CannotNormalise as exc:
        message = (
            "payload passes the power-event schema but gridhook cannot read "
            f"{len(exc.problems)} of its field(s)"
        )
        return Rejected(RejectReason.CANNOT_NORMALISE, message, exc.problems, logged_type)
