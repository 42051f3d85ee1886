"""Curtailment episodes, derived from stored events (never kept as a mutable document).

An episode is one load target on one feed: the events DPS sent for one correlation id on
that feed; without a correlation id, a ``start_ramp_down`` opens one and an
``end_ramp_up`` closes it (per feed, in receipt order). See docs/episodes.md for every
field, the statuses and their precedence, the flags and the edge cases, and
ARCHITECTURE.md "Episodes and reports".

- ``derive_episodes`` is pure: the same events (in any order) give the same episodes.
- ``load_episodes`` reads what one time range needs from an EventStore, at a cost that
  follows the range asked for, never the whole history.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gridhook.events import StoredEvent, rfc3339
from gridhook.state import chain_times, episode_key, ramp_direction, ramp_instances
from gridhook.store import EventQuery, EventStore, iter_events

__all__ = [
    "EPISODE_STATUSES",
    "LOOK_AROUND_EVENTS",
    "Episode",
    "derive_episodes",
    "format_duration",
    "load_episodes",
]

#: In order of precedence (the first that applies is the status):
#: stalled: a ramp started and neither its end nor anything after it came within the ramp
#: deadline; partial: an event is missing (e.g. an end without its start); in_progress:
#: open and on time; complete: closed (its closing ramp ended, or a newer target replaced it).
EPISODE_STATUSES = ("complete", "in_progress", "stalled", "partial")

#: How many events per feed the loader reads before ``since`` (and after ``until``) to
#: find episodes that cross the range's edges: one page, whatever the history's size.
LOOK_AROUND_EVENTS = 50

_PAGE = 1000
_T = TypeVar("_T", bound=tuple[Any, ...])
_BEGINNING = datetime.min.replace(tzinfo=UTC)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


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
    See docs/episodes.md.
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

    @property
    def started_at(self) -> datetime:
        """Receipt of the episode's first event in the order they happened."""
        return self.events[0].received_at

    @property
    def opened_at(self) -> datetime:
        """The earliest receipt of any of its events: when gridhook first knew of it."""
        return min(e.received_at for e in self.events)

    def overlaps(self, since: datetime, until: datetime) -> bool:
        """Whether the episode was going on in [since, until), or received events then."""
        if any(since <= e.received_at < until for e in (*self.events, *self.ignored_events)):
            return True
        return self.opened_at < until and (self.ended_at is None or self.ended_at > since)

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
            "ended_at": rfc3339(self.ended_at),
            "ignored_event_ids": [e.event_id for e in self.ignored_events],
        }


def format_duration(seconds: float) -> str:
    """A duration for people: 42s, 4m12s, 2h05m, 3d04h."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if 0 < seconds < 10 and whole != seconds else f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    minutes = whole // 60
    if minutes < 24 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes // 1440}d{minutes % 1440 // 60:02d}h"


# --- derivation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ramp:
    """One ramp of an episode as received: its first start and first end (either may be
    missing) and its role: opening (to the target), resume (back to the target after a
    nested target ended) or closing (away from the target)."""

    role: str
    direction: str
    start: StoredEvent | None
    end: StoredEvent | None

    @property
    def first(self) -> StoredEvent:
        return self.start if self.start is not None else self.end  # type: ignore[return-value]

    @property
    def target_w(self) -> float | None:
        return _watts(self.first.target_w)

    @property
    def prev_w(self) -> float | None:
        return _watts(self.first.prev_target_w)

    @property
    def events(self) -> list[StoredEvent]:
        return [e for e in (self.start, self.end) if e is not None]

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        elapsed = (self.end.received_at - self.start.received_at).total_seconds()
        return elapsed if elapsed >= 0 else None


@dataclass(frozen=True, slots=True)
class _Group:
    """The events of one episode, sorted into ramps, before anything is judged."""

    episode_id: str
    feed_tag: str | None
    correlation_id: str | None
    ramps: tuple[_Ramp, ...]  # in the order they happened; the first is the opening
    ignored: tuple[StoredEvent, ...]  # repeats, and ramps that fit no role
    flags: tuple[str, ...]
    events: tuple[StoredEvent, ...]  # the ramps' events, in order
    opened_at: datetime  # its first receipt
    last_at: datetime  # its last receipt, ignored events included

    @property
    def opening(self) -> _Ramp:
        return self.ramps[0]

    @property
    def closing(self) -> _Ramp | None:
        return next((r for r in self.ramps if r.role == "closing"), None)


def derive_episodes(
    events: Iterable[StoredEvent], *, now: datetime, ramp_deadline: timedelta | float
) -> list[Episode]:
    """The episodes these events tell, oldest first (pure: no I/O, any input order).

    ``now`` judges open episodes (time held so far, stalled ramps); ``ramp_deadline``
    (a timedelta or seconds) is how long a started ramp may go without its end.
    """
    deadline = (
        ramp_deadline if isinstance(ramp_deadline, timedelta) else timedelta(seconds=ramp_deadline)
    )
    by_feed: dict[str | None, list[_Group]] = {}
    for group in _groups(events):
        by_feed.setdefault(group.feed_tag, []).append(group)
    episodes: list[Episode] = []
    for groups in by_feed.values():
        groups.sort(key=lambda g: (g.opened_at, g.episode_id))
        candidates = _Candidates(groups)
        for index, group in enumerate(groups):  # oldest first: their take-backs stop newer ones
            stops = candidates.stops(index)
            walk = _walk(group, stops)
            candidates.took_back(index, walk.took_back)
            episodes.append(_judge(group, stops, walk, now, deadline))
    episodes.sort(key=lambda e: (e.started_at, e.episode_id))
    return episodes


def _groups(events: Iterable[StoredEvent]) -> list[_Group]:
    unique: dict[str, StoredEvent] = {}
    for e in sorted(events, key=lambda e: e.received_at, reverse=True):
        unique[e.event_id] = e  # the first receipt wins, as in a store
    correlated: dict[tuple[str | None, str], list[StoredEvent]] = {}
    uncorrelated: dict[str | None, list[StoredEvent]] = {}
    for e in unique.values():
        key = episode_key(e)
        if key is None:
            uncorrelated.setdefault(e.feed_tag, []).append(e)
        else:
            correlated.setdefault(key, []).append(e)
    groups = [
        _group([feed, corr], feed, corr, members) for (feed, corr), members in correlated.items()
    ]
    for feed, members in uncorrelated.items():
        for sequence in _split_by_sequence(members):
            groups.append(_group([feed, None, sequence[0].event_id], feed, None, sequence))
    return groups


def _split_by_sequence(events: list[StoredEvent]) -> list[list[StoredEvent]]:
    """Events of one feed without a correlation id, cut into episodes by receipt order: a
    start_ramp_down opens one, an end_ramp_up closes it, anything else joins the open one
    (or opens a partial one when none is open)."""
    sequences: list[list[StoredEvent]] = []
    current: list[StoredEvent] | None = None
    for e in sorted(events, key=lambda e: (e.received_at, e.event_id)):
        if current is None or e.event == "start_ramp_down":
            current = [e]
            sequences.append(current)
        else:
            current.append(e)
        if e.event == "end_ramp_up":
            current = None
    return sequences


def _group(
    id_basis: list[Any], feed: str | None, corr: str | None, members: list[StoredEvent]
) -> _Group:
    ramps: list[_Ramp] = []
    ignored: list[StoredEvent] = []
    target: float | None = None
    has_closing = False
    for index, events in enumerate(ramp_instances(members)):
        start = next((e for e in events if e.event.startswith("start_")), None)
        end = next((e for e in events if e.event.startswith("end_")), None)
        ignored.extend(e for e in events if e is not start and e is not end)
        ramp = _Ramp("opening", ramp_direction(events[0]), start, end)
        if index == 0:
            target = ramp.target_w
        elif _same(ramp.target_w, target) and not _same(ramp.prev_w, target):
            ramp = _Ramp("resume", ramp.direction, start, end)
        elif not has_closing and _same(ramp.prev_w, target) and not _same(ramp.target_w, target):
            ramp = _Ramp("closing", ramp.direction, start, end)
            has_closing = True
        elif _continues(ramps[-1], ramp, target):
            # The ramp under way, restated (to the target from the target): its end is the
            # end of that ramp; its start is a repeat.
            ramps[-1] = _Ramp(ramps[-1].role, ramps[-1].direction, ramps[-1].start, ramp.end)
            ignored.extend(e for e in ramp.events if e is not ramp.end)
            continue
        else:
            ignored.extend(ramp.events)
            continue
        ramps.append(ramp)
    kept = [e for r in ramps for e in r.events]
    flags = [_repeat_flag(e, kept) for e in sorted(ignored, key=lambda e: e.received_at)]
    digest = hashlib.sha256(json.dumps(id_basis).encode("utf-8")).hexdigest()[:20]
    return _Group(
        episode_id=digest,
        feed_tag=feed,
        correlation_id=corr,
        ramps=tuple(ramps),
        ignored=tuple(ignored),
        flags=tuple(flags),
        events=tuple(kept),
        opened_at=min(e.received_at for e in kept),
        last_at=max(e.received_at for e in members),
    )


def _continues(under_way: _Ramp, ramp: _Ramp, target: float | None) -> bool:
    """Whether ``ramp`` restates ``under_way``, a ramp to the target not yet ended: same
    direction, to the target from the target. The simulator sends one when an override to
    the default ends before the load got there (the default is then still the target)."""
    return (
        under_way.role != "closing"
        and under_way.end is None
        and ramp.end is not None
        and ramp.direction == under_way.direction
        and _same(ramp.target_w, target)
        and _same(ramp.prev_w, target)
    )


def _repeat_flag(extra: StoredEvent, kept: list[StoredEvent]) -> str:
    first = next((e for e in kept if e.event == extra.event), None)
    if first is None:
        return (
            f"unexpected: a {extra.event} (event {extra.event_id[:12]}) to "
            f"{_mw(_watts(extra.target_w))} fits no ramp of this episode; ignored"
        )
    differs = sorted(
        k
        for k in set(first.payload) | set(extra.payload)
        if first.payload.get(k) != extra.payload.get(k)
    )
    return (
        f"repeated: a second {extra.event} (event {extra.event_id[:12]}) differs in "
        f"{', '.join(differs) or 'content'}; kept the first received"
    )


@dataclass(frozen=True, slots=True)
class _Stop:
    """Another episode taking the feed: a ramp of a newer one, or an older one taking it back."""

    at: datetime  # when, as received (a newer episode: when it opened)
    event: StoredEvent  # the event that did it (a ramp: its first in the order they happened)
    group: _Group


class _Candidates:
    """Every ramp of a feed that could take the feed from one of its episodes, by receipt,
    and every take-back found so far, so each episode looks only at its own stretch of time
    (not at every other episode: a year of them must not cost a year squared)."""

    def __init__(self, groups: list[_Group]) -> None:
        self.groups = groups
        # (at, group index, number, event): a ramp of a newer episode stops an older one.
        ramps: list[tuple[datetime, int, int, StoredEvent]] = []
        for index, group in enumerate(groups):
            for number, ramp in enumerate(group.ramps):
                began = group.opened_at if number == 0 else min(e.received_at for e in ramp.events)
                ramps.append((began, index, number, ramp.first))
        # Ties: an episode's own order, not its event ids, says which of its ramps was first.
        ramps.sort(key=lambda item: item[:3])
        self.ramps = ramps
        # (at, group index, number, stop): when an older episode took the feed back.
        self.take_backs: list[tuple[datetime, int, int, _Stop]] = []

    def took_back(self, index: int, moments: list[tuple[datetime, StoredEvent]]) -> None:
        """Record when ``groups[index]`` took the feed back: that ends whichever newer
        episode held it then, even one whose own hand-back was never received."""
        for number, (at, event) in enumerate(moments):
            stop = _Stop(at, event, self.groups[index])
            bisect.insort(self.take_backs, (at, index, number, stop), key=lambda item: item[:3])

    def stops(self, index: int) -> list[_Stop]:
        """What takes the feed from ``groups[index]`` while its events arrive, and the first
        after its last: any ramp of an episode opened after it, and any take-back by an older
        one (recorded before: episodes are walked oldest first)."""
        this = self.groups[index]
        newer = (
            (at, other, number, _Stop(at, event, self.groups[other]))
            for at, other, number, event in _from(self.ramps, this.opened_at)
            if other > index
        )
        older = (item for item in _from(self.take_backs, this.opened_at) if item[1] < index)
        stops: list[_Stop] = []
        for at, _, _, stop in heapq.merge(newer, older, key=lambda item: item[:3]):
            stops.append(stop)
            if at > this.last_at:
                break  # nothing of this episode's comes after it
        return stops


def _from(items: list[_T], moment: datetime) -> Iterator[_T]:
    """The items (tuples sorted by their first, a time) from ``moment`` on, read lazily: a
    caller that stops early must not pay for the rest of the feed's history."""
    first = bisect.bisect_left(items, moment, key=lambda item: item[0])
    return (items[i] for i in range(first, len(items)))


def _takes_back(event: StoredEvent, own_target: float | None, from_target: float | None) -> bool:
    """Whether ``event`` moves the feed to its episode's own target from ``from_target``."""
    return _same(_watts(event.target_w), own_target) and _same(
        _watts(event.prev_target_w), from_target
    )


@dataclass
class _Walk:
    """Who had the feed when: this episode's events and the stops, in receipt order."""

    active: bool = True
    stopper: _Stop | None = None
    holding_since: datetime | None = None
    hold_from_start: bool = False  # counted from a ramp's start until its end is seen
    held: float = 0.0
    held_known: bool = True
    late: list[str] = field(default_factory=list)
    # While stopped: the targets of every episode that had the feed since (one of them
    # may have handed it on without a received event: a redelivery-identical payload).
    holders: list[float | None] = field(default_factory=list)
    took_back: list[tuple[datetime, StoredEvent]] = field(default_factory=list)


def _walk(group: _Group, stops: list[_Stop]) -> _Walk:
    """This episode's events in the order they happened (an end received before its start
    counts just after it, the rule gridhook state uses) among the stops, by receipt."""
    target_w = group.opening.target_w
    role_of = {e.event_id: r for r in group.ramps for e in r.events}
    times = chain_times(group.events)
    timeline: list[tuple[datetime, int, StoredEvent, _Stop | None]] = [
        (times.get(e.event_id, e.received_at), 0, e, None) for e in (*group.events, *group.ignored)
    ] + [(s.at, 1, s.event, s) for s in stops]
    timeline.sort(key=lambda item: (item[0], item[1], item[2].event_id))
    walk = _Walk()
    for moment, _, event, stop in timeline:
        if stop is not None:
            if walk.active and moment >= group.opened_at:
                walk.active, walk.stopper = False, stop
                walk.holders = [stop.group.opening.target_w]
                _stop_holding(walk, moment)
            elif not walk.active:
                walk.holders.append(stop.group.opening.target_w)
            continue
        ramp = role_of.get(event.event_id)  # None: a repeat, already flagged
        if not walk.active:
            assert walk.stopper is not None
            if not any(_takes_back(event, target_w, held_by) for held_by in walk.holders):
                if ramp is not None:
                    walk.late.append(_late_flag(event, walk.stopper))
                    if ramp.role == "opening" and event is ramp.end:
                        walk.held_known = False  # reached before it was replaced: when?
                continue
            walk.active, walk.stopper = True, None  # back to this episode's target
            walk.took_back.append((moment, event))
            walk.holding_since, walk.hold_from_start = moment, event.event.startswith("start_")
        if ramp is None:
            continue
        if ramp.role == "closing":
            if walk.holding_since is not None and (
                ramp.start is None or moment != event.received_at
            ):
                walk.held_known = False  # the hold ended before this, but when is unknown
                walk.holding_since = None
            _stop_holding(walk, moment)
        elif event is ramp.end:
            if walk.holding_since is None or walk.hold_from_start:
                walk.holding_since, walk.hold_from_start = moment, False
        elif ramp.role == "resume" and walk.holding_since is None:
            walk.holding_since, walk.hold_from_start = moment, True
    return walk


def _judge(
    group: _Group, stops: list[_Stop], walk: _Walk, now: datetime, deadline: timedelta
) -> Episode:
    opening, closing = group.opening, group.closing
    target_w = opening.target_w

    def follower(ramp: _Ramp) -> StoredEvent | None:
        """What came after a ramp: its episode's next ramp (in the order they happened),
        or another episode's ramp received after it began, whichever was received first."""
        index = group.ramps.index(ramp)
        own = group.ramps[index + 1].first if index + 1 < len(group.ramps) else None
        began = ramp.first.received_at
        other = next((s for s in stops if s.at >= began), None)
        if own is None or (other is not None and other.at < own.received_at):
            return other.event if other is not None else None
        return own

    notes: list[str] = []
    judged = {
        id(r): _judge_ramp(r, _target_of(r, target_w), follower, now, deadline, notes)
        for r in group.ramps
    }
    opened = judged[id(opening)]
    closed_by_itself = closing is not None and closing.end is not None
    held_so_far = walk.held
    if closed_by_itself:
        ended_at: datetime | None = closing.end.received_at  # type: ignore[union-attr]
    elif not walk.active and walk.stopper is not None:
        ended_at = walk.stopper.at
    else:
        ended_at = None
        if walk.holding_since is not None and now > walk.holding_since:
            held_so_far += (now - walk.holding_since).total_seconds()  # held up to now

    held: float | None
    if opened == "interrupted":
        held = held_so_far  # 0 unless it took the feed back later
    elif opening.end is None or not walk.held_known:
        held = None
    else:
        held = held_so_far

    prev_w = opening.prev_w
    reduction = prev_w - target_w if prev_w is not None and target_w is not None else None
    energy = reduction * held / 3600.0 if reduction is not None and held is not None else None
    if opening.end is not None:
        compliant = opening.end.compliant
    else:
        compliant = False if opened == "interrupted" else None

    missing = tuple(
        f"{edge}_ramp_{r.direction}"
        for r in (opening, closing)
        if r is not None
        for edge in ("start", "end")
        if judged[id(r)] == f"missing_{edge}"
    )
    if "stalled" in judged.values():
        status = "stalled"
    elif missing:
        status = "partial"
    elif ended_at is None:
        status = "in_progress"
    else:
        status = "complete"

    by_direction: dict[str, _Ramp] = {}
    for r in (opening, closing):
        if r is not None:
            by_direction.setdefault(r.direction, r)
    if closing is not None and closing.direction == opening.direction:
        notes.append(
            f"closing: a second ramp {closing.direction} to {_mw(closing.target_w)} closed it "
            "(its times are in the events, not the ramp fields)"
        )
    down, up = by_direction.get("down"), by_direction.get("up")
    load_w: dict[str, float | None] = {}
    for r in (opening, closing, *group.ramps):
        for e in r.events if r is not None else ():
            load_w.setdefault(e.event, e.calculated_w)
    source = opening.first
    stopper = walk.stopper if not closed_by_itself and ended_at is not None else None
    return Episode(
        episode_id=group.episode_id,
        feed_tag=group.feed_tag,
        correlation_id=group.correlation_id,
        status=status,
        kind="curtailment" if opening.direction == "down" else "increase",
        open=ended_at is None,
        target_load=source.payload.get("target_load"),
        target_w=target_w,
        prev_target_load=source.payload.get("prev_target_load"),
        prev_target_w=prev_w,
        interval_start=source.start_time,
        interval_end=source.end_time,
        ramp_down_started_at=_received(down.start if down else None),
        ramp_down_ended_at=_received(down.end if down else None),
        ramp_down_seconds=down.seconds if down else None,
        constrained_seconds=held,
        ramp_up_started_at=_received(up.start if up else None),
        ramp_up_ended_at=_received(up.end if up else None),
        ramp_up_seconds=up.seconds if up else None,
        compliant=compliant,
        requested_reduction_w=reduction,
        requested_energy_wh=energy,
        load_w=load_w,
        events=group.events,
        missing=missing,
        flags=(*_reordered_flags(group.events), *group.flags, *walk.late, *notes),
        superseded_by=stopper.group.episode_id if stopper is not None else None,
        ended_at=ended_at,
        ignored_events=group.ignored,
    )


def _stop_holding(walk: _Walk, moment: datetime) -> None:
    if walk.holding_since is not None:
        walk.held += max(0.0, (moment - walk.holding_since).total_seconds())
        walk.holding_since = None


def _target_of(ramp: _Ramp, episode_target: float | None) -> float | None:
    return episode_target if ramp.role != "closing" else ramp.target_w


def _judge_ramp(
    ramp: _Ramp,
    target_w: float | None,
    follower: Callable[[_Ramp], StoredEvent | None],
    now: datetime,
    deadline: timedelta,
    notes: list[str],
) -> str:
    """How one ramp went: done, missing_start, missing_end, running, stalled or
    interrupted (the next ramp began before this one reached its target)."""
    start, end, direction = ramp.start, ramp.end, ramp.direction
    if start is None:
        return "missing_start" if ramp.role != "resume" else "done"
    if end is not None:
        return "done"
    after = follower(ramp)
    if after is None:
        waited = now - start.received_at
        if waited > deadline:
            notes.append(
                f"stalled: start_ramp_{direction} received {format_duration(_secs(waited))} "
                f"ago and no end_ramp_{direction} within the "
                f"{format_duration(_secs(deadline))} ramp deadline"
            )
            return "stalled"
        return "running"
    if _stopped_short(direction, target_w, after):
        notes.append(
            f"interrupted: the ramp {direction} stopped at {_mw(after.calculated_w)}, "
            f"short of its {_mw(target_w)} target, when {after.event} followed"
        )
        return "interrupted"
    return "missing_end" if ramp.role != "resume" else "done"


def _stopped_short(direction: str, target_w: float | None, follower: StoredEvent) -> bool:
    """Whether the next ramp began before this one reached its target: then its end never
    happened (it is not missing). Judged by the load DPS calculated at that next start."""
    load = follower.calculated_w
    if target_w is None or load is None or not follower.event.startswith("start_"):
        return False
    tolerance = max(1.0, abs(target_w) * 1e-3)  # payloads round loads to 1 W (1e-6 MW)
    return load > target_w + tolerance if direction == "down" else load < target_w - tolerance


def _reordered_flags(events: tuple[StoredEvent, ...]) -> list[str]:
    flags: list[str] = []
    for i, earlier in enumerate(events):
        for later in events[i + 1 :]:
            if later.received_at < earlier.received_at:
                ahead = _secs(earlier.received_at - later.received_at)
                flags.append(
                    f"reordered: {later.event} received {format_duration(ahead)} "
                    f"before {earlier.event}"
                )
    return flags


def _late_flag(event: StoredEvent, stopper: _Stop) -> str:
    behind = _secs(event.received_at - stopper.at)
    label = stopper.group.correlation_id or stopper.group.episode_id
    return f"late: {event.event} received {format_duration(behind)} after {label} took the feed"


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1.0  # payloads carry MW to 6 places: 1 W


def _watts(value: float | None) -> float | None:
    # DPS: "--value=0 with any unit also sets the default constraint" — not a target of 0 W.
    return None if value is None or value == 0 else value


def _received(event: StoredEvent | None) -> datetime | None:
    return None if event is None else event.received_at


def _secs(delta: timedelta) -> float:
    return delta.total_seconds()


def _mw(watts: float | None) -> str:
    return "the default" if watts is None else f"{watts / 1e6:g} MW"


# --- loading from a store -----------------------------------------------------------------


def load_episodes(
    store: EventStore,
    *,
    since: datetime,
    until: datetime,
    feed_tag: str | None = None,
    correlation_id: str | None = None,
    status: str | None = None,
    now: datetime,
    ramp_deadline: timedelta | float,
) -> list[Episode]:
    """Episodes overlapping [since, until), oldest first, filtered as asked.

    The cost follows the range, not the history: the events received in the range (pages
    of 1000), one latest-event-per-feed lookup, one look-back page per feed before
    ``since``, then only what the episodes crossing the range's edges need: a look-ahead
    page after ``until`` for a feed still open there, a query by correlation id for an
    episode whose other events may lie outside what was read, and a page after an
    episode's opening when that lies before the look-back (to know what followed it).
    With a correlation id: its events (one episode per feed), then the same completion.
    """
    if status is not None and status not in EPISODE_STATUSES:
        raise ValueError(f"unknown status {status!r}: use one of {', '.join(EPISODE_STATUSES)}")
    if until <= since:
        raise ValueError("until must be after since")
    loader = _Loader(store, since, until, now, ramp_deadline)
    if correlation_id is not None:
        loader.read_correlation_id(feed_tag, correlation_id)
    else:
        loader.read_range(feed_tag)
    return [
        e
        for e in loader.complete()
        if e.overlaps(since, until)
        and (feed_tag is None or e.feed_tag == feed_tag)
        and (correlation_id is None or e.correlation_id == correlation_id)
        and (status is None or e.status == status)
    ]


class _Loader:
    """What one range needs from a store, read a page or a query at a time."""

    def __init__(
        self,
        store: EventStore,
        since: datetime,
        until: datetime,
        now: datetime,
        ramp_deadline: timedelta | float,
    ) -> None:
        self.store = store
        self.since, self.until, self.now, self.ramp_deadline = since, until, now, ramp_deadline
        self.found: dict[str, StoredEvent] = {}
        # Per feed: every event received from this time up to `until` has been read.
        self.read_from: dict[str, datetime] = {}
        # Feeds with events at or after `until` (None: not known, assume they may have).
        self.later_events: set[str] | None = None
        self.asked: set[tuple[str | None, str]] = set()  # (feed, correlation id) read whole
        self.followed: set[tuple[str, datetime]] = set()  # (feed, from) pages read

    def add(self, events: Iterable[StoredEvent]) -> None:
        for e in events:
            self.found[e.event_id] = e

    def derive(self) -> list[Episode]:
        return derive_episodes(self.found.values(), now=self.now, ramp_deadline=self.ramp_deadline)

    def read_range(self, feed_tag: str | None) -> None:
        query = EventQuery(feed_tag=feed_tag, since=self.since, until=self.until, limit=_PAGE)
        self.add(iter_events(self.store, query))
        latest = self.store.latest_by_feed()
        feeds = [f for f in latest if feed_tag is None or f == feed_tag]
        for feed in feeds:
            page = self.store.events(
                EventQuery(
                    feed_tag=feed, until=self.since, newest_first=True, limit=LOOK_AROUND_EVENTS
                )
            )
            self.add(page.events)
            whole = page.next_cursor is None  # the look-back reached the feed's first event
            self.read_from[feed] = _BEGINNING if whole else page.events[-1].received_at
        self.later_events = {f for f in feeds if latest[f].received_at >= self.until}

    def read_correlation_id(self, feed_tag: str | None, correlation_id: str) -> None:
        query = EventQuery(feed_tag=feed_tag, correlation_id=correlation_id, limit=_PAGE)
        events = list(iter_events(self.store, query))
        self.add(events)
        self.asked.update((e.feed_tag, correlation_id) for e in events)

    def complete(self) -> list[Episode]:
        """Read what the episodes overlapping the range still need, then derive them.

        Pages that follow an episode come first (they often complete the others); a query
        by correlation id only when none is pending. Every read is made once, so this ends.
        """
        while True:
            episodes = self.derive()
            follow, ask = self._wanted(episodes)
            if follow:
                for feed, start in sorted(follow):
                    self.followed.add((feed, start))
                    self.add(
                        self.store.events(
                            EventQuery(feed_tag=feed, since=start, limit=LOOK_AROUND_EVENTS)
                        ).events
                    )
            elif ask:
                for feed, corr in sorted(ask, key=lambda k: (k[0] or "", k[1])):
                    self.asked.add((feed, corr))
                    query = EventQuery(feed_tag=feed, correlation_id=corr, limit=_PAGE)
                    # A feed of None asks every feed: keep the events without one.
                    self.add(e for e in iter_events(self.store, query) if e.feed_tag == feed)
            else:
                return episodes

    def _wanted(
        self, episodes: list[Episode]
    ) -> tuple[set[tuple[str, datetime]], set[tuple[str | None, str]]]:
        by_id = {e.episode_id: e for e in episodes}
        follow: set[tuple[str, datetime]] = set()
        ask: set[tuple[str | None, str]] = set()
        for episode in episodes:
            if not episode.overlaps(self.since, self.until):
                continue
            feed = episode.feed_tag
            if episode.correlation_id is not None and self._may_have_more(episode):
                ask.add((feed, episode.correlation_id))
            if feed is not None:
                if episode.opened_at < self.read_from.get(feed, _END_OF_TIME):
                    follow.add((feed, episode.opened_at))  # what came next is unread
                elif episode.open and self._later_events(feed):
                    follow.add((feed, self.until))  # is it replaced after the range?
            # A successor seen only in part may be an older episode's late event.
            successor = by_id.get(episode.superseded_by or "")
            if (
                successor is not None
                and successor.correlation_id is not None
                and not successor.overlaps(self.since, self.until)
            ):
                ask.add((successor.feed_tag, successor.correlation_id))
        return follow - self.followed, ask - self.asked

    def _later_events(self, feed: str) -> bool:
        return self.later_events is None or feed in self.later_events

    def _may_have_more(self, episode: Episode) -> bool:
        """Whether some of a correlated episode's events may lie outside what was read.

        Not when all four are here, nor for a curtailment still going on whose feed has
        nothing after the range. Otherwise its opening may lie before the range, an event
        it lacks may have arrived out of order across an edge, or it went on after it.
        """
        seen = {e.event for e in episode.events}
        if len(seen) == 4:
            return False
        going_on = (
            episode.open
            and episode.kind == "curtailment"
            and "start_ramp_down" in seen
            and episode.feed_tag is not None
            and not self._later_events(episode.feed_tag)
        )
        return not going_on
