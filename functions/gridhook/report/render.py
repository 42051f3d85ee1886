"""Reports as HTML (Jinja2 templates in ``templates/``, charts inline), JSON and CSV.

The HTML is one self-contained file: styles inline, charts as inline SVG, no scripts, no
fonts, no images, nothing fetched; a Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from gridhook import csv_format
from gridhook.display import (
    format_duration,
    format_load,
    format_local,
    format_mw,
    format_mwh,
    format_offset,
    format_target,
    zone_label,
)
from gridhook.episodes import EPISODE_STATUSES, Episode
from gridhook.events import rfc3339
from gridhook.report.model import FIGURE_SOURCES, FleetReport, Report

if TYPE_CHECKING:
    import jinja2

    from gridhook.report.control_room import ControlRoom
    from gridhook.report.delivery import FeedDelivery
    from gridhook.report.fleet_room import FleetRoom

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSV_COLUMNS",
    "episode_row",
    "render_control_room",
    "render_csv",
    "render_episodes_json",
    "render_fleet_room",
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

#: One CSV row per episode, written by gridhook's CSV convention (``gridhook.csv_format``):
#: loads in MW, energy in MWh, durations in seconds, times RFC 3339 UTC, CRLF line ends.
#: The ``_in_range`` columns are the episode's share of the report's range; ``site`` is the
#: site the episode's feed belongs to (in every CSV, however many sites the deployment has).
#: ``delivered_mwh`` … ``needed_mwh_in_range``: the episode settled against the baseline
#: method ``baseline_method`` on ``settlement_source`` (meter | samples); a status without
#: figures (``insufficient_history``) leaves them empty, never 0, and says why in
#: ``settlement_reason``; all empty when the report was not settled.
CSV_COLUMNS = (
    "site",
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
    "baseline_method",
    "settlement_source",
    "settlement_status",
    "settlement_reason",
    "delivered_mwh",
    "needed_mwh",
    "performance_factor",
    "performance_factor_uncapped",
    "delivered_mwh_in_range",
    "needed_mwh_in_range",
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

#: The columns of an episode's delivered figures (empty when the report was not settled).
_DELIVERY_COLUMNS = CSV_COLUMNS[
    CSV_COLUMNS.index("baseline_method") : CSV_COLUMNS.index("needed_mwh_in_range") + 1
]

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


def _local(moment: datetime | None, zone: tzinfo, seconds: bool = True) -> str:
    return format_local(moment, zone, seconds=seconds)


def _zone_label(zone: tzinfo, start: datetime, end: datetime | None = None) -> str:
    return zone_label(zone, start, end or start)


def _age(seconds: float) -> str:
    """How long ago, or for how long, to the minute past two minutes (a page that refreshes
    every 30 s has no use for the seconds of "9 h 50 min")."""
    seconds = max(0.0, seconds)
    return format_duration(seconds if seconds < 120 else round(seconds / 60) * 60)


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
                    age=_age,
                    when=format_when,
                    local=_local,
                    offset=format_offset,
                    zone_label=_zone_label,
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


def _feed_charts(
    reports: tuple[Report, ...], prefix: str, compliance: bool = True
) -> list[dict[str, str]]:
    """Each feed's charts as SVG text, site by site, in the site's local time; the templates
    insert them unescaped (``| safe``): matplotlib writes the SVG and escapes any text in it."""
    from gridhook.report.charts import compliance_svg, delivery_svg, timeline_svg

    charts = []
    index = 0
    for report in reports:
        for feed in report.feeds:
            index += 1
            chart_id = f"{prefix}-{index}"
            delivery = feed.delivery
            baseline = (
                ()
                if delivery is None
                else delivery.baseline_steps(feed.timeline.start, feed.timeline.end)
            )
            chart = {
                "timeline": timeline_svg(
                    feed.timeline,
                    f"{chart_id}-timeline",
                    report.zone,
                    baseline=baseline,
                    baseline_method=None if delivery is None else delivery.method,
                )
            }
            if compliance:
                chart["compliance"] = compliance_svg(
                    feed.compliance_by_day, f"{chart_id}-compliance", report.zone
                )
                if delivery is not None:
                    chart["delivery"] = delivery_svg(
                        delivery.bars(feed.episodes),
                        f"{chart_id}-delivery",
                        report.zone,
                        method=delivery.method,
                    )
            charts.append(chart)
    return charts


def _fleet(report: Report | FleetReport) -> FleetReport:
    return report if isinstance(report, FleetReport) else FleetReport.of(report)


def render_html(report: Report | FleetReport) -> str:
    """The report as one self-contained HTML page: by site (each in its local time), then
    by feed."""
    fleet = _fleet(report)
    template = _jinja().get_template("report.html")
    return template.render(report=fleet, charts=_feed_charts(fleet.sites, "feed"))


def render_control_room(room: ControlRoom, *, root: str = "") -> str:
    """One site's control-room page: feeds now, open episodes, the last 24 h, recent
    episodes, in the site's local time. ``root``: the way from the page's path back to the
    function's (``../`` from ``sites/<site>``), where its links to reports go."""
    template = _jinja().get_template("control_room.html")
    charts = _feed_charts((room.day,), "now", compliance=False)
    return template.render(room=room, zone=room.zone, charts=charts, root=root)


def render_fleet_room(room: FleetRoom) -> str:
    """The fleet's control-room page: every site's feeds now and the fleet's totals."""
    template = _jinja().get_template("fleet.html")
    return template.render(room=room)


# -- JSON and CSV ---------------------------------------------------------------------


def render_json(report: Report | FleetReport) -> str:
    body = _fleet(report).to_dict()
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


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


def _delivery_cells(episode: Episode, delivery: FeedDelivery | None) -> dict[str, str]:
    cells = dict.fromkeys(_DELIVERY_COLUMNS, "")
    if delivery is None:
        return cells
    cells["baseline_method"] = delivery.method
    settlement = delivery.of(episode.episode_id)
    if settlement is None:
        cells["settlement_reason"] = delivery.reason_not_settled(episode.episode_id) or ""
        return cells
    share = delivery.in_range(episode.episode_id)
    has_figures = settlement.delivered_wh is not None
    cells.update(
        settlement_source=settlement.source,
        settlement_status=settlement.status,
        settlement_reason=settlement.reason,
        delivered_mwh=csv_format.mwh(settlement.delivered_wh),
        needed_mwh=csv_format.mwh(settlement.needed_wh),
        performance_factor=csv_format.ratio(settlement.performance_factor),
        performance_factor_uncapped=csv_format.ratio(settlement.performance_factor_uncapped),
        delivered_mwh_in_range=""
        if share is None or not has_figures
        else csv_format.mwh(share.delivered_wh),
        needed_mwh_in_range=""
        if share is None or settlement.needed_wh is None
        else csv_format.mwh(share.needed_wh),
    )
    return cells


def episode_row(
    episode: Episode, since: datetime, until: datetime, delivery: FeedDelivery | None = None
) -> dict[str, str]:
    """An episode as one CSV row (see CSV_COLUMNS), with its share of [since, until) and,
    with its feed's ``delivery``, its delivered figures."""
    loads = episode.load_w
    share = episode.share(since, until)
    return {
        "site": episode.site,
        "feed_tag": episode.feed_tag or "",
        "correlation_id": episode.correlation_id or "",
        "status": episode.status,
        "kind": episode.kind,
        "started_at": csv_format.when(episode.started_at),
        "ramp_down_started_at": csv_format.when(episode.ramp_down_started_at),
        "ramp_down_ended_at": csv_format.when(episode.ramp_down_ended_at),
        "ramp_down_seconds": csv_format.seconds(episode.ramp_down_seconds),
        "constrained_seconds": csv_format.seconds(episode.constrained_seconds),
        "ramp_up_started_at": csv_format.when(episode.ramp_up_started_at),
        "ramp_up_ended_at": csv_format.when(episode.ramp_up_ended_at),
        "ramp_up_seconds": csv_format.seconds(episode.ramp_up_seconds),
        "target_mw_requested": csv_format.mw(episode.target_w),
        "prev_target_mw_requested": csv_format.mw(episode.prev_target_w),
        "reduction_mw_requested": csv_format.mw(episode.requested_reduction_w),
        "energy_mwh_requested": csv_format.mwh(episode.requested_energy_wh),
        "constrained_seconds_in_range": csv_format.seconds(share.constrained_seconds),
        "energy_mwh_requested_in_range": csv_format.mwh(share.requested_energy_wh),
        **_delivery_cells(episode, delivery),
        "compliant_dps": csv_format.boolean(episode.compliant),
        "load_at_start_ramp_down_mw_dps": csv_format.mw(loads.get("start_ramp_down")),
        "load_at_end_ramp_down_mw_dps": csv_format.mw(loads.get("end_ramp_down")),
        "load_at_start_ramp_up_mw_dps": csv_format.mw(loads.get("start_ramp_up")),
        "load_at_end_ramp_up_mw_dps": csv_format.mw(loads.get("end_ramp_up")),
        "interval_start": csv_format.when(episode.interval_start),
        "interval_end": csv_format.when(episode.interval_end),
        "missing": csv_format.items(episode.missing),
        "flags": csv_format.items(episode.flags),
        "superseded_by": episode.superseded_by or "",
        "episode_id": episode.episode_id,
    }


def render_csv(report: Report | FleetReport) -> str:
    """The report's episodes, one row each: by site, then feed, oldest first."""
    fleet = _fleet(report)
    return csv_format.text(
        CSV_COLUMNS,
        (
            episode_row(e, fleet.since, fleet.until, feed.delivery)
            for feed in fleet.feeds
            for e in feed.episodes
        ),
    )
