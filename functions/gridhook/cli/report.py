"""``gridhook report``: curtailment over a time range, as HTML, JSON or CSV.

    gridhook report --since 30d --output var/report.html
    gridhook report --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z --format csv
    gridhook report --site phx1 --site ams2 --since 7d
    gridhook report --since 7d --method pjm-high-4-of-5 --source meter

The HTML is one self-contained file (no network needed to open or print it). Times are
RFC 3339 or ages such as 30d, 12h before now (on GRIDHOOK_DEV_CLOCK when it is set);
GRIDHOOK_RAMP_DEADLINE_SECONDS decides when a ramp counts as stalled. The report covers
every site (``--site`` picks), grouped by site, then feed; each site's days are its local
days and its section is in its local time. Each curtailment is settled against a customer
baseline (delivered and needed MWh): ``--method`` (default GRIDHOOK_BASELINE_METHOD,
caiso-10-in-10), its load from ``--source`` (auto: the meter where a feed has meter data,
else DPS's samples).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store, settings_from_env
from gridhook.report.params import FORMATS

__all__ = ["register"]

# The only settings a report reads from the environment (besides the store URL).
_SETTINGS = (
    "GRIDHOOK_RAMP_DEADLINE_SECONDS",
    "GRIDHOOK_DEV_CLOCK",
    "GRIDHOOK_BASELINE_METHOD",
    "GRIDHOOK_INTERVAL_MIN_COVERAGE",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="curtailment report over a time range (HTML, JSON or CSV)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_argument(parser)
    arg.add_range_arguments(parser)
    arg.add_site_argument(parser)
    parser.add_argument("--feed", type=arg.tag("feed"), action=arg.Once, help="only this feed tag")
    arg.add_format(parser, FORMATS)
    arg.add_settling_arguments(parser, interval=False)
    parser.add_argument(
        "--output", "-o", action=arg.Once, metavar="FILE", help="write to FILE, not stdout"
    )
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from gridhook import clock
    from gridhook.cli import CommandError
    from gridhook.report import render
    from gridhook.report.fleet import build_fleet_report
    from gridhook.report.params import REPORT_PARAMETERS, report_params
    from gridhook.report.settled import DeliveryOptions
    from gridhook.store import StoreError

    settings = settings_from_env(*_SETTINGS)
    now = clock.now()
    deployment = arg.deployment_sites()
    query = arg.read_params(report_params, args, REPORT_PARAMETERS, now=now, sites=deployment)
    with opened_store(args.store) as store:
        try:
            report = build_fleet_report(
                store,
                query.sites,
                since=query.since,
                until=query.until,
                feed_tag=query.feed_tag,
                now=now,
                ramp_deadline=timedelta(seconds=settings.ramp_deadline_seconds),
                several=deployment.several,
                delivery=DeliveryOptions(
                    method=query.method or settings.baseline_method,
                    source=query.source,
                    min_coverage=settings.interval_min_coverage,
                ),
            )
        except (StoreError, ValueError) as exc:  # SettlementError is a ValueError
            raise CommandError(str(exc)) from None
    renderer = {"html": render.render_html, "json": render.render_json, "csv": render.render_csv}
    text = renderer[query.format](report)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    _write(Path(args.output), text)
    sites = f" of {len(report.sites)} site(s)" if deployment.several else ""
    print(
        f"wrote {args.output}: {len(report.episodes)} episode(s) on {len(report.feeds)} feed(s)"
        f"{sites}, from {render.format_when(query.since, seconds=False)} "
        f"to {render.format_when(query.until, seconds=False)} UTC",
        file=sys.stderr,
    )
    return 0


def _write(path: Path, text: str) -> None:
    """Write the whole file or nothing: a reader never sees half a report."""
    from gridhook.cli import CommandError

    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
