"""The ranges and filters reports accept, checked once for the CLI and HTTP alike.

Times are RFC 3339 (UTC when no offset is given) or an age such as ``30d``, ``12h``,
``90m``, ``45s`` meaning that long before *now* — gridhook's clock, so a demo on the
development clock asks about its simulated day. A bad value raises :class:`BadParameter`
naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from gridhook.episodes import EPISODE_STATUSES

__all__ = [
    "FORMATS",
    "MAX_RANGE",
    "BadParameter",
    "parse_choice",
    "parse_range",
    "parse_status",
    "parse_tag",
    "parse_when",
    "single_values",
]

FORMATS = ("html", "json", "csv")
#: Longer ranges are refused: a report's cost follows its range (and samples are kept
#: 400 days by default).
MAX_RANGE = timedelta(days=400)
_AGE = re.compile(r"(\d{1,7})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_TAG = 256


class BadParameter(ValueError):
    """A parameter with a value reports cannot use; ``name`` is the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def parse_when(name: str, text: str, now: datetime) -> datetime:
    """An RFC 3339 time, or an age like ``7d`` before ``now``."""
    value = text.strip()
    age = _AGE.fullmatch(value)
    if age:
        return now - timedelta(seconds=int(age[1]) * _UNIT_SECONDS[age[2]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(
            name, f"{text[:40]!r} is neither an RFC 3339 time nor an age like 30d, 12h, 90m"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def parse_range(
    since: str | None, until: str | None, *, now: datetime, default_since: timedelta
) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to ``default_since`` before until."""
    end = now if until is None else parse_when("until", until, now)
    start = end - default_since if since is None else parse_when("since", since, now)
    if start >= end:
        raise BadParameter("since", "must be before until")
    if end - start > MAX_RANGE:
        raise BadParameter("since", f"the range may span at most {MAX_RANGE.days} days")
    return start, end


def parse_tag(name: str, text: str) -> str:
    """A feed tag or correlation id: as sent by DPS, printable, at most 256 characters."""
    if not text:
        raise BadParameter(name, "is empty")
    if len(text) > _MAX_TAG:
        raise BadParameter(name, f"is longer than {_MAX_TAG} characters")
    if not text.isprintable():
        raise BadParameter(name, "has control characters")
    return text


def parse_choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    value = text.strip().lower()
    if value not in choices:
        raise BadParameter(name, f"{text[:40]!r} is not one of {', '.join(choices)}")
    return value


def parse_status(text: str) -> str:
    return parse_choice("status", text, EPISODE_STATUSES)


def single_values(args: Mapping[str, list[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """Query parameters as one value each; unknown, repeated or empty ones are refused."""
    values: dict[str, str] = {}
    for name, given in args.items():
        if name not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise BadParameter(name[:40], f"unknown parameter (this path takes: {known})")
        if len(given) != 1:
            raise BadParameter(name, "given more than once")
        if given[0] == "":
            raise BadParameter(name, "is empty")
        values[name] = given[0]
    return values
