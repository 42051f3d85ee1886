"""``gridhook events``: list stored power events, newest first, or follow them as they arrive.

    gridhook events                          # the latest 20, newest first
    gridhook events --since 2h --reverse     # oldest first: the first 20 of the last two hours
    gridhook events --follow                 # the latest 20, then each new event, until Ctrl-C
    gridhook events --site phx1 --site ams2  # two sites' (default: every site's), merged

--follow prints the latest --limit events (received since --since) oldest first, then every
event stored after it started, once each, in the order they were stored, whatever their
receipt time: a quarantined payload that `gridhook quarantine replay` stores with its
original (older) receipt time is printed when it is stored. --feed and --correlation-id
apply throughout. Every backend is polled, each site on its own. With --format json,
--follow prints JSON Lines. A deployment of several sites shows each event's SITE (JSON and
CSV always carry it).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

from gridhook import clock, csv_format
from gridhook.cli import args as arg
from gridhook.cli.output import write_csv, write_json, write_table
from gridhook.events import StoredEvent
from gridhook.settings import DEFAULT_STORE
from gridhook.sites import DEFAULT_SITE
from gridhook.store import EventOrder, EventQuery, StoreError, iter_events, open_store

if TYPE_CHECKING:
    from gridhook.settings import Settings
    from gridhook.store import EventStore

__all__ = [
    "DEFAULT_LIMIT",
    "EventFollower",
    "FleetFollower",
    "add_order_arguments",
    "add_store_argument",
    "opened_store",
    "register",
    "settings_from_env",
]

DEFAULT_LIMIT = 20
#: How far behind the newest write it has seen --follow looks again for writes that
#: committed late: longer than the longest store write (GRIDHOOK_STORE_TIMEOUT_SECONDS is
#: at most 55 s) plus any clock skew between the writers (receiver instances, replay).
FOLLOW_LOOK_BACK = timedelta(minutes=2)
_PAGE = 500

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
# CSV by gridhook's convention: loads as numbers in MW (the table shows them as received).
_CSV_COLUMNS = (
    "site",
    "received_at",
    "event",
    "feed_tag",
    "correlation_id",
    "target_mw",
    "prev_target_mw",
    "calculated_mw",
    "compliant",
    "event_id",
)
# --follow cannot measure rows it has not seen yet: fixed widths that fit typical values.
_FOLLOW_SITE_WIDTH = 12
_FOLLOW_WIDTHS = {
    "received_at": 27,
    "event": 15,
    "feed_tag": 17,
    "correlation_id": 28,
    "target": 9,
    "prev_target": 11,
    "calculated": 10,
    "compliant": 9,
    "event_id": 32,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "events",
        help="list stored power events (newest first), or --follow them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_argument(parser)
    arg.add_site_argument(parser)
    parser.add_argument("--feed", type=arg.tag("feed"), action=arg.Once, help="only this feed tag")
    parser.add_argument(
        "--correlation-id",
        type=arg.tag("correlation_id"),
        action=arg.Once,
        help="only this correlation id",
    )
    parser.add_argument(
        "--since",
        type=arg.when("since"),
        action=arg.Once,
        help="received at or after: RFC 3339, or an age like 2h, 7d",
    )
    parser.add_argument(
        "--until",
        type=arg.when("until"),
        action=arg.Once,
        help="received before: RFC 3339 or an age",
    )
    add_order_arguments(parser, what="events")
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="print the latest --limit events oldest first (--limit 0: none), then every "
        "event stored after (replays included) in the order stored, until Ctrl-C",
    )
    parser.add_argument(
        "--interval",
        type=arg.number(0, 3600, above=True),
        action=arg.Once,
        default=1.0,
        help="with --follow: seconds between looks at the store (default 1)",
    )
    arg.add_format(parser, ("table", "json", "csv"))
    parser.set_defaults(handler=_events)


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("GRIDHOOK_STORE") or DEFAULT_STORE,
        help="store URL (default: $GRIDHOOK_STORE or %(default)s)",
    )


def add_order_arguments(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--limit`` and ``--reverse``, the same for every listing."""
    parser.add_argument(
        "--limit",
        "-n",
        type=arg.integer(0, arg.MAX_LIMIT),
        action=arg.Once,
        default=DEFAULT_LIMIT,
        help=f"at most this many {what} (default {DEFAULT_LIMIT}, at most {arg.MAX_LIMIT:,}): "
        "the latest ones, or with --reverse the oldest ones",
    )
    parser.add_argument(
        "--reverse", action="store_true", help=f"oldest first (default: newest {what} first)"
    )


@contextlib.contextmanager
def opened_store(url: str, *, create: bool = False) -> Iterator[EventStore]:
    """The store a URL names, closed afterwards; a bad URL or store is a CommandError.

    Commands read by default, and a reader never creates a store: a SQLite path that does
    not exist is "no store at PATH", not an empty grid. A command that writes (replay)
    passes ``create=True``.
    """
    from gridhook.cli import CommandError

    try:
        store = open_store(url, create=create)
    except (ValueError, StoreError) as exc:
        raise CommandError(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


def settings_from_env(*names: str) -> Settings:
    """Settings from only these environment variables (a command that reads reports has no
    business with webhook tokens or NvGrid credentials), with gridhook's clock configured
    from them (GRIDHOOK_DEV_CLOCK, when named and set); a bad one is a CommandError."""
    from gridhook.cli import CommandError
    from gridhook.settings import ConfigError, load_settings

    try:
        settings = load_settings({name: os.environ[name] for name in names if name in os.environ})
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    clock.configure(settings.dev_clock)
    return settings


# -- following -------------------------------------------------------------------------------


class EventFollower:
    """Every event of one site stored after it started, once each, in write order; on every
    backend.

    It follows the store's write order (``EventOrder.STORED``: the time each event was
    stored, then its id), not receipt times, so an event stored with an older receipt
    time (a replay) is followed like any other. A write's time is stamped before it
    commits, so a slow write can appear behind one already printed: each poll reads again
    a look-back window behind the newest write seen and skips the ids it has seen; ids
    older than the window can no longer come back and are forgotten, so memory stays
    bounded.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        feed_tag: str | None = None,
        correlation_id: str | None = None,
        since: datetime | None = None,
        look_back: timedelta = FOLLOW_LOOK_BACK,
        site: str = DEFAULT_SITE,
    ) -> None:
        self._store = store
        self._site = site
        self._feed_tag = feed_tag
        self._correlation_id = correlation_id
        self._since = since  # of the backlog's receipt times
        self._look_back = look_back
        self._seen: dict[str, datetime] = {}  # event id -> stored_at
        self._newest: datetime | None = None  # the newest stored_at seen

    def start(self, backlog: int) -> list[StoredEvent]:
        """The latest ``backlog`` events oldest first, then any stored meanwhile."""
        self.prime()
        shown = self.latest(backlog)[::-1]
        for event in shown:
            self.remember(event)
        return shown + self._poll()

    def prime(self) -> None:
        """Find where the write order stands: what is stored up to here is not new. The
        events in the window behind it are marked seen, so a poll does not print them."""
        newest = self._store.events(
            EventQuery(site=self._site, order=EventOrder.STORED, newest_first=True, limit=1)
        ).events
        if newest:
            self._newest = newest[0].stored_at
            self._poll(quiet=True)

    def latest(self, backlog: int) -> list[StoredEvent]:
        """The latest ``backlog`` events by receipt time, newest first (not remembered:
        ``remember`` the ones printed)."""
        if not backlog:
            return []
        latest = EventQuery(
            site=self._site,
            feed_tag=self._feed_tag,
            correlation_id=self._correlation_id,
            since=self._since,
            limit=min(backlog, _PAGE),
            newest_first=True,
        )
        return list(islice(iter_events(self._store, latest), backlog))

    def poll(self) -> list[StoredEvent]:
        """Events stored since the last look and not printed yet, in write order."""
        return self._poll()

    def _poll(self, *, quiet: bool = False) -> list[StoredEvent]:
        query = EventQuery(
            site=self._site,
            feed_tag=self._feed_tag,
            correlation_id=self._correlation_id,
            since=None if self._newest is None else self._newest - self._look_back,
            limit=_PAGE,
            order=EventOrder.STORED,
        )
        fresh: list[StoredEvent] = []
        for event in iter_events(self._store, query):
            if event.event_id in self._seen:
                continue
            self.remember(event)
            if not quiet:
                fresh.append(event)
        if self._newest is not None:
            horizon = self._newest - self._look_back
            self._seen = {k: at for k, at in self._seen.items() if at >= horizon}
        return fresh

    def remember(self, event: StoredEvent) -> None:
        """Mark ``event`` printed: no poll prints it again."""
        if event.stored_at is None:
            return  # stored before write order existed: it will never be listed in it
        self._seen[event.event_id] = event.stored_at
        if self._newest is None or event.stored_at > self._newest:
            self._newest = event.stored_at

    @property
    def remembered(self) -> int:
        """How many event ids are kept to skip (bounded by the look-back window)."""
        return len(self._seen)


def _received(event: StoredEvent) -> tuple[datetime, str]:
    return (event.received_at, event.event_id)


def _stored(event: StoredEvent) -> tuple[datetime, str, str]:
    return (event.stored_at or event.received_at, event.site, event.event_id)


class FleetFollower:
    """Every event stored after it started on several sites, each site followed on its own
    (an ``EventFollower`` each: every read names one site), merged: the backlog is the
    latest events of all of them by receipt time, then each poll's new events in the
    order they were stored."""

    def __init__(self, followers: Sequence[EventFollower]) -> None:
        self._followers = list(followers)

    def start(self, backlog: int) -> list[StoredEvent]:
        """The latest ``backlog`` events of every site, oldest first, then any stored
        meanwhile."""
        for follower in self._followers:
            follower.prime()
        per_site = [(f, f.latest(backlog)) for f in self._followers]
        merged = heapq.merge(
            *([(e, f) for e in events] for f, events in per_site),
            key=lambda pair: _received(pair[0]),
            reverse=True,
        )
        shown = list(islice(merged, backlog))[::-1]
        for event, follower in shown:
            follower.remember(event)
        return [e for e, _ in shown] + self.poll()

    def poll(self) -> list[StoredEvent]:
        """Every site's events stored since the last look and not printed yet, in write
        order."""
        fresh = [e for follower in self._followers for e in follower.poll()]
        return sorted(fresh, key=_stored)


# -- the command -----------------------------------------------------------------------------


def _events(args: argparse.Namespace) -> int:
    from gridhook.cli import CommandError
    from gridhook.report.params import BadParameter, parse_when

    chosen = arg.chosen_sites(args)
    try:
        now = clock.now()
        since = None if args.since is None else parse_when("since", args.since, now)
        until = None if args.until is None else parse_when("until", args.until, now)
    except BadParameter as exc:
        raise arg.command_error(exc) from None
    if args.follow:
        if until is not None:
            raise CommandError("--until: cannot be combined with --follow (it never ends)")
        return _follow(args, since, chosen)
    if args.limit < 1:
        raise CommandError("--limit: must be at least 1 (0 only with --follow)")
    queries = [
        EventQuery(
            site=site.name,
            feed_tag=args.feed,
            correlation_id=args.correlation_id,
            since=since,
            until=until,
            limit=min(args.limit, _PAGE),
            newest_first=not args.reverse,
        )
        for site in chosen.sites
    ]
    with opened_store(args.store) as store:
        try:
            # Each site read on its own, merged in the order asked for.
            merged = heapq.merge(
                *(iter_events(store, q) for q in queries), key=_received, reverse=not args.reverse
            )
            events = list(islice(merged, args.limit))
        except StoreError as exc:
            raise CommandError(str(exc)) from None
    _print(events, args.format, several=chosen.several)
    return 0


def _follow(args: argparse.Namespace, since: datetime | None, chosen: arg.Chosen) -> int:
    """Print events until Ctrl-C, which ends it normally (exit code 0)."""
    from gridhook.cli import CommandError

    out = _Stream(sys.stdout, args.format, chosen)
    try:
        with opened_store(args.store) as store:
            follower = FleetFollower(
                [
                    EventFollower(
                        store,
                        feed_tag=args.feed,
                        correlation_id=args.correlation_id,
                        since=since,
                        site=site.name,
                    )
                    for site in chosen.sites
                ]
            )
            try:
                out.write(follower.start(args.limit))
                print("following new events; Ctrl-C to stop", file=sys.stderr, flush=True)
                while True:
                    time.sleep(args.interval)
                    out.write(follower.poll())
            except StoreError as exc:
                raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        return 0
    return 0  # not reached


class _Stream:
    """Rows printed as they come, each line flushed (the reader may be a pipe)."""

    def __init__(self, out: IO[str], fmt: str, chosen: arg.Chosen) -> None:
        self._out = out
        self._fmt = fmt
        self._header_written = False
        self._columns = _table_columns(chosen.several)
        # --follow cannot measure rows it has not seen yet: the widest site name it may see,
        # up to a typical one's (a longer name shifts its own rows, not every row).
        widest = max(len(s.name) for s in chosen.sites)
        self._widths = {**_FOLLOW_WIDTHS, "site": max(4, min(widest, _FOLLOW_SITE_WIDTH))}

    def write(self, events: list[StoredEvent]) -> None:
        if not self._header_written:
            self._header_written = True
            if self._fmt == "table":
                self._line(self._fixed({c: c.upper() for c in self._columns}))
            elif self._fmt == "csv":
                csv_format.writer(self._out, _CSV_COLUMNS).writeheader()
        for event in events:
            if self._fmt == "json":
                self._line(json.dumps(event.to_dict(), ensure_ascii=False))
            elif self._fmt == "csv":
                csv_format.writer(self._out, _CSV_COLUMNS).writerow(_csv_row(event))
            else:
                self._line(self._fixed(_row(event)))
        self._out.flush()

    def _line(self, text: str) -> None:
        self._out.write(text + "\n")

    def _fixed(self, row: dict[str, Any]) -> str:
        return "  ".join(str(row[c]).ljust(self._widths[c]) for c in self._columns).rstrip()


def _table_columns(several: bool) -> tuple[str, ...]:
    """The table's columns: with SITE first when the deployment has several sites."""
    return ("site", *_COLUMNS) if several else _COLUMNS


# -- printing --------------------------------------------------------------------------------


def _load(load: Any) -> str:
    if isinstance(load, dict) and "value" in load:
        return f"{load['value']:g} {load.get('unit', '')}".strip()
    return "default" if load is None else ""


def _row(event: StoredEvent) -> dict[str, Any]:
    payload = event.payload
    return {
        "site": event.site,
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


def _csv_row(event: StoredEvent) -> dict[str, str]:
    return {
        "site": event.site,
        "received_at": csv_format.when(event.received_at),
        "event": event.event,
        "feed_tag": event.feed_tag or "",
        "correlation_id": event.correlation_id or "",
        "target_mw": csv_format.mw(event.target_w),
        "prev_target_mw": csv_format.mw(event.prev_target_w),
        "calculated_mw": csv_format.mw(event.calculated_w),
        "compliant": csv_format.boolean(event.compliant),
        "event_id": event.event_id,
    }


def _print(events: list[StoredEvent], fmt: str, *, several: bool) -> None:
    if fmt == "json":
        write_json([e.to_dict() for e in events])
    elif fmt == "csv":
        write_csv([_csv_row(e) for e in events], _CSV_COLUMNS)
    elif events:
        write_table([_row(e) for e in events], _table_columns(several))
    else:
        print("no events", file=sys.stderr)
