"""Totals over a range count only what lies inside it, so reports over adjacent ranges add
up to the report over their union (issue 15 items 1 and 2). Pure: episodes derived from
generated histories; tests/integration/test_report_ranges_store.py checks the same through
a real store and the loader."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridhook.episodes import EPISODE_STATUSES, Episode, derive_episodes
from gridhook.episodes.spans import clip, duration
from gridhook.events import StoredEvent, normalise, rfc3339
from gridhook.report import Report, assemble_report
from tests.report_scenario import assert_adds_up, hand_built_episode

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DEADLINE = timedelta(minutes=30)
_ORDER = ("start", "end", "start", "end")


def _event(
    name: str,
    at: datetime,
    *,
    feed: str,
    corr: str | None,
    target: float | None,
    prev: float | None,
    calc: float,
    compliant: bool,
) -> StoredEvent:
    payload: dict[str, Any] = {
        "event": name,
        "feed_tag": feed,
        "start_time": rfc3339(at),
        "end_time": None,
        "strategy": "best_effort",
        "target_load": None if target is None else {"value": target, "unit": "mw"},
        "prev_target_load": None if prev is None else {"value": prev, "unit": "mw"},
        "calculated_load": {"value": calc, "unit": "mw"},
        "compliant": compliant,
    }
    if corr is not None:
        payload["correlation_id"] = corr
    return normalise(payload, at)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[StoredEvent], datetime]:
    """Curtailments and load increases on two feeds, and the "now" they are judged at.

    Events go missing (partial, stalled), arrive out of order, come without a correlation
    id, and a newer target may arrive before the older one ended (it takes the feed);
    "now" may fall inside the last ramp's deadline (in progress) or past it (stalled).
    """
    events: list[StoredEvent] = []
    last = T0
    for feed in ("f1", "f2"):
        clock = T0 + timedelta(seconds=draw(st.integers(0, 7200)))
        for n in range(draw(st.integers(1, 4))):
            corr = draw(st.sampled_from([f"{feed}-{n}", f"{feed}-{n}", None]))
            kind = draw(st.sampled_from(["curtailment", "curtailment", "increase"]))
            default = draw(st.sampled_from([10.0, 0.0, None]))  # 0 and null: the default
            target = draw(st.sampled_from([6.5, 4.0])) if kind == "curtailment" else 12.0
            first, second = ("down", "up") if kind == "curtailment" else ("up", "down")
            gaps = draw(st.lists(st.integers(1, 5400), min_size=4, max_size=4))
            times = list(itertools.accumulate(timedelta(seconds=g) for g in gaps))
            times = [clock + t for t in times]
            kept = draw(st.lists(st.booleans(), min_size=4, max_size=4).filter(any))
            late = draw(st.integers(0, 3))  # this one may arrive before the one before it
            if draw(st.booleans()) and late > 0:
                times[late] = times[late - 1] - timedelta(seconds=draw(st.integers(1, 30)))
            met = draw(st.booleans())
            spec = [
                (f"start_ramp_{first}", target, default, default or 10.0, True),
                (f"end_ramp_{first}", target, default, target + (0 if met else 1), met),
                (f"start_ramp_{second}", default, target, target, True),
                (f"end_ramp_{second}", default, target, default or 10.0, True),
            ]
            for (name, t, p, calc, ok), when, keep in zip(spec, times, kept, strict=True):
                if keep:
                    events.append(
                        _event(
                            name,
                            when,
                            feed=feed,
                            corr=corr,
                            target=t,
                            prev=p,
                            calc=calc,
                            compliant=ok,
                        )
                    )
            last = max(last, *times)
            # Negative: the next target arrives before this one ended, and takes the feed.
            clock = max(times) + timedelta(seconds=draw(st.integers(-4000, 5400)))
    now = last + timedelta(seconds=draw(st.integers(0, 4 * 3600)))
    return events, now


def _report(episodes: Sequence[Episode], since: datetime, until: datetime, now: datetime) -> Report:
    return assemble_report(
        episodes, [], since=since, until=until, now=now, ramp_deadline_seconds=1800
    )


@settings(max_examples=300)
@given(
    histories(),
    st.lists(st.integers(0, 40 * 3600 * 1000), min_size=1, max_size=4, unique=True),
    st.integers(-3600, 3600),
)
def test_reports_over_adjacent_ranges_add_up_to_their_union(
    history: tuple[list[StoredEvent], datetime], cuts_ms: list[int], edge_s: int
) -> None:
    events, now = history
    episodes = derive_episodes(events, now=now, ramp_deadline=DEADLINE)
    since = T0 + timedelta(seconds=edge_s)
    until = max(now, *(e.received_at for e in events)) + HOUR  # past now: the future is empty
    cuts = sorted(
        c for c in (since + timedelta(milliseconds=ms) for ms in cuts_ms) if since < c < until
    )
    bounds = [since, *cuts, until]
    whole = _report(episodes, since, until, now)
    parts = [_report(episodes, a, b, now) for a, b in itertools.pairwise(bounds)]
    assert_adds_up(whole, parts)
    # Each part's totals are what lies inside it: nothing past now, nothing outside.
    for part in parts:
        inside = sum(
            duration(clip(e.held_spans, part.since, min(part.until, now)))
            for e in part.episodes
            if e.kind == "curtailment" and e.constrained_seconds is not None
        )
        assert part.overall.hours_constrained * 3600 == pytest.approx(inside, abs=1e-6)


def test_the_histories_reach_every_status() -> None:
    """The property above runs over all statuses (and both kinds): the generator reaches them."""
    seen: set[tuple[str, str]] = set()

    @settings(max_examples=300)
    @given(histories())
    def collect(history: tuple[list[StoredEvent], datetime]) -> None:
        events, now = history
        seen.update(
            (e.status, e.kind) for e in derive_episodes(events, now=now, ramp_deadline=DEADLINE)
        )

    collect()
    assert {status for status, _ in seen} == set(EPISODE_STATUSES)
    assert {kind for _, kind in seen} == {"curtailment", "increase"}
    assert ("stalled", "curtailment") in seen and ("in_progress", "curtailment") in seen


# -- the issue's own cases, by hand ------------------------------------------------------------


def test_a_range_cutting_an_episode_counts_only_its_part() -> None:
    """Held 06:05 to 07:05 at 4 MW below its previous target: half an hour of it is 2 MWh."""
    start = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    episode = hand_built_episode(start=start, down_s=300, hold_s=3600, prev_mw=10, target_mw=6)
    half = (start + timedelta(minutes=35), start + timedelta(minutes=65))
    report = _report([episode], *half, now=start + 4 * HOUR)
    assert report.overall.hours_constrained == pytest.approx(0.5)
    assert report.overall.requested_mwh == pytest.approx(2.0)
    # The row keeps the whole episode's figures; its share sits beside them.
    (listed,) = report.episodes
    assert listed.constrained_seconds == 3600 and listed.requested_energy_wh == 4e6
    share = listed.share(*half)
    assert share.constrained_seconds == 1800 and share.requested_energy_wh == 2e6
    assert share.held_spans == (half,)
    # Its ramp down ended before the range: judged and timed in the range before it.
    assert (report.overall.judged, report.overall.ramp_down.count) == (0, 0)
    assert report.overall.not_judged == 0


def test_a_range_in_the_future_holds_nothing_of_an_open_episode() -> None:
    """Issue 15 item 2: a stalled or held episode ends, for any range, at now."""
    start = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
    now = datetime(2026, 12, 2, 22, 40, tzinfo=UTC)
    held = hand_built_episode(start=start, through="end_ramp_down", now=now)
    stalled = hand_built_episode(
        start=start, feed="f2", through="start_ramp_down", status="stalled", now=now
    )
    future = (datetime(2098, 12, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC))
    report = _report([held, stalled], *future, now=now)
    assert report.episodes == () and report.overall.requested_mwh == 0
    before = (start - 2 * HOUR, start)  # ends before either began
    assert _report([held, stalled], *before, now=now).episodes == ()
    today = _report([held, stalled], start, start + 24 * HOUR, now=now)
    assert len(today.episodes) == 2
    held_since = start + timedelta(seconds=300)  # its ramp down took 5 minutes
    assert today.overall.hours_constrained == pytest.approx((now - held_since) / HOUR)
