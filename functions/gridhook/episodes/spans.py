"""Spans of time, [start, end): clipped to a range and added up.

Every total over a range counts only what lies inside it: an episode's time at its target
(its *held spans*) and anything figured from it, clipped to [since, until), so totals over
adjacent ranges add up to the total over their union.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

__all__ = ["Span", "clip", "duration"]

#: [start, end): from start, up to but not including end.
Span = tuple[datetime, datetime]


def clip(spans: Iterable[Span], since: datetime, until: datetime) -> tuple[Span, ...]:
    """The parts of ``spans`` inside [since, until), in their order; empty parts dropped."""
    clipped = []
    for start, end in spans:
        start, end = max(start, since), min(end, until)
        if end > start:
            clipped.append((start, end))
    return tuple(clipped)


def duration(spans: Iterable[Span]) -> float:
    """Their total length in seconds (added as timedeltas: exact to the microsecond)."""
    return sum((end - start for start, end in spans), timedelta()).total_seconds()
