"""Quarantine replay: store a rejected payload as the event it would have been.

The receiver keeps every body it rejects with a 422 (first receipt wins): one that fails
the schema, or one the schema admits but gridhook cannot normalise. When that is fixed (say
a new DPS release sends a value that yesterday's schema refused, and the schema is relaxed),
an operator replays those bodies: each goes through the receiver's own intake
(``gridhook.intake``) under today's schema and, if it is an event, is stored exactly once
as the event a delivery of that body would have stored (the same event id, so a later
redelivery is a duplicate) with its original receipt time, in the site it was delivered
to. The record is then marked replayed; replaying it again changes nothing.

An operator's action, run from the CLI against the production store; never an HTTP endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridhook import clock
from gridhook.events import StoredEvent, rfc3339
from gridhook.intake import Accepted, Rejected, read_event
from gridhook.schema import Violation
from gridhook.sites import DEFAULT_SITE
from gridhook.store import AddOutcome, EventStore, QuarantinedPayload, iter_quarantined

__all__ = [
    "AmbiguousId",
    "BodyTruncated",
    "NotQuarantined",
    "QuarantineError",
    "ReplayResult",
    "ReplayStatus",
    "StillRejected",
    "find",
    "replay",
    "replay_all",
]


class QuarantineError(Exception):
    """Base class: a quarantined payload that cannot be found or replayed."""


class NotQuarantined(QuarantineError):
    """No unexpired quarantined payload has this id."""

    def __init__(self, quarantine_id: str) -> None:
        super().__init__(
            f"no quarantined payload {quarantine_id!r}: unknown, or expired "
            "(records are kept GRIDHOOK_QUARANTINE_TTL_DAYS days); see `gridhook quarantine list`"
        )
        self.quarantine_id = quarantine_id


class AmbiguousId(QuarantineError):
    """An id prefix that matches more than one quarantined payload."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        super().__init__(
            f"{prefix!r} matches {len(matches)} quarantined payloads "
            f"({', '.join(matches[:3])}{', ...' if len(matches) > 3 else ''}); give more of the id"
        )
        self.matches = matches


class BodyTruncated(QuarantineError):
    """Only a prefix of the body was kept, so it is not the event and cannot be replayed."""

    def __init__(self, item: QuarantinedPayload) -> None:
        kept = len(item.body.encode("utf-8"))
        super().__init__(
            f"{item.quarantine_id}: only the first {kept} of {item.body_bytes} bytes were kept; "
            "a truncated body is not replayable"
        )
        self.quarantine_id = item.quarantine_id


class StillRejected(QuarantineError):
    """The kept body is still not an event: it fails today's schema, gridhook cannot
    normalise it, or it is not a JSON object at all. ``reason`` is the receiver's code for it
    (``schema_violation``, ``cannot_normalise``, ``invalid_json``…)."""

    def __init__(self, quarantine_id: str, found: list[Violation], reason: str) -> None:
        reasons = "; ".join(f"{v.path or '/'}: {v.message}" for v in found)
        super().__init__(f"{quarantine_id}: still rejected ({reason}): {reasons}")
        self.quarantine_id = quarantine_id
        self.violations = found
        self.reason = reason


class ReplayStatus(StrEnum):
    REPLAYED = "replayed"  # stored now, as a new event
    ALREADY_STORED = "already_stored"  # the event was stored already (e.g. redelivered)
    ALREADY_REPLAYED = "already_replayed"  # marked replayed before: nothing was done
    WOULD_REPLAY = "would_replay"  # --dry-run: passes today's schema, nothing was stored


@dataclass(frozen=True, slots=True)
class ReplayResult:
    quarantine_id: str
    status: ReplayStatus
    event_id: str
    received_at: datetime
    site: str = DEFAULT_SITE  # the record's, where its event is stored

    def to_dict(self) -> dict[str, str]:
        return {
            "quarantine_id": self.quarantine_id,
            "site": self.site,
            "status": self.status.value,
            "event_id": self.event_id,
            "received_at": rfc3339(self.received_at) or "",
        }


_MIN_PREFIX = 6


def find(store: EventStore, quarantine_id: str, *, site: str = DEFAULT_SITE) -> QuarantinedPayload:
    """The quarantined payload of ``site`` with this id, or with this unique id prefix
    (6+ characters)."""
    wanted = quarantine_id.strip().lower()
    item = store.get_quarantined(wanted, site=site)
    if item is not None:
        return item
    if len(wanted) < _MIN_PREFIX:
        raise NotQuarantined(quarantine_id)
    # Like git's short hashes: the quarantine is small (bounded by its expiry), so a scan is fine.
    matches = [q for q in iter_quarantined(store, site=site) if q.quarantine_id.startswith(wanted)]
    if not matches:
        raise NotQuarantined(quarantine_id)
    if len(matches) > 1:
        raise AmbiguousId(quarantine_id, [q.quarantine_id for q in matches])
    return matches[0]


def replay(
    store: EventStore,
    item: QuarantinedPayload | str,
    *,
    dry_run: bool = False,
    site: str = DEFAULT_SITE,
) -> ReplayResult:
    """Take a quarantined body through today's intake and store it once as its event, in
    the site it was delivered to (``site`` only finds an item given by id).

    Raises NotQuarantined, BodyTruncated or StillRejected; StoreError from the store.
    """
    if isinstance(item, str):
        item = find(store, item, site=site)
    if item.replayed_at is not None and item.replayed_event_id is not None:
        status = ReplayStatus.ALREADY_REPLAYED
        return ReplayResult(
            item.quarantine_id, status, item.replayed_event_id, item.received_at, item.site
        )
    event = _event_of(item)
    if dry_run:
        return ReplayResult(
            item.quarantine_id,
            ReplayStatus.WOULD_REPLAY,
            event.event_id,
            item.received_at,
            item.site,
        )
    # Store first, then mark: if marking fails, a second replay finds the event stored
    # (DUPLICATE) and only marks, so nothing is ever stored twice.
    outcome = store.add_event(event)
    store.mark_replayed(item.quarantine_id, event.event_id, clock.now(), site=item.site)
    status = (
        ReplayStatus.REPLAYED if outcome is AddOutcome.ACCEPTED else ReplayStatus.ALREADY_STORED
    )
    return ReplayResult(item.quarantine_id, status, event.event_id, item.received_at, item.site)


def replay_all(
    store: EventStore, *, dry_run: bool = False, site: str = DEFAULT_SITE
) -> Iterator[ReplayResult | QuarantineError]:
    """Replay every unexpired quarantined payload of ``site`` not replayed yet, oldest first.

    Yields a result per replayed payload and the error of each that cannot be replayed,
    so one bad body does not stop the rest.
    """
    for item in iter_quarantined(store, newest_first=False, site=site):
        if item.replayed_at is not None:
            continue
        try:
            yield replay(store, item, dry_run=dry_run)
        except QuarantineError as exc:
            yield exc


def _event_of(item: QuarantinedPayload) -> StoredEvent:
    """The event a delivery of this body would have stored, received when it was received."""
    if item.truncated:
        raise BodyTruncated(item)
    intake = read_event(item.body.encode("utf-8"), item.received_at, item.site)
    if isinstance(intake, Accepted):
        return intake.event
    if isinstance(intake, Rejected):
        raise StillRejected(item.quarantine_id, intake.problems, intake.reason.value)
    raise StillRejected(item.quarantine_id, [Violation("", intake.message)], intake.code)
