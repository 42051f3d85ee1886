"""``gridhook episodes``: what each curtailment did; ``gridhook samples``: what DPS measured.

Episodes are derived from the stored events (docs/episodes.md); samples are the loads
DPS reported to the scheduled reconcile (GetStatus), one per feed per run. Times are
gridhook's clock: GRIDHOOK_DEV_CLOCK makes ages like ``7d`` count in simulated time.
Both list every site's (``--site`` picks), site by site in the deployment's order; a
deployment of several sites shows each row's SITE (JSON and CSV always carry it).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from gridhook import clock, csv_format
from gridhook.cli import args as arg
from gridhook.cli.events import add_store_argument, opened_store, settings_from_env
from gridhook.cli.output import write_csv, write_json, write_table
from gridhook.cli.samples import register_rollup
from gridhook.episodes import EPISODE_STATUSES

if TYPE_CHECKING:
    from gridhook.episodes import Episode
    from gridhook.store import LoadSample

__all__ = ["register"]

_SAMPLES_DEFAULT_RANGE = timedelta(hours=24)
# Units in the names, numbers in the cells (gridhook.csv_format).
_EPISODE_CSV = (
    "episode_id",
    "site",
    "feed_tag",
    "correlation_id",
    "status",
    "kind",
    "open",
    "prev_target_mw",
    "target_mw",
    "interval_start",
    "interval_end",
    "ramp_down_started_at",
    "ramp_down_ended_at",
    "ramp_down_seconds",
    "constrained_seconds",
    "ramp_up_started_at",
    "ramp_up_ended_at",
    "ramp_up_seconds",
    "compliant",
    "requested_reduction_mw",
    "requested_energy_mwh",
    "constrained_seconds_in_range",
    "requested_energy_mwh_in_range",
    "superseded_by",
    "ended_at",
    "missing",
    "flags",
)
_SAMPLE_CSV = (
    "site",
    "sampled_at",
    "feed_tag",
    "calculated_mw",
    "target_mw",
    "correlation_id",
    "sample_id",
    "expires_at",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    episodes = subparsers.add_parser(
        "episodes",
        help="curtailment episodes derived from stored events",
        description="Curtailment episodes derived from the stored events: when each feed "
        "ramped down, how long it took, how long it held, whether the target was met.",
    )
    add_store_argument(episodes)
    _filter_arguments(episodes)
    episodes.add_argument(
        "--correlation-id",
        type=arg.tag("correlation_id"),
        action=arg.Once,
        help="only this correlation id (any time)",
    )
    episodes.add_argument(
        "--since",
        type=arg.when("since"),
        action=arg.Once,
        help="episodes going on at or after: RFC 3339 or an age like 2h, 7d "
        "(default 7d; with --correlation-id, any time)",
    )
    episodes.add_argument(
        "--until",
        type=arg.when("until"),
        action=arg.Once,
        help="episodes going on before: RFC 3339 or an age",
    )
    episodes.add_argument(
        "--status",
        type=arg.choice("status", EPISODE_STATUSES),
        action=arg.Once,
        metavar="{" + ",".join(EPISODE_STATUSES) + "}",
        help="only episodes with this status",
    )
    episodes.set_defaults(handler=_episodes)

    samples = subparsers.add_parser(
        "samples",
        help="loads DPS measured, recorded by the scheduled reconcile",
        description="Load samples: each feed's calculated load and target as DPS reported "
        "them to the scheduled reconcile (measured, unlike an episode's requested figures).",
    )
    add_store_argument(samples)
    _filter_arguments(samples)
    samples.add_argument(
        "--since",
        type=arg.when("since"),
        action=arg.Once,
        help="sampled at or after (default: 24h before --until, or before now)",
    )
    samples.add_argument(
        "--until",
        type=arg.when("until"),
        action=arg.Once,
        help="sampled before: RFC 3339 or an age (default: no end)",
    )
    samples.set_defaults(handler=_samples)
    register_rollup(samples)  # gridhook samples rollup


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    arg.add_site_argument(parser)
    parser.add_argument("--feed", type=arg.tag("feed"), action=arg.Once, help="only this feed tag")
    arg.add_format(parser, ("table", "json", "csv"))


# --- gridhook episodes ----------------------------------------------------------------------


def _episodes(args: argparse.Namespace) -> int:
    from gridhook.episodes.load import load_episodes
    from gridhook.report.params import EPISODE_PARAMETERS, episode_params
    from gridhook.store import StoreError

    settings = settings_from_env("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_RAMP_DEADLINE_SECONDS")
    now = clock.now()
    deployment = arg.deployment_sites()
    query = arg.read_params(episode_params, args, EPISODE_PARAMETERS, now=now, sites=deployment)
    episodes: list[Episode] = []
    with opened_store(args.store) as store:
        try:
            for site in query.sites:  # each site on its own, in the deployment's order
                episodes += load_episodes(
                    store,
                    since=query.since,
                    until=query.until,
                    feed_tag=query.feed_tag,
                    correlation_id=query.correlation_id,
                    status=query.status,
                    now=now,
                    ramp_deadline=settings.ramp_deadline_seconds,
                    site=site.name,
                )
        except StoreError as exc:
            raise _error(str(exc)) from None
    fmt, since, until = args.format, query.since, query.until
    if fmt == "json":
        write_json([e.to_dict(since, until) for e in episodes])
    elif fmt == "csv":
        write_csv([_episode_csv_row(e, since, until) for e in episodes], _EPISODE_CSV)
    elif episodes:
        rows = [_episode_row(e, episodes, since, until, deployment.several) for e in episodes]
        write_table(rows, list(rows[0]), headers=list(rows[0]))
    else:
        print(
            f"no episodes between {_when(query.since)} and {_when(query.until)}{_filters(args)}",
            file=sys.stderr,
        )
    return 0


def _episode_row(
    episode: Episode, listed: list[Episode], since: datetime, until: datetime, several: bool
) -> dict[str, str]:
    """Whole-episode figures, and beside them its share of [since, until); its SITE first
    when the deployment has several."""
    from gridhook.display import format_duration, format_mwh, format_target

    def duration(seconds: float | None) -> str:
        return format_duration(seconds, missing="-")

    closing_started = (
        episode.ramp_up_started_at
        if episode.kind == "curtailment"
        else episode.ramp_down_started_at
    )
    held = duration(episode.constrained_seconds)
    if episode.open and closing_started is None and episode.constrained_seconds is not None:
        held += "+"  # still held
    share = episode.share(since, until)
    target = f"{format_target(episode.prev_target_w, unit=False)} → "
    target += format_target(episode.target_w, unit=False)
    site = {"SITE": episode.site} if several else {}
    return {
        **site,
        "FEED": episode.feed_tag or "(none)",
        "CORRELATION ID": episode.correlation_id or "-",
        "STATUS": episode.status,
        "TARGET MW": target,
        "RAMP DOWN AT": _when(episode.ramp_down_started_at),
        "DOWN": duration(episode.ramp_down_seconds),
        "HELD": held,
        "UP": duration(episode.ramp_up_seconds),
        "COMPLIANT": {True: "yes", False: "no", None: "-"}[episode.compliant],
        "REQUESTED MWh": format_mwh(episode.requested_energy_wh, unit=False, missing="-"),
        "HELD IN RANGE": duration(share.constrained_seconds),
        "MWh IN RANGE": format_mwh(share.requested_energy_wh, unit=False, missing="-"),
        "NOTES": _notes(episode, listed),
    }


def _notes(episode: Episode, listed: list[Episode]) -> str:
    notes = []
    if episode.kind != "curtailment":
        notes.append(episode.kind)
    if episode.missing:
        notes.append("missing " + ", ".join(episode.missing))
    if episode.superseded_by:
        by = next(
            (e for e in listed if e.episode_id == episode.superseded_by and e.site == episode.site),
            None,
        )
        label = by.correlation_id if by is not None and by.correlation_id else "a new target"
        notes.append(f"replaced by {label}")
    kinds = dict.fromkeys(flag.split(":", 1)[0] for flag in episode.flags)
    notes.extend(k for k in kinds if k != "stalled")  # the status says stalled already
    return "; ".join(notes)


def _episode_csv_row(episode: Episode, since: datetime, until: datetime) -> dict[str, str]:
    share = episode.share(since, until)
    return {
        "episode_id": episode.episode_id,
        "site": episode.site,
        "feed_tag": episode.feed_tag or "",
        "correlation_id": episode.correlation_id or "",
        "status": episode.status,
        "kind": episode.kind,
        "open": csv_format.boolean(episode.open),
        "prev_target_mw": csv_format.mw(episode.prev_target_w),
        "target_mw": csv_format.mw(episode.target_w),
        "interval_start": csv_format.when(episode.interval_start),
        "interval_end": csv_format.when(episode.interval_end),
        "ramp_down_started_at": csv_format.when(episode.ramp_down_started_at),
        "ramp_down_ended_at": csv_format.when(episode.ramp_down_ended_at),
        "ramp_down_seconds": csv_format.seconds(episode.ramp_down_seconds),
        "constrained_seconds": csv_format.seconds(episode.constrained_seconds),
        "ramp_up_started_at": csv_format.when(episode.ramp_up_started_at),
        "ramp_up_ended_at": csv_format.when(episode.ramp_up_ended_at),
        "ramp_up_seconds": csv_format.seconds(episode.ramp_up_seconds),
        "compliant": csv_format.boolean(episode.compliant),
        "requested_reduction_mw": csv_format.mw(episode.requested_reduction_w),
        "requested_energy_mwh": csv_format.mwh(episode.requested_energy_wh),
        "constrained_seconds_in_range": csv_format.seconds(share.constrained_seconds),
        "requested_energy_mwh_in_range": csv_format.mwh(share.requested_energy_wh),
        "superseded_by": episode.superseded_by or "",
        "ended_at": csv_format.when(episode.ended_at),
        "missing": csv_format.items(episode.missing),
        "flags": csv_format.items(episode.flags),
    }


# --- gridhook samples -----------------------------------------------------------------------


def _samples(args: argparse.Namespace) -> int:
    from gridhook.report.params import BadParameter, parse_range, parse_when
    from gridhook.store import SampleQuery, StoreError, iter_samples

    settings_from_env("GRIDHOOK_DEV_CLOCK")
    chosen = arg.chosen_sites(args)
    now = clock.now()
    try:
        if args.until is None:  # no end: a sample stamped on a faster clock still shows
            since = now - _SAMPLES_DEFAULT_RANGE
            since = since if args.since is None else parse_when("since", args.since, now)
            until = None
        else:
            since, until = parse_range(
                args.since, args.until, now=now, default_since=_SAMPLES_DEFAULT_RANGE
            )
    except BadParameter as exc:
        raise arg.command_error(exc) from None
    samples: list[LoadSample] = []
    with opened_store(args.store) as store:
        try:
            for site in chosen.sites:  # each site on its own, oldest first
                query = SampleQuery(
                    site=site.name, feed_tag=args.feed, since=since, until=until, limit=1000
                )
                samples += iter_samples(store, query)
        except StoreError as exc:
            raise _error(str(exc)) from None
    fmt = args.format
    if fmt == "json":
        write_json([s.to_dict() for s in samples])
    elif fmt == "csv":
        write_csv([_sample_csv_row(s) for s in samples], _SAMPLE_CSV)
    elif samples:
        rows = [_sample_row(s, chosen.several) for s in samples]
        write_table(rows, list(rows[0]), headers=list(rows[0]))
    else:
        print(
            f"no samples since {_when(since)}{_filters(args)} "
            "(the scheduled reconcile records one per feed per run)",
            file=sys.stderr,
        )
    return 0


def _sample_row(sample: LoadSample, several: bool) -> dict[str, str]:
    from gridhook.display import format_load, format_target

    site = {"SITE": sample.site} if several else {}
    return {
        **site,
        "SAMPLED AT": _when(sample.sampled_at),
        "FEED": sample.feed_tag,
        "CALCULATED MW": format_load(sample.calculated_w, unit=False),
        "TARGET MW": format_target(sample.target_w, unit=False),
        "CORRELATION ID": sample.correlation_id or "-",
    }


def _sample_csv_row(sample: LoadSample) -> dict[str, str]:
    return {
        "site": sample.site,
        "sampled_at": csv_format.when(sample.sampled_at),
        "feed_tag": sample.feed_tag,
        "calculated_mw": csv_format.mw(sample.calculated_w),
        "target_mw": csv_format.mw(sample.target_w),
        "correlation_id": sample.correlation_id or "",
        "sample_id": sample.sample_id,
        "expires_at": csv_format.when(sample.expires_at),
    }


# --- shared -----------------------------------------------------------------------------------


def _error(message: str) -> Exception:
    from gridhook.cli import CommandError

    return CommandError(message)


def _filters(args: argparse.Namespace) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("site", ", ".join(args.site) if getattr(args, "site", None) else None),
            ("feed", args.feed),
            ("correlation id", getattr(args, "correlation_id", None)),
            ("status", getattr(args, "status", None)),
        )
        if value
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _mw(watts: float | None) -> str:
    return "default" if watts is None else f"{watts / 1e6:g}"
