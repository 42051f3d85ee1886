"""``gridhook events``: list what a store holds, oldest first."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from gridhook import clock
from gridhook.events import StoredEvent
from gridhook.settings import DEFAULT_STORE
from gridhook.store import EventQuery, InvalidCursor, StoreError, iter_events, open_store

__all__ = ["parse_when", "register"]

_COLUMNS = (
    "received_at",
    "event",
    "feed_tag",
    "correlation_id",
    "target",
    "prev_target",
    "calculated",
    "compliant",
    "event_id",
)
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("events", help="list stored power events", description=__doc__)
    add_store_argument(parser)
    parser.add_argument("--feed", help="only this feed tag")
    parser.add_argument("--correlation-id", help="only this correlation id")
    parser.add_argument(
        "--since", type=parse_when, help="received at or after: RFC 3339, or an age like 2h, 7d"
    )
    parser.add_argument("--until", type=parse_when, help="received before: RFC 3339 or an age")
    parser.add_argument(
        "--limit", type=int, default=1000, help="at most this many events (default 1000)"
    )
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.set_defaults(handler=_events)


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("GRIDHOOK_STORE") or DEFAULT_STORE,
        help="store URL (default: $GRIDHOOK_STORE or %(default)s)",
    )


def parse_when(text: str) -> datetime:
    """An RFC 3339 time, or an age such as 30m, 2h, 7d meaning that long ago (by gridhook's
    clock, so a command that configured the dev clock counts ages in simulated time)."""
    match = _AGO.match(text.strip())
    if match:
        return clock.now() - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an RFC 3339 time nor an age like 2h"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _load(load: Any) -> str:
    if isinstance(load, dict) and "value" in load:
        return f"{load['value']:g} {load.get('unit', '')}".strip()
    return "default" if load is None else ""


def _row(event: StoredEvent) -> dict[str, Any]:
    payload = event.payload
    return {
        "received_at": event.received_at.isoformat().replace("+00:00", "Z"),
        "event": event.event,
        "feed_tag": event.feed_tag or "",
        "correlation_id": event.correlation_id or "",
        "target": _load(payload.get("target_load", "")),
        "prev_target": _load(payload.get("prev_target_load", "")),
        "calculated": _load(payload.get("calculated_load", "")),
        "compliant": "" if event.compliant is None else str(event.compliant).lower(),
        "event_id": event.event_id,
    }


def _events(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError

    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    try:
        store = open_store(args.store)
    except (ValueError, StoreError) as exc:
        raise CommandError(str(exc)) from None
    query = EventQuery(
        feed_tag=args.feed,
        correlation_id=args.correlation_id,
        since=args.since,
        until=args.until,
        limit=min(args.limit, 500),
    )
    try:
        events = []
        for event in iter_events(store, query):
            events.append(event)
            if len(events) >= args.limit:
                break
    except (StoreError, InvalidCursor) as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()
    _print(events, args.format)
    return 0


def _print(events: list[StoredEvent], fmt: str) -> None:
    out = sys.stdout
    if fmt == "json":
        json.dump([e.to_dict() for e in events], out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    rows = [_row(e) for e in events]
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        return
    if not rows:
        print("no events", file=sys.stderr)
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in _COLUMNS}
    out.write("  ".join(c.upper().ljust(widths[c]) for c in _COLUMNS).rstrip() + "\n")
    for r in rows:
        out.write("  ".join(str(r[c]).ljust(widths[c]) for c in _COLUMNS).rstrip() + "\n")
