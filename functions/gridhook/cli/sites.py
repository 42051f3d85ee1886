"""``gridhook sites``: each site this deployment serves and its health; and the ``--site``
option every reading command takes.

    gridhook sites                      # a line per site: registration, last reconcile, ...
    gridhook sites --site phx1 --format json

Health comes from the store: the subscription records reconcile keeps (registration, the
last reconcile and its outcome), each feed's newest events (last event, open and stalled
episodes, judged by gridhook's clock and GRIDHOOK_RAMP_DEADLINE_SECONDS) and the newest
load sample. It costs O(sites x feeds) reads, never the history.

The sites are the deployment's: GRIDHOOK_SITES_FILE or GRIDHOOK_SITES, else one site named
``default`` (GRIDHOOK_TIMEZONE its zone), as the functions read them.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gridhook import clock
from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store, settings_from_env
from gridhook.cli.output import write_csv, write_json, write_table

if TYPE_CHECKING:
    from gridhook.health import SiteHealth
    from gridhook.sites import Site

__all__ = ["register"]

_CSV = (
    "site",
    "timezone",
    "registration",
    "registered_url",
    "last_reconcile",
    "reconcile_outcome",
    "reconcile_error",
    "consecutive_failures",
    "stale_registrations",
    "feeds",
    "last_event_at",
    "last_event_feed",
    "last_sample_at",
    "last_sample_feed",
    "open_episodes",
    "stalled_episodes",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sites",
        help="each site this deployment serves, with its health",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_argument(parser)
    arg.add_site_argument(parser)
    arg.add_format(parser, ("table", "json", "csv"))
    parser.set_defaults(handler=_sites)


def _sites(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.health import site_health
    from gridhook.site_reads import for_each
    from gridhook.store import StoreError

    settings = settings_from_env("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_RAMP_DEADLINE_SECONDS")
    chosen = arg.chosen_sites(args)
    now = clock.now()
    with opened_store(args.store) as store:

        def health_of(site: Site) -> SiteHealth:
            return site_health(store, site, now=now, ramp_deadline=settings.ramp_deadline_seconds)

        try:
            health = for_each(health_of, chosen.sites)  # several sites at a time
        except StoreError as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        write_json([h.to_dict() for h in health])
    elif args.format == "csv":
        write_csv([_csv_row(h) for h in health], _CSV)
    else:
        write_table([_row(h, now) for h in health], list(_row(health[0], now)))
        for line in (note for h in health for note in _notes(h)):
            print(line)
    return 0


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _ago(moment: datetime | None, now: datetime) -> str:
    from gridhook.display import format_duration

    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return f"{_when(moment)} (in {format_duration(-seconds)})"
    return f"{_when(moment)} ({format_duration(seconds)} ago)"


def _row(health: SiteHealth, now: datetime) -> dict[str, str]:
    reg = health.registration
    registration = reg.state
    if reg.state == "failing" and reg.consecutive_failures:
        registration += f" ({reg.consecutive_failures}x)"
    if reg.stale:
        registration += f", {reg.stale} stale"
    event = health.last_event
    sample = health.last_sample
    return {
        "SITE": health.site.name,
        "TIMEZONE": _zone(health, now),
        "REGISTRATION": registration,
        "LAST RECONCILE": _ago(reg.last_attempt, now),
        "OUTCOME": reg.reconcile_outcome,
        "LAST EVENT": _ago(event.last_received_at if event else None, now),
        "LAST SAMPLE": _ago(sample.sampled_at if sample else None, now),
        "FEEDS": str(len(health.feeds)),
        "OPEN": str(health.open_episodes),
        "STALLED": str(health.stalled_episodes),
    }


def _zone(health: SiteHealth, now: datetime) -> str:
    from gridhook.display import format_offset

    offset = format_offset(now, health.site.zone)
    return offset if offset == "UTC" else f"{health.site.timezone} ({offset})"


def _notes(health: SiteHealth) -> list[str]:
    """What needs a look, a line each, under the table."""
    name, reg = health.site.name, health.registration
    notes = []
    if reg.last_error:
        notes.append(f"{name}: last reconcile failed: {reg.last_error}")
    elif reg.state == "never":
        notes.append(f"{name}: never reconciled: its DPS may not know where to send webhooks")
    notes += [
        f"{name}: {f.feed_tag} stalled ({f.phase.replace('_', ' ')}, episode {f.episode_id})"
        for f in health.feeds
        if f.stalled
    ]
    return notes


def _csv_row(health: SiteHealth) -> dict[str, str]:
    from gridhook import csv_format

    reg, event, sample = health.registration, health.last_event, health.last_sample
    return {
        "site": health.site.name,
        "timezone": health.site.timezone,
        "registration": reg.state,
        "registered_url": reg.url or "",
        "last_reconcile": csv_format.when(reg.last_attempt),
        "reconcile_outcome": reg.reconcile_outcome,
        "reconcile_error": reg.last_error or "",
        "consecutive_failures": str(reg.consecutive_failures),
        "stale_registrations": str(reg.stale),
        "feeds": str(len(health.feeds)),
        "last_event_at": csv_format.when(event.last_received_at if event else None),
        "last_event_feed": event.feed_tag if event else "",
        "last_sample_at": csv_format.when(sample.sampled_at if sample else None),
        "last_sample_feed": sample.feed_tag if sample else "",
        "open_episodes": str(health.open_episodes),
        "stalled_episodes": str(health.stalled_episodes),
    }
