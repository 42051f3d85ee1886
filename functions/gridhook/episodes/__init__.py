"""Curtailment episodes, derived from stored events (never kept as a mutable document).

An episode is one load target on one feed: the events DPS sent for one correlation id on
that feed; without a correlation id, a ``start_ramp_down`` opens one and an
``end_ramp_up`` closes it (per feed, in receipt order). See docs/episodes.md for every
field, the statuses and their precedence, the flags and the edge cases, and
ARCHITECTURE.md "Episodes and reports".

- ``model``: the Episode record and its statuses.
- ``ordering``: the order events happened in, whatever order they arrived in (the one
  rule the episodes and the feed state, gridhook.state, share).
- ``grouping``, ``contention``, ``judging``: the pure derivation, in that order;
  ``derive_episodes`` runs it: the same events (in any order) give the same episodes.
- ``load``: ``load_episodes`` reads what one time range needs from an EventStore, at a
  cost that follows the range asked for, never the whole history. Only it imports the
  store: derivation never does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from gridhook.episodes.contention import Candidates, walk_episode
from gridhook.episodes.grouping import Group, group_events
from gridhook.episodes.judging import judge
from gridhook.episodes.model import EPISODE_STATUSES, Episode
from gridhook.events import StoredEvent

__all__ = ["EPISODE_STATUSES", "Episode", "derive_episodes"]


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
    by_feed: dict[str | None, list[Group]] = {}
    for group in group_events(events):
        by_feed.setdefault(group.feed_tag, []).append(group)
    episodes: list[Episode] = []
    for groups in by_feed.values():
        groups.sort(key=lambda g: (g.opened_at, g.episode_id))
        candidates = Candidates(groups)
        for index, group in enumerate(groups):  # oldest first: their take-backs stop newer ones
            stops = candidates.stops(index)
            walk = walk_episode(group, stops)
            candidates.took_back(index, walk.took_back)
            episodes.append(judge(group, stops, walk, now, deadline))
    episodes.sort(key=lambda e: (e.started_at, e.episode_id))
    return episodes
