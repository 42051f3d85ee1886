"""``gridhook reconcile | teardown | subscriptions``: the subscription lifecycle by hand.

reconcile and teardown do what the deployed functions do, with the same settings
(GRIDHOOK_WEBHOOK_URL, GRIDHOOK_WEBHOOK_TOKENS[_FILE], NVGRID_*); subscriptions shows what
the store says is registered, its health, and recorded drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument

if TYPE_CHECKING:
    from gridhook.settings import Settings

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, help_text, handler in (
        ("reconcile", "register the desired webhook, remove stale ones, check drift", _reconcile),
        ("teardown", "unregister every webhook this deployment registered", _teardown),
    ):
        parser = subparsers.add_parser(name, help=help_text, description=__doc__)
        add_store_argument(parser)
        parser.set_defaults(handler=handler)
    parser = subparsers.add_parser(
        "subscriptions", help="what the store says is registered, and drift", description=__doc__
    )
    add_store_argument(parser)
    parser.add_argument(
        "--drift",
        type=arg.integer(0, 1000),
        action=arg.Once,
        default=10,
        help="show this many drift records, newest first (default 10, at most 1000)",
    )
    parser.set_defaults(handler=_subscriptions)


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


def _print(body: dict) -> None:
    json.dump(body, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _reconcile(args: argparse.Namespace) -> int:
    from gridhook.jobs import run_reconcile

    report = run_reconcile(_settings(args))
    _print(report.to_dict())
    return 0 if report.status == "ok" else 1


def _teardown(args: argparse.Namespace) -> int:
    from gridhook.jobs import run_teardown

    report = run_teardown(_settings(args))
    _print(report.to_dict())
    return 0 if report.clean else 1


def _subscriptions(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.store import StoreError, open_store

    try:
        store = open_store(args.store, create=False)
        try:
            records = store.subscriptions()
            drift = store.drift(limit=args.drift) if args.drift else []
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
