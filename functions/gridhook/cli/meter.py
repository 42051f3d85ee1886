"""``gridhook meter import FILE --site S --feed F``: store a revenue meter's interval data.

    gridhook meter import var/meter-main.csv --site default --feed main_power_feed
    gridhook meter import GreenButton.csv --feed main_power_feed --replace

Two formats, told apart by their header: gridhook's CSV (``interval_start,interval_end,
<kwh|mwh|kw|mw>``, RFC 3339 times) and the Green Button "Download My Data" CSV US utilities
give customers (``TYPE,DATE,START TIME,END TIME,USAGE,…``, local times in the site's time
zone: GRIDHOOK_TIMEZONE for the default site). All or nothing: a bad row is an error naming
its line, and nothing is stored. Importing the same data again stores nothing; values
different from those stored for an interval are refused unless --replace, which keeps the
stored values as earlier revisions. Where a feed has meter data it is the settlement source
(docs/settlement.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store
from gridhook.cli.output import write_json

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "meter",
        help="revenue-meter interval data: import a meter file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = group.add_subparsers(dest="meter_command", metavar="COMMAND", required=True)
    parser = commands.add_parser(
        "import",
        help="store a meter file's intervals for one feed (all or nothing)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="gridhook meter CSV or Green Button CSV")
    add_store_argument(parser)
    parser.add_argument(
        "--site", action=arg.Once, default="default", metavar="NAME", help="default: default"
    )
    parser.add_argument(
        "--feed", type=arg.tag("feed"), action=arg.Once, required=True, help="the feed tag"
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="store the file's values where they differ from those stored (kept as revisions)",
    )
    arg.add_format(parser, ("table", "json"))
    parser.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from gridhook.cli import CommandError
    from gridhook.intervals.meter import MeterConflict, import_meter
    from gridhook.settlement import SettlementError
    from gridhook.sites import SiteConfigError, UnknownSite, load_sites
    from gridhook.store import StoreError

    path = Path(args.file)
    try:
        site = load_sites(os.environ).get(args.site)
    except UnknownSite as exc:
        raise CommandError(f"--site: {exc}") from None
    except SiteConfigError as exc:
        raise CommandError(str(exc)) from None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    with opened_store(args.store, create=True) as store:
        try:
            done = import_meter(
                store,
                text,
                file=path.name,
                feed=args.feed,
                tz=site.zone,
                now=datetime.now(UTC),  # when it was imported: the machine's clock
                site=site.name,
                replace=args.replace,
            )
        except MeterConflict as exc:
            raise CommandError(f"{path}: {exc}") from None
        except SettlementError as exc:  # MeterParseError: a bad row, named
            raise CommandError(f"{path}: {exc}; nothing imported") from None
        except StoreError as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        write_json(done.to_dict())
        return 0
    print(
        f"{path}: {done.intervals} interval(s) of feed {done.feed} at site {done.site} "
        f"({done.format}): {done.new} new, {done.unchanged} unchanged, {done.replaced} replaced"
        + (f", {done.withdrawn} stored interval(s) withdrawn" if done.withdrawn else "")
    )
    if done.missing_lines:
        lines = ", ".join(str(n) for n in done.missing_lines[:10])
        more = "…" if len(done.missing_lines) > 10 else ""
        print(
            f"{len(done.missing_lines)} row(s) without a usage value (lines {lines}{more}): "
            "missing readings, nothing stored for them",
            file=sys.stderr,
        )
    return 0
