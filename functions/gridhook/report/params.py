"""The parameters reports and episode listings accept, read by one set of rules for the CLI
(``gridhook report`` / ``episodes``) and HTTP (``power_report``'s ``/report`` / ``/episodes``).

Times are RFC 3339 in any case (``2026-12-02T04:00:00Z`` or ``2026-12-02t04:00:00z``; UTC when
no offset is given) or an age such as ``30d``, ``12h``, ``90m``, ``45s`` meaning that long
before *now* — gridhook's clock, so a demo on the development clock asks about its simulated
day. Choices (format, status) are case-insensitive; tags are kept as given. A bad value raises
:class:`BadParameter` naming the parameter (the HTTP name: ``correlation_id``; the CLI shows it
as ``--correlation-id``).

``site`` is the one parameter that may be given more than once, on the command line
(``--site phx1 --site ams2``) as over HTTP (``?site=phx1&site=ams2``): each names one more
site to read; none means every site of the deployment. A site the deployment does not serve
is refused, naming the sites it does.

``method`` (a baseline method; default ``GRIDHOOK_BASELINE_METHOD``) and ``source``
(``auto``, ``meter`` or ``samples``) say how a report settles its curtailments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gridhook.episodes import EPISODE_STATUSES
from gridhook.settings import BASELINE_METHODS
from gridhook.sites import Site, Sites, one_default_site

__all__ = [
    "EARLIEST",
    "EPISODES_DEFAULT_RANGE",
    "EPISODE_PARAMETERS",
    "FORMATS",
    "LATEST",
    "LOAD_SOURCES",
    "MAX_RANGE",
    "REPEATABLE",
    "REPORT_DEFAULT_RANGE",
    "REPORT_PARAMETERS",
    "SETTLEMENT_INTERVALS",
    "SETTLEMENT_METHODS",
    "SETTLEMENT_PARAMETERS",
    "SETTLEMENT_SOURCES",
    "BadParameter",
    "EpisodeParams",
    "ParamValues",
    "ReportParams",
    "SettlementParams",
    "episode_params",
    "parse_choice",
    "parse_method",
    "parse_range",
    "parse_sites",
    "parse_status",
    "parse_tag",
    "parse_when",
    "report_params",
    "settlement_params",
    "single_values",
]

FORMATS = ("html", "json", "csv")
#: Longer ranges are refused: a report's cost follows its range (and samples are kept
#: 400 days by default).
MAX_RANGE = timedelta(days=400)
REPORT_DEFAULT_RANGE = timedelta(days=30)
EPISODES_DEFAULT_RANGE = timedelta(days=7)
#: The times gridhook reads: wide enough for any record, narrow enough that the arithmetic
#: around a range (look-backs, look-aheads) never leaves what a datetime can hold.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
REPORT_PARAMETERS = ("since", "until", "site", "feed", "format", "method", "source")
#: Where a settlement's load comes from: the meter where a feed has meter data, else DPS's
#: samples (``auto``); or one of them (``gridhook.intervals.load.LOAD_SOURCES``).
LOAD_SOURCES = ("auto", "meter", "samples")
EPISODE_PARAMETERS = ("since", "until", "site", "feed", "status", "correlation_id")
#: The parameters that may be given more than once (each value names one more).
REPEATABLE = ("site",)

#: Parameters by name: one text each, a tuple of texts for a repeatable one.
ParamValues = Mapping[str, str | tuple[str, ...]]

_AGE = re.compile(r"(\d{1,7})([smhd])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_TAG = 256


class BadParameter(ValueError):
    """A parameter with a value reports cannot use; ``name`` is the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True, slots=True)
class ReportParams:
    since: datetime
    until: datetime
    feed_tag: str | None
    format: str
    sites: tuple[Site, ...] = ()  # the sites asked for, in the deployment's order
    method: str | None = None  # the baseline method; None: GRIDHOOK_BASELINE_METHOD
    source: str = "auto"  # auto | meter | samples


@dataclass(frozen=True, slots=True)
class EpisodeParams:
    since: datetime
    until: datetime
    feed_tag: str | None
    correlation_id: str | None
    status: str | None
    sites: tuple[Site, ...] = ()  # the sites asked for, in the deployment's order


def report_params(
    values: ParamValues, *, now: datetime, sites: Sites | None = None
) -> ReportParams:
    """A report's parameters (names as in ``REPORT_PARAMETERS``): 30 days to now, HTML, every
    site of ``sites`` (the deployment's; default: one ``default`` site)."""
    since, until = parse_range(
        _one(values, "since"),
        _one(values, "until"),
        now=now,
        default_since=REPORT_DEFAULT_RANGE,
    )
    return ReportParams(
        since=since,
        until=until,
        feed_tag=_tag(values, "feed"),
        format=parse_choice("format", _one(values, "format") or "html", FORMATS),
        sites=parse_sites(_many(values, "site"), sites or one_default_site()),
        method=parse_method(_one(values, "method")),
        source=parse_choice("source", _one(values, "source") or "auto", LOAD_SOURCES),
    )


def parse_method(text: str | None) -> str | None:
    """A baseline method (any case), or None when not given."""
    return None if text is None else parse_choice("method", text, BASELINE_METHODS)


def episode_params(
    values: ParamValues, *, now: datetime, sites: Sites | None = None
) -> EpisodeParams:
    """Episode filters (names as in ``EPISODE_PARAMETERS``): 7 days to now, or with a
    correlation id and no ``since`` any time (its events are read by id, not by range);
    every site of ``sites`` unless ``site`` names some."""
    correlation_id = _tag(values, "correlation_id")
    since, until = parse_range(
        _one(values, "since"),
        _one(values, "until"),
        now=now,
        default_since=None if correlation_id is not None else EPISODES_DEFAULT_RANGE,
    )
    status = _one(values, "status")
    return EpisodeParams(
        since=since,
        until=until,
        feed_tag=_tag(values, "feed"),
        correlation_id=correlation_id,
        status=None if status is None else parse_status(status),
        sites=parse_sites(_many(values, "site"), sites or one_default_site()),
    )


def _one(values: ParamValues, name: str) -> str | None:
    text = values.get(name)
    if isinstance(text, tuple):  # only a repeatable parameter may hold several
        if len(text) != 1:
            raise BadParameter(name, "given more than once")
        return text[0]
    return text


def _many(values: ParamValues, name: str) -> tuple[str, ...]:
    given = values.get(name)
    if given is None:
        return ()
    return given if isinstance(given, tuple) else (given,)


def _tag(values: ParamValues, name: str) -> str | None:
    text = _one(values, name)
    return None if text is None else parse_tag(name, text)


def parse_sites(names: Sequence[str], deployment: Sites) -> tuple[Site, ...]:
    """The sites ``names`` ask for, each once, in the deployment's order; none: every site.
    A name the deployment does not serve is refused, naming the ones it does."""
    wanted: set[str] = set()
    for name in names:
        if not name:
            raise BadParameter("site", "is empty")
        if name not in deployment.names:
            shown = name[:63] + ("..." if len(name) > 63 else "")
            raise BadParameter(
                "site",
                f"unknown site {shown!r}: this deployment serves {', '.join(deployment.names)}",
            )
        wanted.add(name)
    return tuple(s for s in deployment if not wanted or s.name in wanted)


def parse_when(name: str, text: str, now: datetime) -> datetime:
    """An RFC 3339 time, or an age like ``7d`` before ``now``, between EARLIEST and LATEST."""
    value = text.strip()
    age = _AGE.fullmatch(value)
    try:
        if age:
            moment = now - timedelta(seconds=int(age[1]) * _UNIT_SECONDS[age[2].lower()])
        else:
            # fromisoformat wants the T and Z in capitals; RFC 3339 allows either case.
            moment = datetime.fromisoformat(value.upper())
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError:
        raise BadParameter(
            name, f"{text[:40]!r} is neither an RFC 3339 time nor an age like 30d, 12h, 90m"
        ) from None
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise BadParameter(
            name, f"{text[:40]!r} is outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)"
        )
    return moment


def parse_range(
    since: str | None,
    until: str | None,
    *,
    now: datetime,
    default_since: timedelta | None,
) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to ``default_since`` before until (None:
    from EARLIEST, unbounded). A range given with ``since`` may span at most MAX_RANGE.

    A range that is backwards or too long blames the parameter that was given, or, when both
    were, the one farther from now (``since=1d&until=2099-…``: until is the odd one out).
    """
    end = now if until is None else parse_when("until", until, now)
    if since is not None:
        start = parse_when("since", since, now)
    elif default_since is None:
        start = EARLIEST
    else:
        start = max(EARLIEST, end - default_since)
    if start < end and (since is None or end - start <= MAX_RANGE):
        return start, end
    if until is None:
        blamed = "since"
    elif since is None:
        blamed = "until"
    else:
        blamed = "until" if abs(end - now) > abs(start - now) else "since"
    if start >= end:
        if blamed == "since":
            message = f"{_show(start)} is not before until ({_show(end)})"
        else:
            message = f"{_show(end)} is not after since ({_show(start)})"
    else:
        other = f"until ({_show(end)})" if blamed == "since" else f"since ({_show(start)})"
        message = (
            f"{_show(start if blamed == 'since' else end)} is {(end - start).days} days from "
            f"{other}; a range may span at most {MAX_RANGE.days} days"
        )
    raise BadParameter(blamed, message)


def _show(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
    """One of ``choices``, in any case."""
    value = text.strip().lower()
    if value not in choices:
        raise BadParameter(name, f"{text[:40]!r} is not one of {', '.join(choices)}")
    return value


def parse_status(text: str) -> str:
    return parse_choice("status", text, EPISODE_STATUSES)


def single_values(
    args: Mapping[str, list[str]], allowed: tuple[str, ...]
) -> dict[str, str | tuple[str, ...]]:
    """Query parameters as one value each (a tuple of values for a ``REPEATABLE`` one);
    unknown, empty or repeated ones (but the repeatable) are refused."""
    values: dict[str, str | tuple[str, ...]] = {}
    for name, given in args.items():
        if name not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise BadParameter(name[:40], f"unknown parameter (this path takes: {known})")
        if "" in given:
            raise BadParameter(name, "is empty")
        if name in REPEATABLE:
            values[name] = tuple(given)
        elif len(given) != 1:
            raise BadParameter(name, "given more than once")
        else:
            values[name] = given[0]
    return values


# -- settlement ------------------------------------------------------------------------------

#: What ``/settlement`` and ``gridhook settlement`` take: the report's range and sites, and
#: how to settle (the method, the load's source, the interval).
SETTLEMENT_PARAMETERS = ("since", "until", "site", "feed", "method", "source", "interval", "format")
SETTLEMENT_SOURCES = LOAD_SOURCES
SETTLEMENT_INTERVALS = ("1h", "15m", "5m")
#: gridhook.settlement.METHODS, as settings spells them out (params must not import numpy:
#: the CLI's argument parsing uses them); tests/unit/test_settlement_params.py keeps them equal.
SETTLEMENT_METHODS = BASELINE_METHODS


@dataclass(frozen=True, slots=True)
class SettlementParams:
    since: datetime
    until: datetime
    feed_tag: str | None
    method: str | None  # None: GRIDHOOK_BASELINE_METHOD
    source: str
    interval: str
    format: str
    sites: tuple[Site, ...] = ()


def settlement_params(
    values: ParamValues,
    *,
    now: datetime,
    sites: Sites | None = None,
    formats: tuple[str, ...] = FORMATS,
) -> SettlementParams:
    """A settlement's parameters (``SETTLEMENT_PARAMETERS``), by the report's rules: 30 days
    to now, every site unless ``site`` names some; the first of ``formats`` by default."""
    since, until = parse_range(
        _one(values, "since"),
        _one(values, "until"),
        now=now,
        default_since=REPORT_DEFAULT_RANGE,
    )
    method = _one(values, "method")
    return SettlementParams(
        since=since,
        until=until,
        feed_tag=_tag(values, "feed"),
        method=None if method is None else parse_choice("method", method, SETTLEMENT_METHODS),
        source=parse_choice("source", _one(values, "source") or "auto", SETTLEMENT_SOURCES),
        interval=parse_choice("interval", _one(values, "interval") or "1h", SETTLEMENT_INTERVALS),
        format=parse_choice("format", _one(values, "format") or formats[0], formats),
        sites=parse_sites(_many(values, "site"), sites or one_default_site()),
    )
