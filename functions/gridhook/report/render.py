"""Reports as HTML (Jinja2 templates in ``templates/``, charts inline), JSON and CSV.

The HTML is one self-contained file: styles inline, charts as inline SVG, no scripts, no
fonts, no images, nothing fetched; a Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gridhook.display import (
    format_duration,
    format_load,
    format_mw,
    format_mwh,
    format_target,
)
from gridhook.episodes import EPISODE_STATUSES, Episode
from gridhook.events import rfc3339
from gridhook.report.model import FIGURE_SOURCES, Report

if TYPE_CHECKING:
    import jinja2

    from gridhook.report.control_room import ControlRoom

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSV_COLUMNS",
    "episode_row",
    "render_control_room",
    "render_csv",
    "render_episodes_json",
    "render_html",
    "render_json",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Nothing may be loaded from anywhere: styles are inline, images are inline SVG. (In the
#: page itself; frame-ancestors only works as an HTTP header, which the server adds.)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)

#: One CSV row per episode; loads in MW, energy in MWh, durations in seconds, times UTC.
#: The ``_in_range`` columns are the episode's share of the report's range.
CSV_COLUMNS = (
    "feed_tag",
    "correlation_id",
    "status",
    "kind",
    "started_at",
    "ramp_down_started_at",
    "ramp_down_ended_at",
    "ramp_down_seconds",
    "constrained_seconds",
    "ramp_up_started_at",
    "ramp_up_ended_at",
    "ramp_up_seconds",
    "target_mw_requested",
    "prev_target_mw_requested",
    "reduction_mw_requested",
    "energy_mwh_requested",
    "constrained_seconds_in_range",
    "energy_mwh_requested_in_range",
    "compliant_dps",
    "load_at_start_ramp_down_mw_dps",
    "load_at_end_ramp_down_mw_dps",
    "load_at_start_ramp_up_mw_dps",
    "load_at_end_ramp_up_mw_dps",
    "interval_start",
    "interval_end",
    "missing",
    "flags",
    "superseded_by",
    "episode_id",
)

_environment: jinja2.Environment | None = None
_environment_lock = threading.Lock()


# -- formatting (template filters) ----------------------------------------------------


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _seconds_between(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else (end - start).total_seconds()


def format_when(moment: datetime | None, seconds: bool = True) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _status_label(status: str) -> str:
    return status.replace("_", " ")


def _jinja() -> jinja2.Environment:
    global _environment
    if _environment is None:
        with _environment_lock:
            if _environment is None:
                import jinja2

                env = jinja2.Environment(
                    loader=jinja2.FileSystemLoader(TEMPLATES),
                    autoescape=jinja2.select_autoescape(["html"]),
                    undefined=jinja2.StrictUndefined,
                    trim_blocks=True,
                    lstrip_blocks=True,
                )
                env.filters.update(
                    mw=format_mw,
                    mwh=format_mwh,
                    load=format_load,
                    target=format_target,
                    duration=format_duration,
                    when=format_when,
                    rate=format_rate,
                    status_label=_status_label,
                    number=_number,
                )
                env.globals["seconds_between"] = _seconds_between
                env.globals.update(
                    sources=FIGURE_SOURCES,
                    statuses=EPISODE_STATUSES,
                    content_security_policy=CONTENT_SECURITY_POLICY,
                )
                _environment = env
    return _environment


# -- HTML -----------------------------------------------------------------------------


def _feed_charts(report: Report, prefix: str, compliance: bool = True) -> list[dict[str, str]]:
    """Each feed's charts as SVG text; the templates insert them unescaped (``| safe``):
    matplotlib writes the SVG and escapes any text in it."""
    from gridhook.report.charts import compliance_svg, timeline_svg

    charts = []
    for index, feed in enumerate(report.feeds, start=1):
        chart = {"timeline": timeline_svg(feed.timeline, f"{prefix}-{index}-timeline")}
        if compliance:
            chart["compliance"] = compliance_svg(
                feed.compliance_by_day, f"{prefix}-{index}-compliance"
            )
        charts.append(chart)
    return charts


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    template = _jinja().get_template("report.html")
    return template.render(report=report, charts=_feed_charts(report, "feed"))


def render_control_room(room: ControlRoom) -> str:
    """The control-room page: feeds now, open episodes, the last 24 h, recent episodes."""
    template = _jinja().get_template("control_room.html")
    return template.render(room=room, charts=_feed_charts(room.day, "now", compliance=False))


# -- JSON and CSV ---------------------------------------------------------------------


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_episodes_json(
    episodes: list[Episode], *, since: datetime, until: datetime, generated_at: datetime
) -> str:
    body = {
        "since": rfc3339(since),
        "until": rfc3339(until),
        "generated_at": rfc3339(generated_at),
        "count": len(episodes),
        "episodes": [e.to_dict(since, until) for e in episodes],
    }
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _mw_cell(watts: float | None) -> str:
    return "" if watts is None else _number(watts / 1e6, 6).replace(",", "")


def _cell(value: float | None) -> str:
    return "" if value is None else repr(round(value, 3))


def episode_row(episode: Episode, since: datetime, until: datetime) -> dict[str, str]:
    """An episode as one CSV row (see CSV_COLUMNS), with its share of [since, until)."""
    loads = episode.load_w
    energy = episode.requested_energy_wh
    share = episode.share(since, until)
    energy_in_range = share.requested_energy_wh
    return {
        "feed_tag": episode.feed_tag or "",
        "correlation_id": episode.correlation_id or "",
        "status": episode.status,
        "kind": episode.kind,
        "started_at": rfc3339(episode.started_at) or "",
        "ramp_down_started_at": rfc3339(episode.ramp_down_started_at) or "",
        "ramp_down_ended_at": rfc3339(episode.ramp_down_ended_at) or "",
        "ramp_down_seconds": _cell(episode.ramp_down_seconds),
        "constrained_seconds": _cell(episode.constrained_seconds),
        "ramp_up_started_at": rfc3339(episode.ramp_up_started_at) or "",
        "ramp_up_ended_at": rfc3339(episode.ramp_up_ended_at) or "",
        "ramp_up_seconds": _cell(episode.ramp_up_seconds),
        "target_mw_requested": _mw_cell(episode.target_w),
        "prev_target_mw_requested": _mw_cell(episode.prev_target_w),
        "reduction_mw_requested": _mw_cell(episode.requested_reduction_w),
        "energy_mwh_requested": "" if energy is None else repr(round(energy / 1e6, 6)),
        "constrained_seconds_in_range": _cell(share.constrained_seconds),
        "energy_mwh_requested_in_range": (
            "" if energy_in_range is None else repr(round(energy_in_range / 1e6, 6))
        ),
        "compliant_dps": "" if episode.compliant is None else str(episode.compliant).lower(),
        "load_at_start_ramp_down_mw_dps": _mw_cell(loads.get("start_ramp_down")),
        "load_at_end_ramp_down_mw_dps": _mw_cell(loads.get("end_ramp_down")),
        "load_at_start_ramp_up_mw_dps": _mw_cell(loads.get("start_ramp_up")),
        "load_at_end_ramp_up_mw_dps": _mw_cell(loads.get("end_ramp_up")),
        "interval_start": rfc3339(episode.interval_start) or "",
        "interval_end": rfc3339(episode.interval_end) or "",
        "missing": ";".join(episode.missing),
        "flags": "; ".join(episode.flags),
        "superseded_by": episode.superseded_by or "",
        "episode_id": episode.episode_id,
    }


def render_csv(report: Report) -> str:
    """The report's episodes, one row each, oldest first per feed."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(episode_row(e, report.since, report.until) for e in report.episodes)
    return out.getvalue()
