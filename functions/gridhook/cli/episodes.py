"""``gridhook episodes``: what each curtailment did; ``gridhook samples``: what DPS measured.

Episodes are derived from the stored events (docs/episodes.md); samples are the loads
DPS reported to the scheduled reconcile (GetStatus), one per feed per run. Times are
gridhook's clock: GRIDHOOK_DEV_CLOCK makes ages like ``7d`` count in simulated time.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gridhook import clock
from gridhook.cli.events import add_store_argument, opened_store, parse_when, settings_from_env
from gridhook.cli.output import write_csv, write_json, write_table
from gridhook.episodes import EPISODE_STATUSES

if TYPE_CHECKING:
    from gridhook.episodes import Episode
    from gridhook.store import LoadSample

__all__ = ["register"]

_FORMATS = ("table", "json", "csv")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPISODE_CSV = (
    "episode_id",
    "feed_tag",
    "correlation_id",
    "status",
    "kind",
    "open",
    "prev_target_w",
    "target_w",
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
    "requested_reduction_w",
    "requested_energy_wh",
    "constrained_seconds_in_range",
    "requested_energy_wh_in_range",
    "superseded_by",
    "ended_at",
    "missing",
    "flags",
)
_SAMPLE_CSV = (
    "sampled_at",
    "feed_tag",
    "calculated_w",
    "target_w",
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
    episodes.add_argument("--feed", help="only this feed tag")
    episodes.add_argument("--correlation-id", help="only this correlation id (any time)")
    episodes.add_argument(
        "--since",
        help="episodes going on at or after: RFC 3339 or an age like 2h, 7d "
        "(default 7d; with --correlation-id, any time)",
    )
    episodes.add_argument("--until", help="episodes going on before: RFC 3339 or an age")
    episodes.add_argument(
        "--status",
        metavar="{" + ",".join(EPISODE_STATUSES) + "}",
        help="only episodes with this status",
    )
    episodes.add_argument(
        "--format", default="table", metavar="{table,json,csv}", help="default: table"
    )
    episodes.set_defaults(handler=_episodes)

    samples = subparsers.add_parser(
        "samples",
        help="loads DPS measured, recorded by the scheduled reconcile",
        description="Load samples: each feed's calculated load and target as DPS reported "
        "them to the scheduled reconcile (measured, unlike an episode's requested figures).",
    )
    add_store_argument(samples)
    samples.add_argument("--feed", help="only this feed tag")
    samples.add_argument("--since", help="sampled at or after (default 24h)")
    samples.add_argument("--until", help="sampled before: RFC 3339 or an age")
    samples.add_argument(
        "--format", default="table", metavar="{table,json,csv}", help="default: table"
    )
    samples.set_defaults(handler=_samples)


# --- gridhook episodes ----------------------------------------------------------------------


def _episodes(args: argparse.Namespace) -> int:
    from gridhook.episodes.load import load_episodes
    from gridhook.store import StoreError

    fmt = _choice("--format", args.format, _FORMATS)
    status = _choice("--status", args.status, EPISODE_STATUSES) if args.status else None
    settings = settings_from_env("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_RAMP_DEADLINE_SECONDS")
    now = clock.now()
    default_since = _EPOCH if args.correlation_id else now - timedelta(days=7)
    since, until = _range(args.since, args.until, default_since, now)
    assert until is not None  # defaults to now
    with opened_store(args.store) as store:
        try:
            episodes = load_episodes(
                store,
                since=since,
                until=until,
                feed_tag=args.feed,
                correlation_id=args.correlation_id,
                status=status,
                now=now,
                ramp_deadline=settings.ramp_deadline_seconds,
            )
        except StoreError as exc:
            raise _error(str(exc)) from None
    if fmt == "json":
        write_json([e.to_dict(since, until) for e in episodes])
    elif fmt == "csv":
        write_csv([_episode_csv_row(e, since, until) for e in episodes], _EPISODE_CSV)
    elif episodes:
        rows = [_episode_row(e, episodes, since, until) for e in episodes]
        write_table(rows, list(rows[0]), headers=list(rows[0]))
    else:
        print(
            f"no episodes between {_when(since)} and {_when(until)}{_filters(args)}",
            file=sys.stderr,
        )
    return 0


def _episode_row(
    episode: Episode, listed: list[Episode], since: datetime, until: datetime
) -> dict[str, str]:
    """Whole-episode figures, and beside them its share of [since, until)."""
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
    return {
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
        by = next((e for e in listed if e.episode_id == episode.superseded_by), None)
        label = by.correlation_id if by is not None and by.correlation_id else "a new target"
        notes.append(f"replaced by {label}")
    kinds = dict.fromkeys(flag.split(":", 1)[0] for flag in episode.flags)
    notes.extend(k for k in kinds if k != "stalled")  # the status says stalled already
    return "; ".join(notes)


def _episode_csv_row(episode: Episode, since: datetime, until: datetime) -> dict[str, Any]:
    data = episode.to_dict()
    share = episode.share(since, until)
    data["constrained_seconds_in_range"] = share.constrained_seconds
    data["requested_energy_wh_in_range"] = share.requested_energy_wh
    row = {column: _csv_value(data.get(column)) for column in _EPISODE_CSV}
    row["missing"] = " ".join(episode.missing)
    row["flags"] = " | ".join(episode.flags)
    return row


# --- gridhook samples -----------------------------------------------------------------------


def _samples(args: argparse.Namespace) -> int:
    from gridhook.store import SampleQuery, StoreError, iter_samples

    fmt = _choice("--format", args.format, _FORMATS)
    settings_from_env("GRIDHOOK_DEV_CLOCK")
    now = clock.now()
    since, until = _range(args.since, args.until, now - timedelta(hours=24), None)
    with opened_store(args.store) as store:
        try:
            query = SampleQuery(feed_tag=args.feed, since=since, until=until, limit=1000)
            samples = list(iter_samples(store, query))
        except StoreError as exc:
            raise _error(str(exc)) from None
    if fmt == "json":
        write_json([s.to_dict() for s in samples])
    elif fmt == "csv":
        write_csv(
            [{c: _csv_value(s.to_dict()[c]) for c in _SAMPLE_CSV} for s in samples], _SAMPLE_CSV
        )
    elif samples:
        rows = [_sample_row(s) for s in samples]
        write_table(rows, list(rows[0]), headers=list(rows[0]))
    else:
        print(
            f"no samples since {_when(since)}{_filters(args)} "
            "(the scheduled reconcile records one per feed per run)",
            file=sys.stderr,
        )
    return 0


def _sample_row(sample: LoadSample) -> dict[str, str]:
    from gridhook.display import format_load, format_target

    return {
        "SAMPLED AT": _when(sample.sampled_at),
        "FEED": sample.feed_tag,
        "CALCULATED MW": format_load(sample.calculated_w, unit=False),
        "TARGET MW": format_target(sample.target_w, unit=False),
        "CORRELATION ID": sample.correlation_id or "-",
    }


# --- shared -----------------------------------------------------------------------------------


def _error(message: str) -> Exception:
    from gridhook.cli import CommandError

    return CommandError(message)


def _choice(flag: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _error(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _range(
    since_text: str | None,
    until_text: str | None,
    default_since: datetime,
    default_until: datetime | None,
) -> tuple[datetime, datetime | None]:
    since = _parse("--since", since_text) if since_text else default_since
    until = _parse("--until", until_text) if until_text else default_until
    if until is not None and until <= since:
        raise _error(f"--since ({_when(since)}) must be before --until ({_when(until)})")
    return since, until


def _parse(flag: str, text: str) -> datetime:
    try:
        return parse_when(text)
    except argparse.ArgumentTypeError as exc:
        raise _error(f"{flag}: {exc}") from None


def _filters(args: argparse.Namespace) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("feed", args.feed),
            ("correlation id", getattr(args, "correlation_id", None)),
            ("status", getattr(args, "status", None)),
        )
        if value
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value
