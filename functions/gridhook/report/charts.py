"""The report's charts, drawn by matplotlib and returned as inline SVG text.

matplotlib is imported on first use (the Agg canvas, no pyplot: no GUI, no global figure
registry), so only processes that draw a chart pay for it. Drawing holds a lock because
matplotlib's rcParams are process-wide and the HTTP function serves several threads.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from gridhook.display import to_mw, zone_label
from gridhook.report.model import DayCompliance, LoadPoint, Timeline

if TYPE_CHECKING:
    from gridhook.report.delivery import EpisodeBar

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType
__all__ = ["compliance_svg", "delivery_svg", "timeline_svg"]

_lock = threading.Lock()

# Colour-blind-safe pairs; phases are pale so the load lines stay readable over them.
_TARGET = "#d55e00"
_LOAD = "#0b4f9c"
_MET = "#1b7837"
_NOT_MET = "#c51b7d"
_PHASE_STYLE = {
    "ramping_down": ("Ramping down", "#f4b6a6"),
    "constrained": ("Constrained", "#fbe3a1"),
    "ramping_up": ("Ramping up", "#b7dfb0"),
}
_STALLED = "#b2182b"
_GREY = "#6b6b6b"
# The baseline: dark and dashed, so it reads apart from the solid load and target lines.
_BASELINE = "#3b3b3b"
_BASELINE_DASHES = (0, (5, 3))
# Delivered against needed: the needed bar pale, the delivered one strong beside it.
_NEEDED = "#f0b37e"
_DELIVERED = "#1b7837"
_MINUS = "\u2212"  # a real minus sign in the legends
# Past this many episodes, the no-figure words do not fit under their bars: a mark does.
_WORDS_MAX = 24

#: One step of a baseline: [start, end) and its watts (None: no baseline there).
BaselineStep = tuple[datetime, datetime, float | None]
# Past this many samples on one chart, every n-th is drawn.
_SAMPLES_DRAWN_MAX = 3000
# About how wide the plotting area is, to judge whether sample markers would overlap.
_PLOT_WIDTH_PX = 880
# A phase narrower than this share of the window (about 1.5 px) is widened to it, or it
# would vanish; the episode table has the exact times.
_MIN_SPAN_SHARE = 1.5 / _PLOT_WIDTH_PX

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # real <text>: selectable, small, no duplicate glyph ids
    "svg.image_inline": True,
    # Metrics from DejaVu Sans (shipped with matplotlib); browsers without it use their sans-serif.
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.edgecolor": "#9a9a9a",
    "axes.linewidth": 0.8,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.fontsize": 8,
}


def _y(watts: float | None) -> float:
    """A y value in MW; NaN (a gap in the line) where there is none."""
    mw = to_mw(watts)
    return math.nan if mw is None else mw


@contextlib.contextmanager
def _drawing(chart_id: str) -> Iterator[None]:
    """One chart at a time, with our style; a salt per chart keeps the ids of clip paths
    and markers unique when several SVGs share one page."""
    import matplotlib

    with _lock, matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id, "svg.id": chart_id}):
        yield


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # lays the figure out headless; savefig writes the SVG
    return figure


_GROUP_ID = re.compile(r'<g id="([^"]+)"')


def _svg(figure: Any, chart_id: str) -> str:
    # Lay out once, then draw once: left to savefig, a layout engine costs a whole extra
    # drawing pass (about a third of a chart's time) to find what the layout alone needs.
    figure.get_layout_engine().execute(figure)
    figure.set_layout_engine(None)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, facecolor="white")
    text = buffer.getvalue()
    # Inline SVG needs neither the XML declaration nor the DOCTYPE; matplotlib numbers its
    # groups (figure_1, axes_1, ...) per file, so on a page of several charts they are
    # prefixed with the chart's id to stay unique. Nothing refers to them.
    text = text[text.index("<svg") :]
    return _GROUP_ID.sub(lambda m: f'<g id="{chart_id}-{m[1]}"', text)


def _time_axis(axes: Any, start: datetime, end: datetime, zone: tzinfo) -> None:
    """Ticks and labels in the site's local time; the label names the zone and offset."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=zone, minticks=4, maxticks=10)
    # Month-day labels at day boundaries, hours between; the offset names the year (or
    # the date, when the window is within one day).
    within_a_day = end - start <= timedelta(days=1)
    formatter = mdates.ConciseDateFormatter(
        locator,
        tz=zone,
        formats=["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"],
        zero_formats=["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"],
        offset_formats=[
            "",
            "%Y",
            "%Y",
            "%Y-%m-%d" if within_a_day else "%Y",
            "%Y-%m-%d",
            "%Y-%m-%d",
        ],
    )
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlim(start, end)
    axes.set_xlabel(f"Time ({zone_label(zone, start, end)})")


def _message(axes: Any, text: str) -> None:
    axes.text(
        0.5,
        0.5,
        text,
        transform=axes.transAxes,
        ha="center",
        va="center",
        color=_GREY,
        fontsize=10,
    )


def _thin(samples: list[LoadPoint]) -> list[LoadPoint]:
    if len(samples) <= _SAMPLES_DRAWN_MAX:
        return samples
    stride = math.ceil(len(samples) / _SAMPLES_DRAWN_MAX)
    return samples[::stride]


def _median_gap_px(points: list[LoadPoint], window_seconds: float) -> float:
    """How far apart, in pixels, neighbouring points typically sit on the chart."""
    if len(points) < 2 or window_seconds <= 0:
        return math.inf
    gaps = sorted((b.at - a.at).total_seconds() for a, b in itertools.pairwise(points))
    return gaps[len(gaps) // 2] / window_seconds * _PLOT_WIDTH_PX


def _sample_marker_size(samples: list[LoadPoint], window_seconds: float) -> float | None:
    """Marker size for samples this far apart on the chart; None: too dense to mark."""
    pixels = _median_gap_px(samples, window_seconds)
    if pixels >= 9:
        return 3.4
    if pixels >= 4.5:
        return 2.4
    return None


def _full_height_bars(axes: Any, spans: list[tuple[datetime, datetime]], **style: Any) -> None:
    """Bars from the bottom of the chart to its top, one artist (one SVG path) for all.

    A month holds over a thousand phases: one artist each (``axvspan``) cost more than
    the rest of the report, and the picture is the same.
    """
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    edges = mdates.date2num([at for span in spans for at in span]).reshape(-1, 2)
    left, right = edges[:, :1], edges[:, 1:]
    bottom, top = np.zeros_like(left), np.ones_like(left)
    corners = np.stack(
        [np.hstack(xy) for xy in ((left, bottom), (left, top), (right, top), (right, bottom))],
        axis=1,
    )
    # x in data (dates), y in axes coordinates: 0 is the bottom of the chart, 1 its top.
    path = Path.make_compound_path_from_polys(corners)
    axes.add_artist(PathPatch(path, transform=axes.get_xaxis_transform(), **style))


def _shade_phases(axes: Any, timeline: Timeline) -> list[Any]:
    from matplotlib.patches import Patch

    window = (timeline.end - timeline.start).total_seconds()
    min_width = timedelta(seconds=window * _MIN_SPAN_SHARE)
    spans: dict[str, list[tuple[datetime, datetime]]] = {phase: [] for phase in _PHASE_STYLE}
    stalled: list[tuple[datetime, datetime]] = []
    for span in timeline.phases:
        widened = (span.start, max(span.end, span.start + min_width))
        spans[span.phase].append(widened)
        if span.stalled:
            stalled.append(widened)
    handles = []
    for phase, (label, colour) in _PHASE_STYLE.items():
        if spans[phase]:
            _full_height_bars(
                axes, spans[phase], facecolor=colour, alpha=0.8, linewidth=0, zorder=0
            )
            handles.append(Patch(facecolor=colour, alpha=0.8, label=label))
    if stalled:
        _full_height_bars(
            axes,
            stalled,
            facecolor="none",
            edgecolor=_STALLED,
            hatch="////",
            linewidth=0,
            zorder=0.5,
        )
        handles.append(
            Patch(facecolor="white", edgecolor=_STALLED, hatch="////", label="Stalled ramp")
        )
    return handles


def _baseline_line(steps: Sequence[BaselineStep]) -> tuple[list[datetime], list[float]]:
    """The baseline as a stepped line: flat over each interval, broken (NaN) between
    intervals that do not touch and where an interval has none."""
    xs: list[datetime] = []
    ys: list[float] = []
    previous_end: datetime | None = None
    for start, end, watts in steps:
        if previous_end is not None and start != previous_end:
            xs.append(previous_end)
            ys.append(math.nan)
        xs += [start, end]
        ys += [_y(watts), _y(watts)]
        previous_end = end
    return xs, ys


def timeline_svg(
    timeline: Timeline,
    chart_id: str,
    zone: tzinfo = UTC,
    baseline: Sequence[BaselineStep] = (),
    baseline_method: str | None = None,
) -> str:
    """Target and calculated load (MW) over the timeline's window, phases shaded; times in
    ``zone`` (the site's). ``baseline``: the customer baseline over the episodes' event
    intervals, drawn dashed and labelled with its ``baseline_method``."""
    from matplotlib.lines import Line2D

    with _drawing(chart_id):
        figure = _figure(10, 3.7)
        axes = figure.add_subplot()
        _time_axis(axes, timeline.start, timeline.end, zone)
        axes.set_ylabel("Load (MW)")
        axes.grid(axis="y", color="#e3e3e3", linewidth=0.6)
        axes.set_axisbelow(True)
        window = (timeline.end - timeline.start).total_seconds()
        handles: list[Any] = []
        phase_handles = _shade_phases(axes, timeline)

        readings = [p for p in timeline.points if p.calculated_w is not None]
        samples = _thin([p for p in readings if p.source == "sample"])
        # 5-minute means of the hours rolled up: in the line, never marked as samples.
        means = _thin([p for p in readings if p.source == "rollup"])
        events = [p for p in readings if p.source == "event"]
        line = sorted([*means, *samples, *events], key=lambda p: p.at)
        if line:
            axes.plot(
                [p.at for p in line],
                [_y(p.calculated_w) for p in line],
                color=_LOAD,
                linewidth=1.5,
                zorder=4,
            )
            handles.append(
                Line2D([], [], color=_LOAD, linewidth=1.5, label="Calculated load (DPS)")
            )
        if samples:
            size = _sample_marker_size(samples, window)
            if size is not None:
                axes.plot(
                    [p.at for p in samples],
                    [_y(p.calculated_w) for p in samples],
                    linestyle="none",
                    marker="o",
                    markersize=size,
                    markerfacecolor="white",
                    markeredgecolor=_LOAD,
                    markeredgewidth=0.9,
                    zorder=5,
                )
            handles.append(
                Line2D(
                    [],
                    [],
                    color=_LOAD,
                    linestyle="none" if size is not None else "-",
                    marker="o" if size is not None else None,
                    markersize=4,
                    markerfacecolor="white",
                    label="DPS sample (GetStatus)" if size else "DPS samples (too dense to mark)",
                )
            )
        missed = [p for p in events if p.event == "end_ramp_down" and p.compliant is False]
        kept = [p for p in events if not (p.event == "end_ramp_down" and p.compliant is False)]
        # Smaller diamonds where webhooks crowd (a month on one chart).
        crowded = _median_gap_px(events, window) < 8
        event_style: dict[str, Any] = {
            "linestyle": "none",
            "marker": "D",
            "markersize": 3.6 if crowded else 6,
            "markerfacecolor": _LOAD,
            "markeredgecolor": "white",
            "markeredgewidth": 0.5 if crowded else 0.9,
        }
        if kept:
            axes.plot(
                [p.at for p in kept], [_y(p.calculated_w) for p in kept], zorder=7, **event_style
            )
            handles.append(Line2D([], [], label="Webhook event", **event_style))
        if missed:
            missed_style: dict[str, Any] = {
                **event_style,
                "marker": "X",
                "markersize": 6 if crowded else 9,
                "markerfacecolor": _NOT_MET,
            }
            axes.plot(
                [p.at for p in missed],
                [_y(p.calculated_w) for p in missed],
                zorder=8,
                **missed_style,
            )
            handles.append(
                Line2D([], [], label="Target not met (end of ramp down)", **missed_style)
            )

        steps = timeline.target_steps
        if steps:
            # Wide and under the load line: where the load sits on its target, the target
            # shows as an orange border around the blue line.
            axes.step(
                [at for at, _ in steps],
                [_y(w) for _, w in steps],
                where="post",
                color=_TARGET,
                linewidth=3.4,
                alpha=0.85,
                solid_capstyle="butt",
                zorder=3,
            )
            handles.insert(
                0, Line2D([], [], color=_TARGET, linewidth=3.4, label="Target (requested)")
            )

        base_x, base_y = _baseline_line(baseline)
        if any(not math.isnan(y) for y in base_y):
            label = f"baseline ({baseline_method})" if baseline_method else "baseline"
            from matplotlib import patheffects

            style: dict[str, Any] = {
                "color": _BASELINE,
                "linewidth": 1.8,
                "linestyle": _BASELINE_DASHES,
            }
            # A white edge keeps the dashes readable where they cross the load line.
            halo = [patheffects.withStroke(linewidth=3.6, foreground="white")]
            axes.plot(base_x, base_y, zorder=6, gid="baseline", path_effects=halo, **style)
            handles.append(Line2D([], [], label=label, **style))
        values = [_y(w) for _, w in steps] + [_y(p.calculated_w) for p in line] + base_y
        finite = [v for v in values if not math.isnan(v)]
        if finite:
            axes.set_ylim(0, max(finite) * 1.12 or 1)
        else:
            axes.set_ylim(0, 1)
            axes.set_yticks([])
        if timeline.empty:
            _message(axes, "No webhooks or DPS samples for this feed in this window")
        elif not finite:
            _message(axes, "Phases only: no load figures were reported")
        handles += phase_handles
        if handles:
            figure.legend(
                handles=handles,
                loc="outside lower center",
                ncol=min(len(handles), 4),
                frameon=False,
            )
        return _svg(figure, chart_id)


def compliance_svg(days: Sequence[DayCompliance], chart_id: str, zone: tzinfo = UTC) -> str:
    """Ramp downs per day (local days in ``zone``), split by DPS's verdict (target met or
    not)."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import FixedLocator, MaxNLocator

    with _drawing(chart_id):
        figure = _figure(10, 2.5)
        axes = figure.add_subplot()
        axes.set_ylabel("Ramp downs")
        axes.grid(axis="y", color="#e3e3e3", linewidth=0.6)
        axes.set_axisbelow(True)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        # Each bar stands for a date (the site's local day): placed on a plain calendar,
        # labelled by that date, whatever the day's length.
        midnight = datetime.min.time()
        centres = [datetime.combine(d.day, midnight, UTC) + timedelta(hours=12) for d in days]
        top = max((d.judged for d in days), default=0)
        if days:
            axes.set_xlim(centres[0] - timedelta(hours=12), centres[-1] + timedelta(hours=12))
            # One label per bar, or per few bars when there are many.
            every = math.ceil(len(days) / 16)
            axes.xaxis.set_major_locator(FixedLocator(mdates.date2num(centres[::every])))
            axes.xaxis.set_major_formatter(mdates.DateFormatter("%b %d", tz=UTC))
            years = "/".join(str(y) for y in sorted({d.day.year for d in days}))
            where = "UTC" if zone_label(zone, centres[0], centres[0]) == "UTC" else str(zone)
            axes.set_xlabel(f"Day ({where}, {years})")
            met = [d.compliant for d in days]
            # Bars as wide as a week's would be, so one day is not one giant bar.
            width = 0.7 * min(1.0, len(days) / 7)
            axes.bar(centres, met, width=width, color=_MET, label="Target met")
            axes.bar(
                centres,
                [d.not_compliant for d in days],
                width=width,
                bottom=met,
                color=_NOT_MET,
                label="Target not met",
            )
            if len(days) <= 20:
                for centre, day in zip(centres, days, strict=True):
                    if day.rate is not None:
                        axes.annotate(
                            f"{day.rate:.0%}",
                            (mdates.date2num(centre), day.judged),
                            xytext=(0, 2),
                            textcoords="offset points",
                            ha="center",
                            va="bottom",
                            fontsize=7.5,
                            color="#333333",
                        )
        axes.set_ylim(0, max(top, 1) * 1.25)
        if top == 0:
            _message(axes, "No ramp down ended in this range, so DPS judged no target")
        else:
            figure.legend(loc="outside lower center", ncol=2, frameon=False)
        return _svg(figure, chart_id)


def delivery_svg(
    bars: Sequence[EpisodeBar], chart_id: str, zone: tzinfo = UTC, method: str | None = None
) -> str:
    """Delivered against needed (MWh) per episode, paired bars, the episodes in time order
    (labelled by their local start in ``zone``). An episode without figures shows its
    status as a word (or, past a couple of dozen episodes, a grey mark), never a bar of 0."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator

    with _drawing(chart_id):
        figure = _figure(10, 2.9)
        axes = figure.add_subplot()
        axes.set_ylabel("MWh")
        axes.grid(axis="y", color="#e3e3e3", linewidth=0.6)
        axes.set_axisbelow(True)
        count = len(bars)
        handles: list[Any] = []
        if not count:
            axes.set_xticks([])
            axes.set_yticks([])
            _message(axes, "No curtailment to settle in this range")
            return _svg(figure, chart_id)
        positions = list(range(count))
        width = 0.38
        needed = [math.nan if b.needed_mwh is None else b.needed_mwh for b in bars]
        delivered = [math.nan if b.delivered_mwh is None else b.delivered_mwh for b in bars]
        axes.bar([p - width / 2 for p in positions], needed, width=width, color=_NEEDED)
        axes.bar([p + width / 2 for p in positions], delivered, width=width, color=_DELIVERED)
        handles.append(Patch(facecolor=_NEEDED, label=f"Needed (baseline {_MINUS} target)"))
        label = f"Delivered (baseline {_MINUS} load; {method})" if method else "Delivered"
        handles.append(Patch(facecolor=_DELIVERED, label=label))
        finite = [v for v in needed + delivered if not math.isnan(v)]
        top = max([0.0, *finite])
        bottom = min([0.0, *finite])
        span = (top - bottom) or 1.0
        axes.set_ylim(bottom - (0.05 * span if bottom < 0 else 0), top + 0.3 * span)
        if not finite:  # no figure at all: no scale to read either
            axes.set_yticks([])
        if bottom < 0:
            axes.axhline(0, color="#9a9a9a", linewidth=0.8)
        missing = [(p, b) for p, b in zip(positions, bars, strict=True) if b.word is not None]
        if missing and count <= _WORDS_MAX:
            for position, bar in missing:
                axes.text(
                    position,
                    0.03 * span,
                    bar.word,
                    rotation=90,
                    ha="center",
                    va="bottom",
                    color=_GREY,
                    fontsize=7.5,
                )
        elif missing:
            axes.plot(
                [p for p, _ in missing],
                [0.0] * len(missing),
                linestyle="none",
                marker="x",
                color=_GREY,
                markersize=4,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="x",
                    color=_GREY,
                    label="No figure (status in the table)",
                )
            )
        every = math.ceil(count / 16)
        axes.xaxis.set_major_locator(FixedLocator(positions[::every]))
        axes.set_xticklabels(
            [f"{b.started_at.astimezone(zone):%b %d %H:%M}" for b in bars[::every]],
            fontsize=7.5,
        )
        # At least six bars' room, so one episode is not one giant bar.
        pad = max(0.6, (6 - count) / 2)
        axes.set_xlim(-pad, count - 1 + pad)
        where = zone_label(zone, bars[0].started_at, bars[-1].started_at)
        axes.set_xlabel(f"Episode, by its start ({where})")
        figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        return _svg(figure, chart_id)
