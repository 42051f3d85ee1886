"""``gridhook state``: which feed is constrained, since when, and was the target met.

Derived from the stored events (each feed's last event and its episode, judged as
``gridhook episodes`` judges it: stalled, target met), never kept as a separate mutable
record. Stalled ramps are judged by gridhook's clock (GRIDHOOK_DEV_CLOCK moves it) and
GRIDHOOK_RAMP_DEADLINE_SECONDS. Every site's feeds (``--site`` picks), by site and feed
tag; a deployment of several sites shows each row's SITE (JSON always carries it).
"""

from __future__ import annotations

import argparse
import sys

from gridhook import clock
from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store, settings_from_env
from gridhook.cli.output import write_json, write_table

__all__ = ["register"]

_COLUMNS = (
    "feed_tag",
    "phase",
    "since",
    "correlation_id",
    "target",
    "calculated",
    "compliant",
    "episode",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "state", help="each feed's current phase, derived from stored events", description=__doc__
    )
    add_store_argument(parser)
    arg.add_site_argument(parser)
    arg.add_format(parser, ("table", "json"))
    parser.set_defaults(handler=_state)


def _state(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.display import format_load, format_target
    from gridhook.state.load import current_feed_states
    from gridhook.store import StoreError

    settings = settings_from_env("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_RAMP_DEADLINE_SECONDS")
    chosen = arg.chosen_sites(args)
    now = clock.now()
    states = []
    with opened_store(args.store) as store:
        try:
            for site in chosen.sites:  # each site on its own, in the deployment's order
                found = current_feed_states(
                    store, now=now, ramp_deadline=settings.ramp_deadline_seconds, site=site.name
                )
                states += [found[tag] for tag in sorted(found)]
        except StoreError as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        write_json([s.to_dict() for s in states])
        return 0
    if not states:
        print("no feed has reported an event yet", file=sys.stderr)
        return 0
    rows = [
        {
            "site": s.site,
            "feed_tag": s.feed_tag,
            "phase": s.phase,
            "since": s.since.isoformat().replace("+00:00", "Z"),
            "correlation_id": s.correlation_id or "",
            "target": format_target(s.target_w),
            "calculated": format_load(s.calculated_w),
            "compliant": "" if s.compliant is None else str(s.compliant).lower(),
            # The episode's status: "stalled" is what needs a look.
            "episode": s.episode_status or "",
        }
        for s in states
    ]
    write_table(rows, ("site", *_COLUMNS) if chosen.several else _COLUMNS)
    return 0
