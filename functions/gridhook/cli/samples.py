"""``gridhook samples rollup``: roll up the DPS samples already stored into hourly rollups.

    gridhook samples rollup
    gridhook samples rollup --since 2026-10-01T00:00:00Z --until 2026-11-01T00:00:00Z

``sample_load`` writes each hour's rollups itself once the hour is complete; this command
is for samples stored before it did (or after a long outage). Every complete UTC hour in
the range that lacks its rollups gets them, one per feed; an hour rolled up already is
left alone, so running it twice writes nothing the second time. Rollups are kept
GRIDHOOK_SAMPLE_RETENTION_DAYS (the default range reaches that far back), raw samples
GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS. Times are RFC 3339 or ages (30d, 12h) before now (on
GRIDHOOK_DEV_CLOCK when it is set).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

from gridhook import clock
from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store, settings_from_env
from gridhook.cli.output import write_json, write_table

__all__ = ["register_rollup"]

_SETTINGS = ("GRIDHOOK_SAMPLE_RETENTION_DAYS", "GRIDHOOK_DEV_CLOCK")
_COLUMNS = (
    "site",
    "since",
    "until",
    "hours",
    "rolled_up_before",
    "written",
    "samples_read",
    "feeds",
    "days_packed",
)


def register_rollup(samples: argparse.ArgumentParser) -> None:
    """``rollup`` under ``gridhook samples`` (which, without it, lists samples)."""
    commands = samples.add_subparsers(dest="samples_command", metavar="COMMAND")
    parser = commands.add_parser(
        "rollup",
        help="write the hourly rollups of stored samples (idempotent)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_argument(parser)
    parser.add_argument(
        "--site",
        action="append",
        metavar="NAME",
        help="this site only (repeatable; default: every site configured)",
    )
    parser.add_argument(
        "--since",
        type=arg.when("since"),
        action=arg.Once,
        help="from: RFC 3339 or an age (default: GRIDHOOK_SAMPLE_RETENTION_DAYS before now)",
    )
    parser.add_argument(
        "--until",
        type=arg.when("until"),
        action=arg.Once,
        help="to, exclusive: RFC 3339 or an age (default: now; only complete hours)",
    )
    arg.add_format(parser, ("table", "json"))
    parser.set_defaults(handler=_rollup)


def _rollup(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.intervals.rollups import roll_up
    from gridhook.report.params import BadParameter, parse_when
    from gridhook.sites import SiteConfigError, UnknownSite, load_sites
    from gridhook.store import StoreError

    settings = settings_from_env(*_SETTINGS)
    now = clock.now()
    retention = timedelta(days=settings.sample_retention_days)
    try:
        since = now - retention if args.since is None else parse_when("since", args.since, now)
        until = now if args.until is None else parse_when("until", args.until, now)
    except BadParameter as exc:
        raise arg.command_error(exc) from None
    if until <= since:
        raise CommandError("--until: must be after --since")
    try:
        sites = load_sites(os.environ)
        names = [sites.get(name).name for name in args.site] if args.site else list(sites.names)
    except UnknownSite as exc:
        raise CommandError(f"--site: {exc}") from None
    except SiteConfigError as exc:
        raise CommandError(str(exc)) from None
    runs = []
    with opened_store(args.store) as store:
        for name in names:
            try:
                run = roll_up(
                    store, site=name, since=since, until=until, now=now, retention=retention
                )
            except (StoreError, ValueError) as exc:
                raise CommandError(f"site {name}: {exc}") from None
            runs.append(run)
    if args.format == "json":
        write_json([run.to_dict() for run in runs])
        return 0
    write_table([{**run.to_dict(), "feeds": ",".join(run.feeds)} for run in runs], _COLUMNS)
    for run in runs:
        print(
            f"site {run.site}: {run.written} rollup(s) written for {run.hours} complete hour(s), "
            f"{run.rolled_up_before} of them rolled up before; "
            f"{run.days_packed} day rollup(s) written",
            file=sys.stderr,
        )
    return 0
