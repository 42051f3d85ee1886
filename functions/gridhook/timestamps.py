"""RFC 3339 timestamps: read one into an aware UTC datetime, and write one back.

A leaf module (it imports nothing of gridhook), so the schema's date-time check, the
events, the clock and the simulator's use of the clock can all share it without a cycle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

__all__ = ["parse_time", "rfc3339"]


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime (None stays None).

    Raises ValueError for text that is not one.
    """
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T", 1))
    if parsed.tzinfo is None:  # the schema's pattern requires an offset; belt and braces
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@overload
def rfc3339(value: datetime) -> str: ...
@overload
def rfc3339(value: datetime | None) -> str | None: ...
def rfc3339(value: datetime | None) -> str | None:
    """A datetime as RFC 3339 in UTC with a ``Z`` (None stays None)."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
