"""Figures for people: durations, powers, energy and a site's local times as gridhook prints
them everywhere (the CLI's tables, the reports, the control room, episode flags). One
function per kind of figure, so the same figure reads the same wherever it is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

__all__ = [
    "format_duration",
    "format_load",
    "format_local",
    "format_mw",
    "format_mwh",
    "format_offset",
    "format_target",
    "is_default_target",
    "to_mw",
    "zone_label",
]

#: A missing figure in a table cell.
MISSING = "—"


def format_duration(seconds: float | None, missing: str = MISSING) -> str:
    """A duration for people, as precise as its size calls for: 2.5 s, 45 s,
    12 min 05 s, 30 min, 1 h 30 min, 2 d 03 h. ``missing`` stands for None."""
    if seconds is None:
        return missing
    whole = round(seconds)
    if abs(whole) < 90:
        if 0 < seconds < 10 and whole != seconds:
            return f"{seconds:.1f} s"  # a reordering by half a second is not "0 s"
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def to_mw(watts: float | None) -> float | None:
    """Watts as megawatts (None stays None)."""
    return None if watts is None else watts / 1e6


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def format_mw(watts: float | None, *, unit: bool = True, missing: str = MISSING) -> str:
    """A power in MW to the kilowatt (6.5 MW, 1,200 MW, 0.012 MW); ``missing`` for None."""
    if watts is None:
        return missing
    text = _number(watts / 1e6, 3)
    return f"{text} MW" if unit else text


def format_mwh(watt_hours: float | None, *, unit: bool = True, missing: str = MISSING) -> str:
    """An energy in MWh to two decimals (3.5 MWh, 15.25 MWh); ``missing`` for None."""
    if watt_hours is None:
        return missing
    text = f"{watt_hours / 1e6:,.2f}"
    text = "0.00" if text == "-0.00" else text
    return f"{text} MWh" if unit else text


def is_default_target(watts: float | None) -> bool:
    """Whether a target is the feed's default constraint: none, or zero (DPS: "--value=0
    with any unit also sets the default constraint"), never a target of 0 W."""
    return watts is None or watts == 0


def format_target(watts: float | None, *, unit: bool = True) -> str:
    """A requested target: "default" for the feed's default constraint (null or zero)."""
    return "default" if is_default_target(watts) else format_mw(watts, unit=unit)


def format_load(watts: float | None, *, unit: bool = True) -> str:
    """A load DPS calculated: "unknown" when it was not reported (it is no target)."""
    return format_mw(watts, unit=unit, missing="unknown")


def _is_utc(zone: tzinfo) -> bool:
    return zone is UTC or str(zone) in ("UTC", "Etc/UTC")


def format_offset(moment: datetime, zone: tzinfo) -> str:
    """The UTC offset ``zone`` has at ``moment``: ``UTC-07:00``, ``UTC+05:30``; ``UTC`` for
    the UTC zone itself."""
    offset = moment.astimezone(zone).utcoffset() or timedelta(0)
    if _is_utc(zone) and not offset:
        return "UTC"
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def format_local(
    moment: datetime | None, zone: tzinfo = UTC, *, seconds: bool = True, missing: str = MISSING
) -> str:
    """A time as a site's people read it: local, with the offset it had then
    (``2026-01-10 13:50:00 UTC-07:00``; in UTC, ``2026-01-10 20:50:00 UTC``)."""
    if moment is None:
        return missing
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {format_offset(moment, zone)}"


def zone_label(zone: tzinfo, start: datetime, end: datetime) -> str:
    """What a chart's axis or a page says of its times over [start, end]: ``UTC``, or the
    zone and its offset (``America/Phoenix, UTC-07:00``), or both offsets when a clock change
    falls inside (``Europe/Amsterdam, UTC+01:00/+02:00``)."""
    if _is_utc(zone):
        return "UTC"
    offsets: list[str] = []
    moment, step = start, timedelta(hours=12)
    while True:  # twice a day: a range of up to 400 days is 800 looks, no clock change missed
        offset = format_offset(moment, zone)
        if offset not in offsets:
            offsets.append(offset)
        if moment >= end:
            break
        moment = min(moment + step, end)
    shown = offsets[0] + "".join("/" + o.removeprefix("UTC") for o in offsets[1:])
    return f"{zone}, {shown}"
