"""The timeline chart at the scale of a month: every phase drawn, one SVG path per phase.

A month holds over a thousand phases; drawn one artist each they cost most of a report's
time (tests/bench measures it). These tests pin what the reader gets: each span is in
the chart, in its phase's colour, and the stalled ones are hatched.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gridhook.report.charts import timeline_svg
from gridhook.report.model import LoadPoint, PhaseSpan, Timeline

T0 = datetime(2026, 10, 1, tzinfo=UTC)
PHASES = ("ramping_down", "constrained", "ramping_up")
COLOUR = {"ramping_down": "#f4b6a6", "constrained": "#fbe3a1", "ramping_up": "#b7dfb0"}


def a_month(days: int = 30, per_day: int = 8, stalled_last: bool = False) -> Timeline:
    phases, points = [], []
    for n in range(days * per_day):
        start = T0 + timedelta(hours=24 / per_day * n)
        at = start
        for phase, minutes in zip(PHASES, (6, 60, 5), strict=True):
            end = at + timedelta(minutes=minutes)
            phases.append(PhaseSpan(phase, at, end, f"e{n}"))
            at = end
        points.append(LoadPoint(start, "event", 10e6, 6e6, "start_ramp_down", f"c{n}", False))
        points.append(LoadPoint(at, "event", 10e6, 10e6, "end_ramp_up", f"c{n}", True))
    if stalled_last:
        last = phases.pop()
        phases.append(PhaseSpan(last.phase, last.start, last.end, last.episode_id, True, True))
    end = T0 + timedelta(days=days)
    return Timeline(T0, end, tuple(points), ((T0, 10e6), (end, 10e6)), tuple(phases))


def paths_filled_with(svg: str, colour: str) -> list[str]:
    """The ``d`` of every path in the plot (clipped to it; not the legend's) filled with
    ``colour``."""
    return re.findall(
        rf'<path d="([^"]*)" clip-path="[^"]*" style="fill: {colour}; opacity: 0.8"', svg
    )


def test_every_phase_of_a_month_is_shaded_as_one_path_per_phase() -> None:
    timeline = a_month()
    svg = timeline_svg(timeline, "month")
    for phase in PHASES:
        (shape,) = paths_filled_with(svg, COLOUR[phase])
        # One closed rectangle per span: all 240 of them, none merged or dropped.
        assert shape.count("M ") == sum(1 for s in timeline.phases if s.phase == phase) == 240
        assert shape.count("z") == 240
    for label in ("Ramping down", "Constrained", "Ramping up"):
        assert label in svg  # the legend names each phase


def test_a_short_phase_is_widened_to_stay_visible() -> None:
    timeline = a_month(days=30, per_day=1)
    brief = PhaseSpan("ramping_up", T0 + timedelta(days=3), T0 + timedelta(days=3, seconds=1), "x")
    wide = Timeline(timeline.start, timeline.end, timeline.points, timeline.target_steps, (brief,))
    (shape,) = paths_filled_with(timeline_svg(wide, "brief"), COLOUR["ramping_up"])
    xs = [float(x) for x in re.findall(r"[ML] ([\d.]+) ", shape)]
    assert max(xs) - min(xs) >= 1.0  # about 1.5 px of the plot, not a 1-second sliver


def test_stalled_spans_are_hatched_and_in_the_legend() -> None:
    svg = timeline_svg(a_month(days=2, stalled_last=True), "stalled")
    assert "Stalled ramp" in svg
    assert svg.count("<pattern") == 2  # the hatch over the span and in its legend entry
    calm = timeline_svg(a_month(days=2), "calm")
    assert "Stalled ramp" not in calm and "<pattern" not in calm
