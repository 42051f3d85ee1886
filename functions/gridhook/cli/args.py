"""What every ``gridhook`` command accepts: argument types that check bounds and choices while
parsing, and one message style for what they refuse.

A refused argument is one line on stderr, ``gridhook COMMAND: --flag: what is wrong``, and exit
code 2 — the same shape as a :class:`gridhook.cli.CommandError` — never a usage dump or a
traceback. Report and episode parameters are read by the rules of
:mod:`gridhook.report.params`, the same as power_report's HTTP parameters.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from gridhook.cli import CommandError
from gridhook.report.params import (
    SETTLEMENT_INTERVALS,
    SETTLEMENT_METHODS,
    SETTLEMENT_SOURCES,
    BadParameter,
    parse_choice,
    parse_tag,
    parse_when,
)

if TYPE_CHECKING:
    from gridhook.sites import Site, Sites

_Params = TypeVar("_Params")

__all__ = [
    "MAX_LIMIT",
    "SITE_SETTINGS",
    "Chosen",
    "Once",
    "Parser",
    "add_format",
    "add_site_argument",
    "choice",
    "chosen_sites",
    "command_error",
    "deployment_sites",
    "flag",
    "integer",
    "number",
    "port",
    "read_params",
    "tag",
    "when",
]

#: The most rows one listing prints (``--limit``); more is a job for an export, not a terminal.
MAX_LIMIT = 1_000_000
#: What the commands read of the environment to know the deployment's sites.
SITE_SETTINGS = ("GRIDHOOK_SITES_FILE", "GRIDHOOK_SITES", "GRIDHOOK_TIMEZONE")

# argparse says "argument --limit/-n: …"; gridhook says "--limit: …".
_ARGUMENT_PREFIX = re.compile(r"^argument ([^\s/:]+)(?:/[^\s:]+)*: ")


class Parser(argparse.ArgumentParser):
    """An argument parser whose every refusal is one line on stderr and exit code 2.

    Subcommand parsers are of the same class (argparse makes them with ``type(self)``).
    """

    def error(self, message: str) -> NoReturn:
        text = _ARGUMENT_PREFIX.sub(r"\1: ", message).replace("\n", " ")
        self.exit(2, f"{self.prog}: {text}\n")


class Once(argparse.Action):
    """Store an option's value, refusing the option given twice (``--since 1d --since 2d``
    would otherwise keep the last one silently; HTTP refuses a repeated parameter too)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = f"_{self.dest}_given"
        if getattr(namespace, given, False):
            raise argparse.ArgumentError(self, "given more than once")
        setattr(namespace, given, True)
        setattr(namespace, self.dest, values)


def add_format(
    parser: argparse.ArgumentParser, formats: Sequence[str], *, help: str | None = None
) -> None:
    """``--format``, one of ``formats`` in any case; the first is the default."""
    parser.add_argument(
        "--format",
        type=choice("format", formats),
        action=Once,
        default=formats[0],
        metavar="{" + ",".join(formats) + "}",
        help=help or f"default: {formats[0]}",
    )


def flag(name: str) -> str:
    """A parameter's CLI spelling: ``correlation_id`` -> ``--correlation-id``."""
    return "--" + name.replace("_", "-")


def command_error(exc: BadParameter) -> CommandError:
    """A parameter the shared rules refused, said the CLI way (``--correlation-id: …``)."""
    return CommandError(f"{flag(exc.name)}: {exc.message}")


def read_params(
    read: Callable[..., _Params],
    args: argparse.Namespace,
    names: Sequence[str],
    *,
    now: datetime,
    **extra: Any,
) -> _Params:
    """Parameters read by the rules HTTP uses (``report_params``, ``episode_params``) from the
    options given on the command line (named as in HTTP: ``--correlation-id`` is
    ``correlation_id``); ``extra`` goes to ``read`` as it is (the deployment's ``sites``)."""
    values: dict[str, str | tuple[str, ...]] = {}
    for name in names:
        given = getattr(args, name, None)
        if given is not None:  # a repeatable option (``--site``) holds a list
            values[name] = tuple(given) if isinstance(given, list) else given
    try:
        return read(values, now=now, **extra)
    except BadParameter as exc:
        raise command_error(exc) from None


def _checked(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse type from a parser that raises BadParameter."""

    def check(text: str) -> Any:
        try:
            return parse(text)
        except BadParameter as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    check.__name__ = name
    return check


def integer(low: int, high: int) -> Callable[[str], int]:
    """A whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise BadParameter("", f"{text[:40]!r} is not a whole number from {low} to {high}")
        return value

    return _checked(parse, "integer")


def number(low: float, high: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """A finite number from ``low`` (``above``: greater than it) up to ``high`` (if given)."""
    bounds = f"above {low:g}" if above else f"from {low:g}"
    bounds += "" if high is None else f" up to {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        inside = (
            math.isfinite(value)
            and (value > low if above else value >= low)
            and (high is None or value <= high)
        )
        if not inside:
            raise BadParameter("", f"{text[:40]!r} is not a number {bounds}")
        return value

    return _checked(parse, "number")


def port(text: str) -> int:
    """A TCP port a server can listen on or a client can reach: 1 to 65535."""
    return integer(1, 65535)(text)


def choice(name: str, choices: Sequence[str]) -> Callable[[str], str]:
    """One of ``choices``, in any case (``--format JSON``), as HTTP reads it."""
    return _checked(lambda text: parse_choice(name, text, tuple(choices)), "choice")


def tag(name: str) -> Callable[[str], str]:
    """A feed tag or correlation id by the report rules: not empty, printable, bounded."""
    return _checked(lambda text: parse_tag(name, text), "tag")


def when(name: str) -> Callable[[str], str]:
    """An RFC 3339 time or an age, checked by the report rules; the text is kept, and the
    command resolves it against gridhook's clock once it has configured that clock."""

    def parse(text: str) -> str:
        parse_when(name, text, datetime.now(UTC))
        return text

    return _checked(parse, "time")


def add_range_arguments(parser: argparse.ArgumentParser) -> None:
    """``--since``/``--until`` as a report reads them (30 days to now by default)."""
    parser.add_argument(
        "--since",
        type=when("since"),
        action=Once,
        help="start: RFC 3339 or an age like 30d, 12h (default: 30 days before --until)",
    )
    parser.add_argument(
        "--until",
        type=when("until"),
        action=Once,
        help="end, exclusive: RFC 3339 or an age (default: now)",
    )


def add_settling_arguments(parser: argparse.ArgumentParser, *, interval: bool) -> None:
    """``--method``, ``--source`` and, with ``interval``, ``--interval``: how a report, a
    settlement and a baseline settle."""
    parser.add_argument(
        "--method",
        type=choice("method", SETTLEMENT_METHODS),
        action=Once,
        metavar="{" + ",".join(SETTLEMENT_METHODS) + "}",
        help="baseline method (default: $GRIDHOOK_BASELINE_METHOD or caiso-10-in-10)",
    )
    parser.add_argument(
        "--source",
        type=choice("source", SETTLEMENT_SOURCES),
        action=Once,
        metavar="{" + ",".join(SETTLEMENT_SOURCES) + "}",
        help="the load: meter data where a feed has some, else DPS samples (auto, the "
        "default); or one of them",
    )
    if interval:
        parser.add_argument(
            "--interval",
            type=choice("interval", SETTLEMENT_INTERVALS),
            action=Once,
            metavar="{" + ",".join(SETTLEMENT_INTERVALS) + "}",
            help="interval length, aligned in the site's local time (default: 1h)",
        )


def add_site_argument(parser: argparse.ArgumentParser) -> None:
    """``--site NAME``, repeatable (like HTTP's ``site=``): the sites to read; without it,
    every site of the deployment."""
    parser.add_argument(
        "--site",
        action="append",
        type=tag("site"),
        metavar="NAME",
        help="only this site; repeat it for more (default: every site of the deployment)",
    )


def deployment_sites() -> Sites:
    """The sites the deployment serves, from the settings the functions read
    (GRIDHOOK_SITES_FILE or GRIDHOOK_SITES, else one ``default`` site in GRIDHOOK_TIMEZONE);
    a bad one is a CommandError naming the setting, the site and the key."""
    from gridhook.sites import SiteConfigError, load_sites

    try:
        return load_sites({name: os.environ[name] for name in SITE_SETTINGS if name in os.environ})
    except SiteConfigError as exc:
        raise CommandError(str(exc)) from None


@dataclass(frozen=True)
class Chosen:
    """The sites a command reads, and whether its tables name each row's site."""

    sites: tuple[Site, ...]  # in the deployment's order
    several: bool  # the deployment has more than one site: tables have a SITE column


def chosen_sites(args: argparse.Namespace) -> Chosen:
    """The sites ``--site`` names (every site without it); an unknown one is refused in one
    line naming it and the sites the deployment serves (``--site: unknown site ...``)."""
    from gridhook.report.params import parse_sites

    deployment = deployment_sites()
    try:
        sites = parse_sites(getattr(args, "site", None) or (), deployment)
    except BadParameter as exc:
        raise command_error(exc) from None
    return Chosen(sites, deployment.several)
