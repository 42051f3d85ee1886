"""``gridhook state``: which feed is constrained, since when, and was the target met.

Derived from the stored events (the latest episode of every feed), never kept as a
separate mutable record.
"""

from __future__ import annotations

import argparse
import sys

from gridhook.cli.events import add_store_argument
from gridhook.cli.output import write_json, write_table

__all__ = ["register"]

_COLUMNS = ("feed_tag", "phase", "since", "correlation_id", "target", "calculated", "compliant")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "state", help="each feed's current phase, derived from stored events", description=__doc__
    )
    add_store_argument(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=_state)


def _mw(watts: float | None) -> str:
    return "default" if watts is None else f"{watts / 1e6:g} MW"


def _state(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.state import current_feed_states
    from gridhook.store import StoreError, open_store

    try:
        store = open_store(args.store, create=False)
        try:
            states = current_feed_states(store)
        finally:
            store.close()
    except (StoreError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if args.format == "json":
        write_json([s.to_dict() for s in states.values()])
        return 0
    if not states:
        print("no feed has reported an event yet", file=sys.stderr)
        return 0
    rows = [
        {
            "feed_tag": s.feed_tag,
            "phase": s.phase,
            "since": s.since.isoformat().replace("+00:00", "Z"),
            "correlation_id": s.correlation_id or "",
            "target": _mw(s.target_w),
            "calculated": _mw(s.calculated_w),
            "compliant": "" if s.compliant is None else str(s.compliant).lower(),
        }
        for s in sorted(states.values(), key=lambda s: s.feed_tag)
    ]
    write_table(rows, _COLUMNS)
    return 0
