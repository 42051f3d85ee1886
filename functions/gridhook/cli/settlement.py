"""``gridhook baseline`` and ``gridhook settlement``: delivered curtailment against a customer
baseline, from the store (docs/settlement.md defines every figure).

    gridhook baseline --site phx1 --feed main --event-start 2026-05-13T18:00:00Z \\
        --event-end 2026-05-13T20:00:00Z --method pjm-high-4-of-5
    gridhook settlement --since 30d --format html --output var/settlement.html
    gridhook settlement --since 2026-05-01T00:00:00Z --until 2026-06-01T00:00:00Z --format csv

``baseline`` prints one event's intervals (baseline, actual, delivered and needed load), the
days it chose and those it excluded with their reasons, the day-of adjustment and the
status. ``settlement`` settles every curtailment episode listed in the range (any part of
it inside), one row each, with totals per feed, per site and for the fleet that count only
what lies inside the range. The method defaults to GRIDHOOK_BASELINE_METHOD; the source to
meter data where a feed has some, DPS samples otherwise. Times are RFC 3339 or ages such as
30d before now (on GRIDHOOK_DEV_CLOCK when it is set); ``--since``/``--until``/``--site``
follow the report's rules.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store, settings_from_env
from gridhook.report.params import FORMATS

if TYPE_CHECKING:
    from gridhook.intervals.settle import BaselineRun, SettlementRun
    from gridhook.sites import Site

__all__ = ["register"]

_SETTINGS = (
    "GRIDHOOK_RAMP_DEADLINE_SECONDS",
    "GRIDHOOK_DEV_CLOCK",
    "GRIDHOOK_BASELINE_METHOD",
    "GRIDHOOK_INTERVAL_MIN_COVERAGE",
)
BASELINE_FORMATS = ("table", "json", "csv")
SETTLEMENT_FORMATS = ("table", *FORMATS)
#: ``gridhook baseline --format csv``: one row per interval, by gridhook's CSV convention
#: (loads in MW); the event's method, source and status on every row.
BASELINE_CSV_COLUMNS = (
    "site",
    "feed",
    "interval_start",
    "interval_end",
    "baseline_mw",
    "actual_mw",
    "delivered_mw",
    "needed_mw",
    "counted_seconds",
    "method",
    "source",
    "status",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    baseline = subparsers.add_parser(
        "baseline",
        help="one event's customer baseline and delivered load, per interval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_argument(baseline)
    baseline.add_argument(
        "--site",
        type=arg.tag("site"),
        action=arg.Once,
        metavar="NAME",
        help="the site (default: the deployment's only site)",
    )
    baseline.add_argument("--feed", type=arg.tag("feed"), action=arg.Once, required=True)
    baseline.add_argument(
        "--event-start",
        type=arg.when("event_start"),
        action=arg.Once,
        required=True,
        help="the event's start (DPS's start_time): RFC 3339 or an age",
    )
    baseline.add_argument(
        "--event-end",
        type=arg.when("event_end"),
        action=arg.Once,
        required=True,
        help="the event's end (DPS's end_time): RFC 3339 or an age",
    )
    arg.add_settling_arguments(baseline, interval=True)
    arg.add_format(baseline, BASELINE_FORMATS)
    baseline.set_defaults(handler=_baseline)

    settlement = subparsers.add_parser(
        "settlement",
        help="delivered MWh and performance of every episode of a range, with totals",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_argument(settlement)
    arg.add_range_arguments(settlement)
    arg.add_site_argument(settlement)
    settlement.add_argument(
        "--feed", type=arg.tag("feed"), action=arg.Once, help="only this feed tag"
    )
    arg.add_settling_arguments(settlement, interval=True)
    arg.add_format(settlement, SETTLEMENT_FORMATS)
    settlement.add_argument(
        "--output", "-o", action=arg.Once, metavar="FILE", help="write to FILE, not stdout"
    )
    settlement.set_defaults(handler=_settlement)


# -- baseline --------------------------------------------------------------------------------


def _one_site(name: str | None) -> Site:
    from gridhook.cli import CommandError
    from gridhook.report.params import BadParameter, parse_sites

    deployment = arg.deployment_sites()
    if name is None:
        if deployment.several:
            raise CommandError(
                f"--site: required: this deployment serves {', '.join(deployment.names)}"
            )
        return deployment.sites[0]
    try:
        return parse_sites([name], deployment)[0]
    except BadParameter as exc:
        raise arg.command_error(exc) from None


def _baseline(args: argparse.Namespace) -> int:
    from gridhook import clock
    from gridhook.cli import CommandError
    from gridhook.intervals.settle import baseline_for
    from gridhook.report.params import BadParameter, parse_when
    from gridhook.settlement import SettlementError
    from gridhook.store import StoreError

    settings = settings_from_env(*_SETTINGS)
    now = clock.now()
    site = _one_site(args.site)
    try:
        start = parse_when("event_start", args.event_start, now)
        end = parse_when("event_end", args.event_end, now)
    except BadParameter as exc:
        raise arg.command_error(exc) from None
    if end <= start:
        raise CommandError(f"--event-end: {args.event_end} is not after --event-start")
    with opened_store(args.store) as store:
        try:
            run = baseline_for(
                store,
                site,
                args.feed,
                event_start=start,
                event_end=end,
                now=now,
                method=args.method or settings.baseline_method,
                source=args.source or "auto",
                resolution=args.interval or "1h",
                ramp_deadline=timedelta(seconds=settings.ramp_deadline_seconds),
                min_coverage=settings.interval_min_coverage,
            )
        except (StoreError, SettlementError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        from gridhook.cli.output import write_json

        write_json(_baseline_json(run, site))
    elif args.format == "csv":
        from gridhook.cli.output import write_csv

        write_csv(_baseline_rows(run), BASELINE_CSV_COLUMNS)
    else:
        _baseline_table(run, site)
    return 0


def _baseline_json(run: BaselineRun, site: Site) -> dict[str, Any]:
    data = run.settlement.to_dict()
    zone = site.zone
    data["event_start_local"] = run.settlement.event_start.astimezone(zone).isoformat()
    end = run.settlement.event_end
    data["event_end_local"] = None if end is None else end.astimezone(zone).isoformat()
    data["load"] = run.load.to_dict()
    data["shadow"] = None if run.shadow is None else run.shadow.to_dict()
    return data


def _baseline_rows(run: BaselineRun) -> list[dict[str, str]]:
    from gridhook import csv_format

    s = run.settlement
    return [
        {
            "site": s.site,
            "feed": s.feed,
            "interval_start": csv_format.when(i.interval_start),
            "interval_end": csv_format.when(i.interval_end),
            "baseline_mw": csv_format.mw(i.baseline_w),
            "actual_mw": csv_format.mw(i.actual_w),
            "delivered_mw": csv_format.mw(i.delivered_w),
            "needed_mw": csv_format.mw(i.needed_w),
            "counted_seconds": csv_format.seconds(i.counted_s),
            "method": s.method,
            "source": s.source,
            "status": s.status,
        }
        for i in s.intervals
    ]


def _baseline_table(run: BaselineRun, site: Site) -> None:
    from gridhook.cli.output import write_table
    from gridhook.display import format_local, format_mw, format_mwh

    s, zone = run.settlement, site.zone
    out = sys.stdout
    out.write(
        f"site {s.site} · feed {s.feed} · {s.method} · source {s.source} · "
        f"{s.resolution} intervals\n"
        f"event {format_local(s.event_start, zone, seconds=False)} to "
        f"{format_local(s.event_end, zone, seconds=False)} · target {format_mw(s.target_w)}"
        f" · episode {s.episode_id or '(none with this target interval)'}\n"
        f"status {s.status}{': ' + s.reason if s.reason else ''}\n"
    )
    a = s.adjustment
    if a is None:
        out.write("adjustment none\n")
    else:
        value = (
            "—"
            if a.value is None
            else f"{a.value:.4f}"
            if a.kind == "factor"
            else format_mw(a.value)
        )
        clipped = f" (unclipped {a.unclipped:.4f})" if a.clipped and a.unclipped is not None else ""
        out.write(
            f"adjustment {a.kind} {value}{clipped} over "
            f"{format_local(a.window_start, zone, seconds=False)} to "
            f"{format_local(a.window_end, zone, seconds=False)}\n"
        )
    days = ", ".join(d.isoformat() for d in s.selected_days) or "none"
    out.write(f"selected days ({len(s.selected_days)}): {days}\n")
    out.write(f"excluded days ({len(s.excluded_days)}):\n")
    for e in s.excluded_days:
        out.write(f"  {e.day.isoformat()}  {e.reason}: {e.detail}\n")
    out.write(
        f"delivered {format_mwh(s.delivered_wh)} · needed {format_mwh(s.needed_wh)} · "
        f"performance {_pf(s.performance_factor)} (uncapped {_pf(s.performance_factor_uncapped)})\n"
    )
    if run.shadow is not None:
        out.write(
            f"shadow (samples): delivered {format_mwh(run.shadow.delivered_wh)} · "
            f"status {run.shadow.status}\n"
        )
    out.write("\n")
    rows = [
        {
            "start": format_local(i.interval_start, zone, seconds=False),
            "end": format_local(i.interval_end, zone, seconds=False),
            "baseline": format_mw(i.baseline_w, unit=False),
            "actual": format_mw(i.actual_w, unit=False),
            "delivered": format_mw(i.delivered_w, unit=False),
            "needed": format_mw(i.needed_w, unit=False),
        }
        for i in s.intervals
    ]
    columns = ("start", "end", "baseline", "actual", "delivered", "needed")
    headers = (
        "INTERVAL START",
        "INTERVAL END",
        "BASELINE MW",
        "ACTUAL MW",
        "DELIVERED MW",
        "NEEDED MW",
    )
    write_table(rows, columns, headers=headers)


def _pf(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


# -- settlement ------------------------------------------------------------------------------


def _settlement(args: argparse.Namespace) -> int:
    from gridhook import clock
    from gridhook.cli import CommandError
    from gridhook.intervals.settle import settle_range
    from gridhook.report.params import SETTLEMENT_PARAMETERS, settlement_params
    from gridhook.settlement import SettlementError
    from gridhook.store import StoreError

    settings = settings_from_env(*_SETTINGS)
    now = clock.now()
    deployment = arg.deployment_sites()
    query = arg.read_params(
        settlement_params,
        args,
        SETTLEMENT_PARAMETERS,
        now=now,
        sites=deployment,
        formats=SETTLEMENT_FORMATS,
    )
    with opened_store(args.store) as store:
        try:
            run = settle_range(
                store,
                query.sites,
                since=query.since,
                until=query.until,
                now=now,
                feeds=None if query.feed_tag is None else [query.feed_tag],
                method=query.method or settings.baseline_method,
                source=query.source,
                resolution=query.interval,
                ramp_deadline=timedelta(seconds=settings.ramp_deadline_seconds),
                min_coverage=settings.interval_min_coverage,
            )
        except (StoreError, SettlementError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    text = _render(run, query.format, deployment.several)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    from pathlib import Path

    from gridhook.cli.report import _write

    _write(Path(args.output), text)
    print(
        f"wrote {args.output}: {len(run.settlements)} episode(s) settled "
        f"({run.method}), {len(run.unsettled)} not settled",
        file=sys.stderr,
    )
    return 0


def _render(run: SettlementRun, form: str, several: bool) -> str:
    from gridhook.report import settlement as view

    if form == "json":
        return view.render_json(run)
    if form == "csv":
        return view.render_csv(run)
    if form == "html":
        return view.render_html(run, several=several)
    return _settlement_table(run, several)


def _settlement_table(run: SettlementRun, several: bool) -> str:
    import io

    from gridhook.cli.output import write_table
    from gridhook.display import format_local, format_mw, format_mwh
    from gridhook.report import settlement as view
    from gridhook.settlement import range_totals

    out = io.StringIO()
    out.write(
        f"settlement {format_local(run.since, seconds=False)} to "
        f"{format_local(run.until, seconds=False)} · method {run.method} · "
        f"{run.resolution} intervals · totals count only what lies inside the range\n\n"
    )
    rows: list[dict[str, str]] = []
    notes: list[str] = []

    def total(label_site: str, label_feed: str, t: Any, group: Any) -> dict[str, str]:
        known = view.figures_known(group)
        return {
            "site": label_site,
            "feed": label_feed,
            "episode": f"{t.episodes} episode(s)",
            "start": "",
            "target": "",
            "source": "",
            "status": ", ".join(f"{n} {k}" for k, n in t.statuses.items()) or "-",
            "delivered": format_mwh(t.delivered_wh, unit=False) if known else "no figures",
            "needed": format_mwh(t.needed_wh, unit=False) if known else "no figures",
            "pf": f"{_pf(t.performance_factor)} / {_pf(t.performance_factor_uncapped)}",
            "below": "",
        }

    for name, site in run.sites.items():
        zone = site.site.zone
        for feed in site.feeds.values():
            for s in feed.settlements:
                share = range_totals([s], run.since, run.until)
                if s.reason:
                    notes.append(f"{name}/{s.feed} {s.episode_id}: {s.status}: {s.reason}")
                whole = format_mwh(s.delivered_wh, unit=False, missing=s.status)
                if s.delivered_wh is not None and share.delivered_wh != s.delivered_wh:
                    whole += f" ({format_mwh(share.delivered_wh, unit=False)} in range)"
                rows.append(
                    {
                        "site": name,
                        "feed": s.feed,
                        "episode": s.episode_id or "",
                        "start": format_local(s.event_start, zone, seconds=False),
                        "target": format_mw(s.target_w, unit=False),
                        "source": s.source,
                        "status": s.status,
                        "delivered": whole,
                        "needed": format_mwh(s.needed_wh, unit=False, missing=s.status),
                        "pf": f"{_pf(s.performance_factor)} / {_pf(s.performance_factor_uncapped)}",
                        "below": "-"
                        if s.intervals_at_or_below_target is None
                        else f"{s.intervals_at_or_below_target}/{len(s.intervals)}",
                    }
                )
            rows.append(total(name, f"{feed.feed} total", feed.totals, feed.settlements))
        if several:
            rows.append(total(name, "all feeds", site.totals, site.settlements))
    rows.append(total("fleet" if several else "", "TOTAL", run.totals, run.settlements))
    columns = [
        "site",
        "feed",
        "episode",
        "start",
        "target",
        "source",
        "status",
        "delivered",
        "needed",
        "pf",
        "below",
    ]
    headers = [
        "SITE",
        "FEED",
        "EPISODE",
        "EVENT START (LOCAL)",
        "TARGET MW",
        "SOURCE",
        "STATUS",
        "DELIVERED MWH",
        "NEEDED MWH",
        "PERF (CAPPED / UNCAPPED)",
        "L<=T",
    ]
    if not several:
        columns, headers = columns[1:], headers[1:]
    write_table(rows, columns, out, headers=headers)
    for note in notes:
        out.write(f"note: {note}\n")
    for u in run.unsettled:
        out.write(f"not settled: {u.site}/{u.feed} {u.episode_id}: {u.reason}\n")
    return out.getvalue()
