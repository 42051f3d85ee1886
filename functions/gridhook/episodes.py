"""Curtailment episodes, derived from stored events (never kept as a mutable document).

An episode is one load target on one feed: the events DPS sent for one correlation id on
that feed; without a correlation id, a ``start_ramp_down`` opens one and an
``end_ramp_up`` closes it (per feed, in order). See ARCHITECTURE.md "Episodes and reports".

STATUS: the model below is the contract reports and the control room build on; the
derivation (``derive_episodes``) and the store loader (``load_episodes``) are being built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridhook.events import StoredEvent, rfc3339

__all__ = ["EPISODE_STATUSES", "Episode"]

#: complete: every phase seen and the feed is back; in_progress: open and on time;
#: stalled: a ramp started and its end did not come within the ramp deadline;
#: partial: an event is missing (e.g. an end without its start).
EPISODE_STATUSES = ("complete", "in_progress", "stalled", "partial")


@dataclass(frozen=True, slots=True)
class Episode:
    """One load target on one feed, as its events tell it. Times are receipt times.

    Durations are seconds. ``requested_*`` figures are what DPS was asked for, not
    metered: the reduction is previous target - target, the energy is that reduction
    held for ``constrained_seconds``, in watt-hours.
    """

    episode_id: str  # stable: derived from the feed and correlation id (or first event)
    feed_tag: str | None
    correlation_id: str | None
    status: str  # one of EPISODE_STATUSES
    kind: str  # "curtailment" (opens with a ramp down) or "increase" (opens with a ramp up)
    open: bool  # not ended yet (no closing event, not superseded)
    target_load: dict[str, Any] | None  # as sent: {value, unit}; None = the default
    target_w: float | None
    prev_target_load: dict[str, Any] | None
    prev_target_w: float | None
    interval_start: datetime | None  # DPS's start_time of the target
    interval_end: datetime | None  # DPS's end_time; None = until replaced
    ramp_down_started_at: datetime | None
    ramp_down_ended_at: datetime | None
    ramp_down_seconds: float | None
    constrained_seconds: float | None  # held at the target (up to now while open)
    ramp_up_started_at: datetime | None
    ramp_up_ended_at: datetime | None
    ramp_up_seconds: float | None
    compliant: bool | None  # at the end of the ramp down
    requested_reduction_w: float | None
    requested_energy_wh: float | None
    load_w: dict[str, float | None]  # calculated load at each event received, by event type
    events: tuple[StoredEvent, ...]  # in the order they happened
    missing: tuple[str, ...]  # event types not received
    flags: tuple[str, ...]  # late or reordered arrivals, repeated events: human-readable
    superseded_by: str | None = None  # the episode that replaced this target on the feed

    @property
    def started_at(self) -> datetime:
        return self.events[0].received_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "feed_tag": self.feed_tag,
            "correlation_id": self.correlation_id,
            "status": self.status,
            "kind": self.kind,
            "open": self.open,
            "target_load": self.target_load,
            "target_w": self.target_w,
            "prev_target_load": self.prev_target_load,
            "prev_target_w": self.prev_target_w,
            "interval_start": rfc3339(self.interval_start),
            "interval_end": rfc3339(self.interval_end),
            "ramp_down_started_at": rfc3339(self.ramp_down_started_at),
            "ramp_down_ended_at": rfc3339(self.ramp_down_ended_at),
            "ramp_down_seconds": self.ramp_down_seconds,
            "constrained_seconds": self.constrained_seconds,
            "ramp_up_started_at": rfc3339(self.ramp_up_started_at),
            "ramp_up_ended_at": rfc3339(self.ramp_up_ended_at),
            "ramp_up_seconds": self.ramp_up_seconds,
            "compliant": self.compliant,
            "requested_reduction_w": self.requested_reduction_w,
            "requested_energy_wh": self.requested_energy_wh,
            "load_w": self.load_w,
            "event_ids": [e.event_id for e in self.events],
            "missing": list(self.missing),
            "flags": list(self.flags),
            "superseded_by": self.superseded_by,
        }
