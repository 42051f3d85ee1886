"""The curtailment episode: what one load target on one feed did, as plain data.

See docs/episodes.md for every field, the statuses and their precedence, and the flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridhook.episodes.spans import Span, clip, duration
from gridhook.events import StoredEvent, rfc3339

__all__ = ["EPISODE_STATUSES", "Episode", "RangeShare"]

#: In order of precedence (the first that applies is the status):
#: stalled: a ramp started and neither its end nor anything after it came within the ramp
#: deadline; partial: an event is missing (e.g. an end without its start); in_progress:
#: open and on time; complete: closed (its closing ramp ended, or a newer target replaced it).
EPISODE_STATUSES = ("complete", "in_progress", "stalled", "partial")


@dataclass(frozen=True, slots=True)
class Episode:
    """One load target on one feed, as its events tell it. Times are receipt times.

    ``kind`` is "curtailment" when the episode opens with a ramp down (the usual case) and
    "increase" when it opens with a ramp up (a target above the load). The *opening* ramp
    goes to the target, the *closing* ramp away from it; when a newer target nested in this
    one ends, the feed comes back with a ramp of this episode's (a *resume*).
    ``ramp_down_*`` and ``ramp_up_*`` name the opening and closing ramps by direction,
    whatever the kind.

    Durations are seconds, None when unknown (an event missing, or an end received before
    its start). ``constrained_seconds`` is the time at this episode's own target: from the
    end of its opening ramp to the start of its closing ramp, less the time another target
    had the feed (up to now while open). ``requested_*`` figures are what DPS was asked
    for, not metered: the reduction is previous target - target (negative for an
    increase), the energy is that reduction held for ``constrained_seconds``, in
    watt-hours. A null target, or a zero one (DPS's other spelling of "the default"), is
    None in watts: the default is not in the events, so figures that need it are None.
    ``held_spans`` are when it held its own target, as [start, end) spans (empty when
    ``constrained_seconds`` is unknown); ``constrained_seconds`` is their total, and
    ``share(since, until)`` what of it (and of the energy) lies inside a range.
    ``as_of`` is the "now" it was judged at: an open episode goes on up to then, no
    further. See docs/episodes.md.
    """

    episode_id: str  # stable: derived from the feed and correlation id (or opening event)
    feed_tag: str | None
    correlation_id: str | None
    status: str  # one of EPISODE_STATUSES
    kind: str  # "curtailment" (opens with a ramp down) or "increase" (opens with a ramp up)
    open: bool  # not ended yet (no closing event, not superseded)
    target_load: dict[str, Any] | None  # as sent: {value, unit}; None = the default
    target_w: float | None  # None = the default (null or zero target)
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
    compliant: bool | None  # at the end of the opening ramp (the ramp down of a curtailment)
    requested_reduction_w: float | None
    requested_energy_wh: float | None
    load_w: dict[str, float | None]  # calculated load at each event received, by event type
    events: tuple[StoredEvent, ...]  # in the order they happened (the first of each type)
    missing: tuple[str, ...]  # event types that must have happened but were not received
    flags: tuple[str, ...]  # late, reordered, repeated, interrupted, stalled: human-readable
    superseded_by: str | None = None  # the episode that took the feed from it for good
    ended_at: datetime | None = None  # closing event received, or the superseding one opened
    ignored_events: tuple[StoredEvent, ...] = ()  # repeats of an event type (flagged)
    held_spans: tuple[Span, ...] = ()  # at its own target, in order; total constrained_seconds
    as_of: datetime | None = None  # when it was judged; an open episode goes on up to then

    @property
    def site(self) -> str:
        """The site of its events (an episode never spans sites: each is derived from one
        site's events)."""
        return self.events[0].site

    @property
    def started_at(self) -> datetime:
        """Receipt of the episode's first event in the order they happened."""
        return self.events[0].received_at

    @property
    def opened_at(self) -> datetime:
        """The earliest receipt of any of its events: when gridhook first knew of it."""
        return min(e.received_at for e in self.events)

    @property
    def going_on_until(self) -> datetime | None:
        """When it stopped going on: its end, or while open the "now" it was judged at
        (None: open, judged at no known time)."""
        return self.ended_at if self.ended_at is not None else self.as_of

    def overlaps(self, since: datetime, until: datetime) -> bool:
        """Whether the episode was going on in [since, until), or received events then.

        An open episode goes on from its first event up to ``as_of`` (now), never beyond:
        a range in the future holds none of it.
        """
        if any(since <= e.received_at < until for e in (*self.events, *self.ignored_events)):
            return True
        if clip(self.held_spans, since, until):
            return True
        end = self.going_on_until
        return self.opened_at < until and (end is None or end > since)

    def share(self, since: datetime, until: datetime) -> RangeShare:
        """What of this episode's time constrained, and of its requested energy, lies
        inside [since, until): its held spans clipped to the range."""
        if self.constrained_seconds is None:
            return RangeShare((), None, None)
        held = clip(self.held_spans, since, until)
        seconds = duration(held)
        reduction = self.requested_reduction_w
        energy = None if reduction is None else reduction * seconds / 3600.0
        return RangeShare(held, seconds, energy)

    def to_dict(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        """Every field as JSON data; given a range, also ``in_range``: its share of it."""
        data = self._fields()
        if since is not None and until is not None:
            data["in_range"] = self.share(since, until).to_dict()
        return data

    def _fields(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "site": self.site,
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
            "ended_at": rfc3339(self.ended_at),
            "ignored_event_ids": [e.event_id for e in self.ignored_events],
            "held_spans": [[rfc3339(start), rfc3339(end)] for start, end in self.held_spans],
        }


@dataclass(frozen=True, slots=True)
class RangeShare:
    """The part of one episode inside a range: the basis of every total over a range.

    Totals add these up, so reports over adjacent ranges add up to the report over their
    union; an energy figure to come (delivered MWh) integrates over ``held_spans``.
    """

    held_spans: tuple[Span, ...]  # its held spans clipped to the range
    constrained_seconds: float | None  # None: the episode's own is unknown
    requested_energy_wh: float | None  # the requested reduction held for those seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "constrained_seconds": self.constrained_seconds,
            "requested_energy_wh": self.requested_energy_wh,
            "held_spans": [[rfc3339(start), rfc3339(end)] for start, end in self.held_spans],
        }
