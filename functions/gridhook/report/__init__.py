"""Curtailment reports and the control room, computed from stored episodes and samples.

- ``model``: the report's figures (per-feed summary, timeline, compliance by day).
- ``build``: ``build_report`` (store → Report) and the pure ``assemble_report``.
- ``control_room``: what the control-room page shows now.
- ``params``: the time ranges and filters the CLI and HTTP accept, checked once.
- ``charts``: matplotlib (imported lazily) renders the charts as inline SVG.
- ``render``: HTML from Jinja2 templates, JSON and CSV.

Only ``charts`` and ``render`` import plotting or templating, so receiving a webhook never
pays for them (tests/unit/test_import_set.py).
"""

from __future__ import annotations

from gridhook.report.build import assemble_report, build_report
from gridhook.report.model import (
    DayCompliance,
    DurationStats,
    FeedReport,
    FeedSummary,
    LoadPoint,
    PhaseSpan,
    Report,
    Timeline,
)

__all__ = [
    "DayCompliance",
    "DurationStats",
    "FeedReport",
    "FeedSummary",
    "LoadPoint",
    "PhaseSpan",
    "Report",
    "Timeline",
    "assemble_report",
    "build_report",
]
