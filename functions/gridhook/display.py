"""Figures for people: durations and powers as gridhook prints them everywhere."""

from __future__ import annotations

__all__ = ["format_duration", "format_mw"]


def format_duration(seconds: float) -> str:
    """A duration for people: 42s, 4m12s, 2h05m, 3d04h."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if 0 < seconds < 10 and whole != seconds else f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    minutes = whole // 60
    if minutes < 24 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes // 1440}d{minutes % 1440 // 60:02d}h"


def format_mw(watts: float | None) -> str:
    return "the default" if watts is None else f"{watts / 1e6:g} MW"
