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

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gridhook.events import StoredEvent, rfc3339
from gridhook.state import episode_key, order_episode
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
_BEGINNING = datetime.min.replace(tzinfo=UTC)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Episode:
    """One load target on one feed, as its events tell it. Times are receipt times.

    ``kind`` is "curtailment" when the episode opens with a ramp down (the usual case) and
    "increase" when it opens with a ramp up (a target above the load). The *opening* ramp
    goes to the target, the *closing* ramp goes away from it; ``ramp_down_*`` and
    ``ramp_up_*`` name the ramps by direction whatever the kind.

    Durations are seconds, None when unknown (an event missing, or an end received before
    its start). ``requested_*`` figures are what DPS was asked for, not metered: the
    reduction is previous target - target (negative for an increase), the energy is that
    reduction held for ``constrained_seconds``, in watt-hours. A null target, or a zero one
    (DPS's other spelling of "the default"), is None in watts: the default is not in the
    events, so figures that need it are None.
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
    superseded_by: str | None = None  # the episode that replaced this target on the feed
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
class _Group:
    """The events of one episode before anything is judged: kept (first of each type,
    in the order they happened) and repeats."""

    episode_id: str
    feed_tag: str | None
    correlation_id: str | None
    kept: tuple[StoredEvent, ...]
    repeats: tuple[StoredEvent, ...]

    @property
    def opened_at(self) -> datetime:
        return min(e.received_at for e in self.kept)


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
        for index, group in enumerate(groups):
            successor = groups[index + 1] if index + 1 < len(groups) else None
            episodes.append(_judge(group, successor, now, deadline))
    episodes.sort(key=lambda e: (e.started_at, e.episode_id))
    return episodes


def _groups(events: Iterable[StoredEvent]) -> list[_Group]:
    unique = {e.event_id: e for e in events}
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
    kept: list[StoredEvent] = []
    repeats: list[StoredEvent] = []
    seen: set[str] = set()
    for e in order_episode(members):  # the first received of each type comes first
        (repeats if e.event in seen else kept).append(e)
        seen.add(e.event)
    digest = hashlib.sha256(json.dumps(id_basis).encode("utf-8")).hexdigest()[:20]
    return _Group(digest, feed, corr, tuple(kept), tuple(repeats))


@dataclass(frozen=True, slots=True)
class _Ramp:
    start: StoredEvent | None
    end: StoredEvent | None
    outcome: str  # done | absent | running | stalled | interrupted | missing_start | missing_end

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        elapsed = (self.end.received_at - self.start.received_at).total_seconds()
        return elapsed if elapsed >= 0 else None


def _judge(group: _Group, successor: _Group | None, now: datetime, deadline: timedelta) -> Episode:
    kept = {e.event: e for e in group.kept}
    kind = "curtailment" if group.kept[0].event.endswith("_down") else "increase"
    opening, closing = ("down", "up") if kind == "curtailment" else ("up", "down")
    source = kept.get(f"start_ramp_{opening}") or kept[f"end_ramp_{opening}"]
    target_w = _watts(source.target_w)
    closing_events = [kept.get(f"start_ramp_{closing}"), kept.get(f"end_ramp_{closing}")]
    closing_first = next((e for e in closing_events if e is not None), None)
    closed_by_itself = closing_events[1] is not None
    superseded = successor if successor is not None and not closed_by_itself else None
    after_episode = superseded.kept[0] if superseded is not None else None

    notes: list[str] = []
    ramps = {
        opening: _ramp(
            kept, opening, target_w, closing_first or after_episode, now, deadline, notes
        ),
        closing: _ramp(
            kept,
            closing,
            _watts(closing_first.target_w) if closing_first else None,
            after_episode,
            now,
            deadline,
            notes,
        ),
    }
    opened, closed = ramps[opening], ramps[closing]

    held: float | None = None
    if opened.outcome == "interrupted":
        held = 0.0
    elif opened.end is not None:
        if closed.start is not None:
            hold_end: datetime | None = closed.start.received_at
        elif closed.end is not None:
            hold_end = None  # it ended before the closing end, but when is unknown
        elif superseded is not None:
            hold_end = superseded.opened_at
        else:
            hold_end = now
        if hold_end is not None and hold_end >= opened.end.received_at:
            held = (hold_end - opened.end.received_at).total_seconds()

    prev_w = _watts(source.prev_target_w)
    reduction = prev_w - target_w if prev_w is not None and target_w is not None else None
    energy = reduction * held / 3600.0 if reduction is not None and held is not None else None
    if opened.end is not None:
        compliant = opened.end.compliant
    else:
        compliant = False if opened.outcome == "interrupted" else None

    if closed_by_itself:
        ended_at: datetime | None = closing_events[1].received_at  # type: ignore[union-attr]
    else:
        ended_at = superseded.opened_at if superseded is not None else None

    missing = tuple(
        f"{edge}_ramp_{direction}"
        for direction in (opening, closing)
        for edge in ("start", "end")
        if ramps[direction].outcome == f"missing_{edge}"
    )
    if any(r.outcome == "stalled" for r in ramps.values()):
        status = "stalled"
    elif missing:
        status = "partial"
    elif ended_at is None:
        status = "in_progress"
    else:
        status = "complete"

    down, up = ramps["down"], ramps["up"]
    return Episode(
        episode_id=group.episode_id,
        feed_tag=group.feed_tag,
        correlation_id=group.correlation_id,
        status=status,
        kind=kind,
        open=ended_at is None,
        target_load=source.payload.get("target_load"),
        target_w=target_w,
        prev_target_load=source.payload.get("prev_target_load"),
        prev_target_w=prev_w,
        interval_start=source.start_time,
        interval_end=source.end_time,
        ramp_down_started_at=_received(down.start),
        ramp_down_ended_at=_received(down.end),
        ramp_down_seconds=down.seconds,
        constrained_seconds=held,
        ramp_up_started_at=_received(up.start),
        ramp_up_ended_at=_received(up.end),
        ramp_up_seconds=up.seconds,
        compliant=compliant,
        requested_reduction_w=reduction,
        requested_energy_wh=energy,
        load_w={e.event: e.calculated_w for e in group.kept},
        events=group.kept,
        missing=missing,
        flags=(*_arrival_flags(group, successor), *notes),
        superseded_by=superseded.episode_id if superseded is not None else None,
        ended_at=ended_at,
        ignored_events=group.repeats,
    )


def _ramp(
    kept: dict[str, StoredEvent],
    direction: str,
    target_w: float | None,
    follower: StoredEvent | None,
    now: datetime,
    deadline: timedelta,
    notes: list[str],
) -> _Ramp:
    """How one ramp went. ``follower`` is the first event after it (in this episode, or
    the superseding one's first); without one the ramp may still be under way."""
    start, end = kept.get(f"start_ramp_{direction}"), kept.get(f"end_ramp_{direction}")
    if start is None and end is None:
        return _Ramp(None, None, "absent")
    if start is None:
        return _Ramp(None, end, "missing_start")
    if end is not None:
        return _Ramp(start, end, "done")
    if follower is None:
        waited = now - start.received_at
        if waited > deadline:
            notes.append(
                f"stalled: start_ramp_{direction} received {format_duration(_secs(waited))} "
                f"ago and no end_ramp_{direction} within the "
                f"{format_duration(_secs(deadline))} ramp deadline"
            )
            return _Ramp(start, None, "stalled")
        return _Ramp(start, None, "running")
    if _stopped_short(direction, target_w, follower):
        notes.append(
            f"interrupted: the ramp {direction} stopped at {_mw(follower.calculated_w)}, "
            f"short of its {_mw(target_w)} target, when {follower.event} followed"
        )
        return _Ramp(start, None, "interrupted")
    return _Ramp(start, None, "missing_end")


def _stopped_short(direction: str, target_w: float | None, follower: StoredEvent) -> bool:
    """Whether the next ramp began before this one reached its target: then its end never
    happened (it is not missing). Judged by the load DPS calculated at that next start."""
    load = follower.calculated_w
    if target_w is None or load is None or not follower.event.startswith("start_"):
        return False
    tolerance = max(1.0, abs(target_w) * 1e-3)  # payloads round loads to 1 W (1e-6 MW)
    return load > target_w + tolerance if direction == "down" else load < target_w - tolerance


def _arrival_flags(group: _Group, successor: _Group | None) -> list[str]:
    flags: list[str] = []
    for i, earlier in enumerate(group.kept):
        for later in group.kept[i + 1 :]:
            if later.received_at < earlier.received_at:
                ahead = _secs(earlier.received_at - later.received_at)
                flags.append(
                    f"reordered: {later.event} received {format_duration(ahead)} "
                    f"before {earlier.event}"
                )
    first_of = {e.event: e for e in group.kept}
    for repeat in group.repeats:
        first = first_of[repeat.event]
        differs = sorted(
            k
            for k in set(first.payload) | set(repeat.payload)
            if first.payload.get(k) != repeat.payload.get(k)
        )
        flags.append(
            f"repeated: a second {repeat.event} (event {repeat.event_id[:12]}) differs in "
            f"{', '.join(differs) or 'content'}; kept the first received"
        )
    if successor is not None:
        for e in (*group.kept, *group.repeats):
            if e.received_at > successor.opened_at:
                behind = _secs(e.received_at - successor.opened_at)
                label = successor.correlation_id or successor.episode_id
                flags.append(
                    f"late: {e.event} received {format_duration(behind)} after the feed's "
                    f"next episode ({label}) began"
                )
    return flags


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
        """Whether some of a correlated episode's events may lie outside what was read."""
        seen = {e.event for e in (*episode.events, *episode.ignored_events)}
        if "start_ramp_down" not in seen:  # its opening may lie before what was read
            return True
        return episode.open and (episode.feed_tag is None or self._later_events(episode.feed_tag))
