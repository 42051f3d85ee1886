"""`gridhook-sim`: run the DPS NvGrid simulator until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from gridhook.clock import DevClock, parse_dev_clock
from simulator.clock import rfc3339
from simulator.config import (
    SITE_NAME,
    SimulatorConfig,
    check_site_name,
    default_feeds,
    load_feeds,
    time_zone,
)
from simulator.faults import DropRule, FaultKnobs
from simulator.fleet import Fleet, fleet_configs, site_names, start_fleet
from simulator.history import (
    INTERVALS,
    HistoryFile,
    meter_window,
    parse_interval,
    write_history,
    write_index,
    write_meter,
)
from simulator.server import load_model
from simulator.webhooks import WhitelistEntry


@dataclass(frozen=True)
class _ForSite:
    """A flag's value, for one site (`SITE=VALUE`) or for every site (`site` None)."""

    site: str | None
    value: Any


def _site_prefix(text: str) -> tuple[str | None, str]:
    """`SITE=VALUE` -> (SITE, VALUE) when SITE is a valid site name, else (None, text)."""
    site, sep, rest = text.partition("=")
    if sep and SITE_NAME.fullmatch(site):
        return site, rest
    return None, text


def _feeds_file(value: str) -> _ForSite:
    site, path = _site_prefix(value)
    return _ForSite(site, path)


def _user(value: str) -> _ForSite:
    before, sep, password = value.partition(":")
    site, name = _site_prefix(before)
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD or SITE=NAME:PASSWORD")
    return _ForSite(site, (name, password))


def _timezone(value: str) -> _ForSite:
    site, zone = _site_prefix(value)
    try:
        time_zone(zone)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return _ForSite(site, zone)


def _site_name(value: str) -> str:
    try:
        return check_site_name(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return number


def _history_interval(value: str) -> timedelta:
    try:
        return parse_interval(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _whitelist_entry(value: str) -> str:
    try:
        WhitelistEntry.parse(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _probability(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("expected a probability between 0 and 1")
    return number


def _dev_clock(value: str) -> DevClock:
    try:
        return parse_dev_clock(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _drop_rule(value: str) -> DropRule:
    try:
        return DropRule.parse(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridhook-sim",
        description="DPS NvGrid simulator: AuthService + NvGrid over gRPC (with reflection), "
        "a load-target schedule with a ramp model, and a webhook dispatcher. Dev/test only.",
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    server.add_argument(
        "--port",
        type=int,
        default=50051,
        help="0 = any free port; with several sites, site i listens on PORT + i - 1 "
        "(default %(default)s)",
    )
    server.add_argument("--insecure", action="store_true", help="plaintext gRPC instead of TLS")
    server.add_argument(
        "--tls-dir",
        default="var/sim-tls",
        help="where the generated CA (ca.pem, give it to clients) and server certificate are "
        "written and reused; with several sites, each site's own CA in DIR/<site>/ "
        "(default %(default)s)",
    )
    server.add_argument(
        "--tls-hostname",
        action="append",
        default=[],
        metavar="NAME",
        help="extra host name or IP for the server certificate (localhost and 127.0.0.1 always)",
    )
    fleet = parser.add_argument_group("sites (a fleet of independent DPS sites)")
    fleet.add_argument(
        "--sites",
        type=_positive_int,
        metavar="N",
        help="serve N independent sites (own feeds, targets, registrations, webhooks, users, "
        "clock and load), named site-1 ... site-N, on consecutive ports (default 1)",
    )
    fleet.add_argument(
        "--site-name",
        action="append",
        type=_site_name,
        default=[],
        metavar="NAME",
        help="name the sites instead (repeatable, in port order; their number is --sites)",
    )
    fleet.add_argument(
        "--timezone",
        action="append",
        type=_timezone,
        default=[],
        metavar="[SITE=]ZONE",
        help="IANA time zone of every site, or of SITE (repeatable; default UTC): the load "
        "model's local day and the history files' local time",
    )
    fleet.add_argument(
        "--faults-on",
        action="append",
        type=_site_name,
        default=None,
        metavar="SITE",
        help="the fault flags below apply to this site only (repeatable; default: every site)",
    )
    auth = parser.add_argument_group("authentication")
    auth.add_argument(
        "--user",
        action="append",
        type=_user,
        default=[],
        metavar="[SITE=]NAME:PASSWORD",
        help="a user who may request tokens (repeatable; default admin:password); SITE= gives "
        "that site its own users instead",
    )
    auth.add_argument(
        "--token-ttl", type=float, default=3600.0, help="access-token lifetime, seconds"
    )
    auth.add_argument(
        "--refresh-token-ttl", type=float, default=86400.0, help="refresh-token lifetime, seconds"
    )
    model = parser.add_argument_group("power model")
    model.add_argument(
        "--feeds",
        action="append",
        type=_feeds_file,
        default=[],
        metavar="[SITE=]JSON",
        help="every site's feeds, or SITE's (repeatable): a file "
        '{"feeds": [{"tag", "min_cap", "max_cap", "default_constraint", "unit": "mw", '
        '"min_achievable", "load"}]} (min_achievable: the lowest load a ramp down really '
        "reaches, default min_cap); default: main_power_feed (2-12 MW, default 10) and "
        "backup_power_feed (1-10 MW, default 8)",
    )
    clock = model.add_mutually_exclusive_group()
    clock.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (60 = a minute a second); the clock starts at "
        "the real now",
    )
    clock.add_argument(
        "--clock",
        type=_dev_clock,
        metavar="SPEED@SIM_TIME@REAL_TIME",
        help="run like GRIDHOOK_DEV_CLOCK: at REAL_TIME the clock shows SIM_TIME and runs "
        "SPEED times as fast (e.g. 1440@2026-11-29T02:00:00Z@2026-11-30T02:00:00Z); give a "
        "receiver the same string and both keep the same time",
    )
    model.add_argument(
        "--ramp-rate",
        type=float,
        default=1.0,
        metavar="MW_PER_MIN",
        help="how fast the calculated load follows the target, MW per simulated minute",
    )
    model.add_argument(
        "--load-seed",
        type=int,
        metavar="N",
        help="every feed follows the load model with this seed (base, daily shape, weekends, "
        'noise; per feed in the feeds file\'s "load" object), held under its cap; default: a '
        "flat load that is always the cap",
    )
    history = parser.add_argument_group("history (write meter CSVs from the load model, then exit)")
    history.add_argument(
        "--history",
        type=_positive_int,
        metavar="DAYS",
        help="write each site's and feed's meter data for the DAYS local days before the "
        "clock starts (--clock's SIM_TIME, else now), up to that instant, in both formats "
        "gridhook imports; needs --load-seed and --out",
    )
    history.add_argument("--out", type=Path, metavar="DIR", help="where --history writes")
    history.add_argument(
        "--history-interval",
        "--meter-interval",
        dest="history_interval",
        type=_history_interval,
        default=INTERVALS["15m"],
        metavar="5m|15m|1h",
        help="meter interval of --history and --meter-out (default 15m)",
    )
    history.add_argument(
        "--meter-out",
        type=Path,
        metavar="DIR",
        help="when it stops, write each site's and feed's meter data of the run, in the "
        "formats and layout of --history: the load it served (the load model, or the flat "
        "load, held under the caps of its targets) per whole interval from the clock's start "
        "(--clock's SIM_TIME, where --history ends; else when it started) to the last "
        "interval boundary before it stopped",
    )
    hooks = parser.add_argument_group("webhooks")
    hooks.add_argument(
        "--whitelist",
        action="append",
        type=_whitelist_entry,
        default=[],
        metavar="URL",
        help="allowed webhook URL or prefix, scheme://host[:port][/path] (repeatable); matches "
        "on scheme, host, port (any port if none given) and exact URL or path prefix. With no "
        "--whitelist every http(s) URL may register.",
    )
    hooks.add_argument(
        "--concurrency", type=int, default=32, help="parallel deliveries (DPS default 32)"
    )
    hooks.add_argument(
        "--call-timeout",
        type=float,
        default=60.0,
        help="per-POST timeout, seconds (DPS default 60)",
    )
    faults = parser.add_argument_group("faults (for tests)")
    faults.add_argument(
        "--duplicate-every", type=int, default=0, metavar="N", help="send every Nth delivery twice"
    )
    faults.add_argument("--duplicate-probability", type=_probability, default=0.0, metavar="P")
    faults.add_argument(
        "--drop-next", type=int, default=0, metavar="N", help="drop the next N deliveries"
    )
    faults.add_argument("--drop-probability", type=_probability, default=0.0, metavar="P")
    faults.add_argument(
        "--drop-event",
        action="append",
        type=_drop_rule,
        default=[],
        metavar="EVENT[:CORRELATION_ID]",
        help="drop every delivery of this event type (start_ramp_down, end_ramp_down, "
        "start_ramp_up, end_ramp_up), only for this correlation id if one is given; "
        "':CORRELATION_ID' drops all of its events (repeatable)",
    )
    faults.add_argument(
        "--reorder-batch",
        type=int,
        default=0,
        metavar="N",
        help="hold N deliveries and send them shuffled",
    )
    faults.add_argument(
        "--reorder-hold",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="flush a partial batch after this long",
    )
    faults.add_argument(
        "--retry",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="retry deliveries that got no 200 (default: no retries, as DPS documents none)",
    )
    faults.add_argument("--retry-attempts", type=int, default=3, help="total attempts with --retry")
    faults.add_argument(
        "--retry-backoff", type=float, default=0.2, help="first retry delay, seconds (doubles)"
    )
    faults.add_argument(
        "--unavailable-calls",
        type=int,
        default=0,
        metavar="N",
        help="fail the next N RPCs with UNAVAILABLE",
    )
    faults.add_argument(
        "--unavailable-for",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="fail every RPC for this long after start",
    )
    faults.add_argument(
        "--seed", type=int, default=None, help="random seed for the probabilistic faults"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="(default %(default)s)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    faults = FaultKnobs(
        duplicate_every=args.duplicate_every,
        duplicate_probability=args.duplicate_probability,
        drop_next=args.drop_next,
        drop_probability=args.drop_probability,
        drop_events=list(args.drop_event),
        reorder_batch=args.reorder_batch,
        reorder_hold=args.reorder_hold,
        retry_on_failure=args.retry,
        retry_max_attempts=args.retry_attempts,
        retry_backoff=args.retry_backoff,
        unavailable_calls=args.unavailable_calls,
        seed=args.seed,
    )
    if args.unavailable_for > 0:
        faults.fail_rpcs_for(args.unavailable_for)
    every_site_users = [entry.value for entry in args.user if entry.site is None]
    every_site_zones = [entry.value for entry in args.timezone if entry.site is None]
    every_site_feeds = [entry.value for entry in args.feeds if entry.site is None]
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        tls_dir=args.tls_dir,
        tls_hostnames=["localhost", "127.0.0.1", *args.tls_hostname],
        users=dict(every_site_users) if every_site_users else {"admin": "password"},
        timezone=every_site_zones[-1] if every_site_zones else "UTC",
        load_seed=args.load_seed,
        token_ttl=args.token_ttl,
        refresh_token_ttl=args.refresh_token_ttl,
        feeds=load_feeds(every_site_feeds[-1]) if every_site_feeds else default_feeds(),
        speed=args.speed,
        clock=args.clock,
        ramp_rate_mw_per_minute=args.ramp_rate,
        whitelist=args.whitelist,
        concurrency=args.concurrency,
        call_timeout=args.call_timeout,
        faults=faults,
    )


def fleet_from_args(args: argparse.Namespace) -> list[SimulatorConfig]:
    """One config per site (a single site unless --sites / --site-name say otherwise)."""
    sites = site_names(args.sites, args.site_name)
    users: dict[str, dict[str, str]] = {}
    for entry in args.user:
        if entry.site is not None:
            users.setdefault(entry.site, {}).update([entry.value])
    zones = {entry.site: entry.value for entry in args.timezone if entry.site is not None}
    feeds = {entry.site: load_feeds(entry.value) for entry in args.feeds if entry.site is not None}
    return fleet_configs(
        config_from_args(args),
        sites,
        timezones=zones,
        users=users,
        feeds=feeds,
        fault_sites=args.faults_on,
    )


def write_history_files(args: argparse.Namespace, configs: Sequence[SimulatorConfig]) -> int:
    """--history: every site's and feed's meter files, one line each on stdout."""
    if args.load_seed is None:
        raise ValueError(
            "--history writes the load model's past: give --load-seed (and the same seed, "
            "sites, time zones and feeds to the simulator that serves the live load)"
        )
    if args.out is None:
        raise ValueError("--history needs --out DIR")
    clock_start = args.clock.sim_origin if args.clock is not None else datetime.now(UTC)
    written = []
    for config in configs:
        feeds = list(config.feeds or default_feeds())
        model = load_model(feeds, config.site, time_zone(config.timezone), args.load_seed)
        assert model is not None  # a seed was given
        for file in write_history(
            model, args.history, clock_start, args.out, args.history_interval
        ):
            written.append(file)
            print(
                f"gridhook-sim history site={file.site} timezone={file.timezone} "
                f"feed={file.feed} format={file.format} since={rfc3339(file.since)} "
                f"until={rfc3339(file.until)} intervals={file.intervals} path={file.path}",
                flush=True,
            )
    print(f"gridhook-sim history index={write_index(written, args.out)}", flush=True)
    return 0


def write_meter_files(args: argparse.Namespace, fleet: Fleet, began: datetime) -> int:
    """--meter-out: every site's and feed's served load as meter files, a line each on
    stdout (as --history's), and their index."""
    written: list[HistoryFile] = []
    for simulator in fleet:
        since, until = meter_window(
            began, simulator.clock.now(), simulator.timezone, args.history_interval
        )
        feeds = {
            feed.tag: functools.partial(simulator.served_mean_watts, feed.tag)
            for feed in simulator.feeds
        }
        written += write_meter(
            simulator.site,
            simulator.timezone,
            feeds,
            since,
            until,
            args.meter_out,
            args.history_interval,
        )
    for file in written:
        print(
            f"gridhook-sim meter site={file.site} timezone={file.timezone} feed={file.feed} "
            f"format={file.format} since={rfc3339(file.since)} until={rfc3339(file.until)} "
            f"intervals={file.intervals} path={file.path}",
            flush=True,
        )
    print(f"gridhook-sim meter index={write_index(written, args.meter_out)}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        configs = fleet_from_args(args)
        if args.history is not None:
            if args.meter_out is not None:
                raise ValueError(
                    "--meter-out is the data of a run: give it to the simulator that serves "
                    "the day, not to --history"
                )
            return write_history_files(args, configs)
        if args.meter_out is not None:
            args.meter_out.mkdir(parents=True, exist_ok=True)  # refused now, not at the end
        fleet = start_fleet(configs)
        fleet_started = min(simulator.clock.now() for simulator in fleet)
    except (ValueError, OSError) as error:
        parser.exit(2, f"gridhook-sim: error: {error}\n")
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # One machine-readable line per site on stdout, in port order, so scripts can find each
    # site's address and CA.
    for simulator in fleet:
        print(
            f"gridhook-sim listening on {simulator.address} "
            f"tls={'off' if simulator.config.insecure else 'on'} "
            f"ca={simulator.ca_cert_path or '-'} "
            f"site={simulator.site} timezone={simulator.timezone.key}",
            flush=True,
        )
    began = args.clock.sim_origin if args.clock is not None else fleet_started
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        fleet.stop()
    if args.meter_out is not None:
        return write_meter_files(args, fleet, began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
