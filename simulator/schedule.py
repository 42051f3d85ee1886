"""The load-target schedule and its documented semantics.

- For any instant, the most recently scheduled target that covers it wins.
- A target without a value ("null target") puts the feed back on its default constraint.
- A target without an end is in effect until replaced.
- A target without feed tags applies to every feed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simulator.units import Unit


@dataclass(frozen=True)
class ScheduledTarget:
    sequence: int  # scheduling order: higher = more recent = wins
    start: datetime
    end: datetime | None  # None = until replaced
    value_watts: float | None  # None = null target (back to the default)
    requested_value: float | None  # as the caller sent it, with requested_unit
    requested_unit: Unit
    best_effort: bool
    feed_tags: tuple[str, ...]  # empty = all feeds
    correlation_id: str

    def applies_to(self, feed_tag: str) -> bool:
        return not self.feed_tags or feed_tag in self.feed_tags

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class Segment:
    """A period of one feed during which one scheduled target wins."""

    feed_tag: str
    start: datetime
    end: datetime | None
    target: ScheduledTarget


class Schedule:
    def __init__(self) -> None:
        self._targets: list[ScheduledTarget] = []
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, targets: Iterable[dict[str, Any]]) -> list[ScheduledTarget]:
        """Append targets (keyword dicts of ScheduledTarget minus `sequence`) atomically, in
        order, so later entries of one request win over earlier ones."""
        with self._lock:
            added = [ScheduledTarget(sequence=next(self._sequence), **fields) for fields in targets]
            self._targets.extend(added)
        return added

    def targets(self) -> list[ScheduledTarget]:
        with self._lock:
            return list(self._targets)

    def winner(self, feed_tag: str, moment: datetime) -> ScheduledTarget | None:
        """The target in effect for `feed_tag` at `moment`, or None (no target scheduled)."""
        return _winner(self.targets(), feed_tag, moment)

    def segments(self, feed_tag: str, start: datetime, end: datetime | None) -> list[Segment]:
        """The effective schedule of one feed within [start, end), clipped to that interval;
        periods without any scheduled target are left out."""
        candidates = [
            t
            for t in self.targets()
            if t.applies_to(feed_tag)
            and (t.end is None or t.end > start)
            and (end is None or t.start < end)
        ]
        # The winner can only change where some candidate starts or ends.
        edges = {start}
        for target in candidates:
            edges.update(e for e in (target.start, target.end) if e is not None and e > start)
        points: list[datetime | None] = [*sorted(e for e in edges if end is None or e < end), end]
        segments: list[Segment] = []
        for left, right in itertools.pairwise(points):
            assert left is not None  # only the final point can be open
            winner = _winner(candidates, feed_tag, left)
            if winner is None:
                continue
            previous = segments[-1] if segments else None
            if previous and previous.target is winner and previous.end == left:
                segments[-1] = Segment(feed_tag, previous.start, right, winner)
            else:
                segments.append(Segment(feed_tag, left, right, winner))
        return segments


def _winner(
    targets: Sequence[ScheduledTarget], feed_tag: str, moment: datetime
) -> ScheduledTarget | None:
    best: ScheduledTarget | None = None
    for target in targets:
        if (
            target.applies_to(feed_tag)
            and target.covers(moment)
            and (best is None or target.sequence > best.sequence)
        ):
            best = target
    return best
