"""``gridhook reconcile | teardown | sample-load | subscriptions``: the jobs by hand, and
what the store says is registered.

reconcile, teardown and sample-load do what the deployed functions do, with the same
settings (GRIDHOOK_WEBHOOK_URL, the sites and their files, or for one site
GRIDHOOK_WEBHOOK_TOKENS[_FILE] and NVGRID_*), on the sites named with ``--site`` (any
number of times) or on every site, in parallel (GRIDHOOK_RECONCILE_CONCURRENCY at once),
each within GRIDHOOK_RECONCILE_DEADLINE_SECONDS. One ``--site``: that site's report;
otherwise each site's, with which went well, which failed and which a retry may fix.
Exit code: 0 every site went well, 1 some site needs a fix, 3 the only failures are ones a
retry may fix (DPS or the store unreachable), 2 a bad argument or setting.

subscriptions shows what the store says is registered, its health, and recorded drift,
for the sites named with ``--site`` or every site.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument

if TYPE_CHECKING:
    from gridhook.settings import Settings
    from gridhook.site_runs import SitesRun

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, help_text, handler in (
        ("reconcile", "register each site's webhook, remove stale ones, check drift", _reconcile),
        ("teardown", "unregister every webhook this deployment registered", _teardown),
        ("sample-load", "one load sample per feed from each site's DPS", _sample),
    ):
        parser = subparsers.add_parser(name, help=help_text, description=__doc__)
        add_store_argument(parser)
        _add_site_argument(parser, "act on")
        parser.set_defaults(handler=handler)
    parser = subparsers.add_parser(
        "subscriptions", help="what the store says is registered, and drift", description=__doc__
    )
    add_store_argument(parser)
    _add_site_argument(parser, "show")
    parser.add_argument(
        "--drift",
        type=arg.integer(0, 1000),
        action=arg.Once,
        default=10,
        help="show this many drift records per site, newest first (default 10, at most 1000)",
    )
    parser.set_defaults(handler=_subscriptions)


def _add_site_argument(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--site",
        action="append",
        metavar="NAME",
        help=f"{verb} this site (repeat for several; default: every site)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    from gridhook import log
    from gridhook.cli import CommandError
    from gridhook.settings import ConfigError, load_settings

    try:
        settings = dataclasses.replace(load_settings(), store_url=args.store)
        # Logs go to stderr so stdout stays one JSON document.
        log.configure(settings.log_level, sys.stderr)
        return settings
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def _sites(args: argparse.Namespace, settings: Settings) -> tuple[str, ...] | None:
    """The sites ``--site`` names (each once, in order), None for every site; an unknown
    one is refused naming the sites there are."""
    from gridhook.cli import CommandError

    if not args.site:
        return None
    named = tuple(dict.fromkeys(args.site))
    for name in named:
        if name not in settings.sites.names:
            shown = name[:100]
            raise CommandError(
                f"--site: unknown site {shown!r}: this deployment serves "
                f"{', '.join(settings.sites.names)}"
            )
    return named


def _print(body: dict) -> None:
    json.dump(body, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _job(
    args: argparse.Namespace,
    run: Callable[[Settings, Sequence[str] | None], SitesRun[Any]],
    fleet_status: Callable[[str], str] = str,
) -> int:
    """Run a job and print one site's report when ``--site`` names one, else every
    site's; the exit code says whether a fix or a retry is needed."""
    settings = _settings(args)
    sites = _sites(args, settings)
    result = run(settings, sites)
    if sites is not None and len(sites) == 1:
        _print(result.reports[sites[0]].to_dict())
    else:
        _print(result.to_dict(fleet_status))
    return result.exit_code


def _reconcile(args: argparse.Namespace) -> int:
    from gridhook.jobs import run_reconcile

    return _job(args, run_reconcile)


def _teardown(args: argparse.Namespace) -> int:
    from gridhook.jobs import run_teardown, teardown_status

    return _job(args, run_teardown, teardown_status)


def _sample(args: argparse.Namespace) -> int:
    from gridhook.jobs import run_sample

    return _job(args, run_sample)


def _subscriptions(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.settings import ConfigError, load_settings
    from gridhook.store import StoreError, open_store

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    sites = _sites(args, settings) or settings.sites.names
    records = []
    drift = []
    try:
        store = open_store(args.store, create=False)
        try:
            for site in sites:  # each site's own records: one read per site
                records += store.subscriptions(site=site)
                drift += store.drift(limit=args.drift, site=site) if args.drift else []
        finally:
            store.close()
    except (StoreError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    subscriptions = []
    for r in records:
        item = r.to_dict()
        item["health"] = (
            "ok"
            if r.registered and not r.last_error
            else "failing"
            if r.consecutive_failures
            else "pending"
        )
        subscriptions.append(item)
    _print({"subscriptions": subscriptions, "drift": [d.to_dict() for d in drift]})
    return 0
