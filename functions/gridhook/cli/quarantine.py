"""``gridhook quarantine``: list, show and replay payloads the receiver rejected.

    gridhook quarantine list                 # the latest 20, newest first
    gridhook quarantine show 3f9c2a71        # one record: why it failed, and the body
    gridhook quarantine replay 3f9c2a71      # store it, if today's schema accepts it
    gridhook quarantine replay --all --dry-run

``replay`` validates the kept body against today's schema; if it passes, the body is
stored once as the event a delivery of it would have been (same event id, original
receipt time) and the record is marked replayed, so replaying again changes nothing.
A body that still fails is reported per violation; a truncated body cannot be replayed.
Exit codes: 0 done, 1 some payloads could not be replayed, 2 bad arguments or store.

Every command reads every site's quarantine (``--site`` picks): a record is replayed into
the site it was delivered to. A deployment of several sites shows each record's SITE.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from gridhook.cli import args as arg
from gridhook.cli.events import add_order_arguments, add_store_argument, opened_store
from gridhook.cli.output import write_json, write_table

if TYPE_CHECKING:
    from gridhook.quarantine import QuarantineError, ReplayResult
    from gridhook.sites import Site
    from gridhook.store import EventStore, QuarantinedPayload

__all__ = ["register"]

EXIT_NOT_REPLAYED = 1
#: An id may be shortened to a unique prefix of at least this many characters (like git's).
MIN_PREFIX = 6
_LIST_COLUMNS = ("received_at", "quarantine_id", "state", "bytes", "problem")
_PROBLEM_WIDTH = 80


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quarantine",
        help="list, show and replay payloads that failed the schema",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="quarantine_command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list", help="quarantined payloads, newest first", description="Quarantined payloads."
    )
    add_store_argument(listing)
    arg.add_site_argument(listing)
    add_order_arguments(listing, what="payloads")
    arg.add_format(listing, ("table", "json"))
    listing.set_defaults(handler=_list)

    show = commands.add_parser(
        "show", help="one payload: why it failed, and its body", description="One payload."
    )
    add_store_argument(show)
    arg.add_site_argument(show)
    show.add_argument(
        "quarantine_id",
        type=_quarantine_id,
        metavar="ID",
        help=f"its id, or a unique prefix of it ({MIN_PREFIX}+ characters)",
    )
    arg.add_format(show, ("text", "json"))
    show.set_defaults(handler=_show)

    replay = commands.add_parser(
        "replay",
        help="store quarantined payloads that pass today's schema",
        description="Validate each kept body against today's schema and, if it passes, store "
        "it once as its event with the original receipt time. Replaying twice changes nothing.",
    )
    add_store_argument(replay)
    arg.add_site_argument(replay)
    replay.add_argument(
        "ids",
        nargs="*",
        type=_quarantine_id,
        metavar="ID",
        help=f"ids (or unique prefixes, {MIN_PREFIX}+ characters) to replay",
    )
    replay.add_argument(
        "--all", action="store_true", help="every payload not replayed yet, oldest first"
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="only say what would be replayed; store nothing"
    )
    arg.add_format(replay, ("table", "json"))
    replay.set_defaults(handler=_replay)


def _quarantine_id(text: str) -> str:
    """A quarantine id (32 hex digits) or a prefix of one long enough to mean something."""
    value = text.strip().lower()
    if len(value) < MIN_PREFIX:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is too short: give the id, or a prefix of {MIN_PREFIX}+ characters "
            "(see `gridhook quarantine list`)"
        )
    return value


# -- list ----------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.store import StoreError, iter_quarantined

    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    chosen = arg.chosen_sites(args)
    with opened_store(args.store) as store:
        try:
            # Each site's on its own, merged by receipt time.
            merged = heapq.merge(
                *(
                    iter_quarantined(
                        store,
                        newest_first=not args.reverse,
                        page_size=min(args.limit, 500),
                        site=site.name,
                    )
                    for site in chosen.sites
                ),
                key=lambda q: (q.received_at, q.quarantine_id),
                reverse=not args.reverse,
            )
            items = list(islice(merged, args.limit))
        except (StoreError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        write_json([item.to_dict() for item in items])
        return 0
    if not items:
        print("nothing is quarantined", file=sys.stderr)
        return 0
    rows = [
        {
            "site": item.site,
            "received_at": _time(item.received_at),
            "quarantine_id": item.quarantine_id,
            "state": _state(item),
            "bytes": str(item.body_bytes),
            "problem": _problem(item),
        }
        for item in items
    ]
    write_table(rows, ("site", *_LIST_COLUMNS) if chosen.several else _LIST_COLUMNS)
    return 0


def _state(item: QuarantinedPayload) -> str:
    if item.replayed_at is not None:
        return "replayed"
    return "truncated" if item.truncated else "pending"


def _problem(item: QuarantinedPayload) -> str:
    if not item.errors:
        return item.reason
    first = item.errors[0]
    text = f"{first.get('path') or '/'}: {first.get('message', '')}"
    if len(item.errors) > 1:
        text += f" (+{len(item.errors) - 1} more)"
    return text if len(text) <= _PROBLEM_WIDTH else text[: _PROBLEM_WIDTH - 3] + "..."


# -- show ----------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.quarantine import QuarantineError
    from gridhook.store import StoreError

    chosen = arg.chosen_sites(args)
    with opened_store(args.store) as store:
        try:
            item = _find(store, args.quarantine_id, chosen.sites)
        except (QuarantineError, StoreError) as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        write_json(item.to_dict())
        return 0
    state = _state(item)
    if item.replayed_at is not None:
        state += f" at {_time(item.replayed_at)} as event {item.replayed_event_id}"
    elif item.truncated:
        kept = len(item.body.encode("utf-8"))
        state += f": only the first {kept} of {item.body_bytes} bytes were kept; not replayable"
    lines = [
        *([f"site           {item.site}"] if chosen.several else []),
        f"quarantine_id  {item.quarantine_id}",
        f"received_at    {_time(item.received_at)}",
        f"expires_at     {_time(item.expires_at)}",
        f"state          {state}",
        f"reason         {item.reason}",
        f"body           {item.body_bytes} bytes, sha256 {item.body_sha256}",
        f"violations when received ({len(item.errors)}):",
        *(f"  {e.get('path') or '/'}: {e.get('message', '')}" for e in item.errors),
        "",
        _pretty(item.body),
    ]
    print("\n".join(lines))
    return 0


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:  # a truncated body is not JSON: show it as kept
        return body


# -- replay --------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.quarantine import QuarantineError, replay, replay_all
    from gridhook.store import StoreError

    if args.all == bool(args.ids):
        raise CommandError("give the ids to replay, or --all (not both)")
    chosen = arg.chosen_sites(args)
    outcomes: list[ReplayResult | QuarantineError] = []
    with opened_store(args.store, create=True) as store:
        try:
            if args.all:
                for site in chosen.sites:  # each site's oldest first, into its own site
                    for outcome in replay_all(store, dry_run=args.dry_run, site=site.name):
                        outcomes.append(outcome)
                        _report(outcome, args.format, chosen.several)
            else:
                for quarantine_id in args.ids:
                    try:
                        item = _find(store, quarantine_id, chosen.sites)
                        outcome = replay(store, item, dry_run=args.dry_run)
                    except QuarantineError as exc:
                        outcome = exc
                    outcomes.append(outcome)
                    _report(outcome, args.format, chosen.several)
        except StoreError as exc:
            raise CommandError(str(exc)) from None
    if args.all and not outcomes:
        print("nothing to replay", file=sys.stderr)
    failed = sum(isinstance(o, QuarantineError) for o in outcomes)
    if failed:
        print(f"{failed} of {len(outcomes)} could not be replayed", file=sys.stderr)
        return EXIT_NOT_REPLAYED
    return 0


def _report(outcome: ReplayResult | QuarantineError, fmt: str, several: bool) -> None:
    """One outcome as it happens: results on stdout, what failed (and why) on stderr."""
    from gridhook.quarantine import QuarantineError, StillRejected

    if fmt == "json":
        print(json.dumps(_outcome_dict(outcome), ensure_ascii=False), flush=True)
        return
    if isinstance(outcome, QuarantineError):
        if isinstance(outcome, StillRejected):
            print(f"{outcome.quarantine_id}  still rejected:", file=sys.stderr)
            for v in outcome.violations:
                print(f"  {v.path or '/'}: {v.message}", file=sys.stderr)
        else:
            print(str(outcome), file=sys.stderr)
        return
    site = f"{outcome.site}  " if several else ""
    print(
        f"{site}{outcome.quarantine_id}  {outcome.status.value}  event {outcome.event_id}  "
        f"received {_time(outcome.received_at)}",
        flush=True,
    )


def _outcome_dict(outcome: ReplayResult | QuarantineError) -> dict[str, Any]:
    from gridhook.quarantine import (
        AmbiguousId,
        BodyTruncated,
        NotQuarantined,
        QuarantineError,
        StillRejected,
    )

    if not isinstance(outcome, QuarantineError):
        return outcome.to_dict()
    status = {
        StillRejected: "still_rejected",
        BodyTruncated: "truncated",
        NotQuarantined: "not_found",
        AmbiguousId: "ambiguous_id",
    }.get(type(outcome), "error")
    answer: dict[str, Any] = {
        "quarantine_id": getattr(outcome, "quarantine_id", None),
        "status": status,
        "error": str(outcome),
    }
    if isinstance(outcome, StillRejected):
        answer["violations"] = [v.to_dict() for v in outcome.violations]
    return answer


# -- helpers -------------------------------------------------------------------------------


def _find(store: EventStore, quarantine_id: str, sites: Sequence[Site]) -> QuarantinedPayload:
    """The record this id (or unique prefix) names on one of ``sites``, each read on its own;
    a prefix that matches records of two sites is ambiguous, like one of one site."""
    from gridhook.quarantine import AmbiguousId, NotQuarantined, find

    found: list[QuarantinedPayload] = []
    for site in sites:
        try:
            found.append(find(store, quarantine_id, site=site.name))
        except NotQuarantined:
            continue
        except AmbiguousId as exc:
            raise AmbiguousId(quarantine_id, [f"{site.name}:{m}" for m in exc.matches]) from None
    if not found:
        raise NotQuarantined(quarantine_id)
    if len(found) > 1:
        raise AmbiguousId(quarantine_id, [f"{q.site}:{q.quarantine_id}" for q in found])
    return found[0]


def _time(value: Any) -> str:
    from gridhook.events import rfc3339

    return rfc3339(value) or ""
