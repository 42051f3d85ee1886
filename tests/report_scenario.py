"""A realistic day of curtailments, written into a real store through the real event
normalisation: webhooks as DPS sends them and GetStatus samples between them.

Used by the report tests (CLI, HTTP, browser). Two feeds, one with a long tag; on the
second feed one target is not reached (end_ramp_down says compliant: false); the last
curtailment on the first feed stalls (its end_ramp_down never arrives).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from gridhook.episodes import Episode
from gridhook.events import normalise
from gridhook.report import Report
from gridhook.sites import DEFAULT_SITE
from gridhook.store import EventStore, LoadSample

FEED_A = "main_power_feed"
FEED_B = "north-campus-substation-7/busbar-A/feed-0001-with-a-rather-long-tag"
SAMPLE_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class Curtailment:
    feed: str
    correlation_id: str
    at_minute: int  # when the ramp down starts, after the scenario's start
    down: int  # ramp-down minutes
    hold: int  # minutes held constrained
    up: int  # ramp-up minutes
    prev_mw: float
    target_mw: float
    reached_mw: float  # the load DPS reaches (above the target: not compliant)
    stalls: bool = False  # the end_ramp_down never arrives, nothing after it

    @property
    def start(self) -> timedelta:
        return timedelta(minutes=self.at_minute)

    @property
    def ramp_down(self) -> timedelta:
        return timedelta(minutes=self.down)

    @property
    def ramp_up(self) -> timedelta:
        return timedelta(minutes=self.up)

    @property
    def held(self) -> timedelta:
        return timedelta(minutes=self.hold)


def curtailments() -> list[Curtailment]:
    return [
        Curtailment(FEED_A, "dr-0600", 6 * 60, 6, 90, 5, 10, 6.5, 6.5),
        Curtailment(FEED_A, "dr-1100", 11 * 60, 9, 60, 7, 10, 5, 5),
        Curtailment(FEED_B, "dr-0800", 8 * 60, 4, 120, 4, 8, 6, 6),
        Curtailment(FEED_B, "dr-1400", 14 * 60, 12, 45, 6, 8, 4.5, 5.2),
        Curtailment(FEED_A, "dr-2000", 20 * 60, 8, 60, 5, 10, 6, 6, stalls=True),
    ]


def _payload(c: Curtailment, event: str, load_mw: float, compliant: bool, origin: datetime) -> dict:
    down = event.endswith("ramp_down")
    target, prev = (c.target_mw, c.prev_mw) if down else (c.prev_mw, c.target_mw)
    interval_start = origin + c.start
    return {
        "event": event,
        "feed_tag": c.feed,
        "start_time": interval_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": (interval_start + c.ramp_down + c.held).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "strategy": "best_effort",
        "target_load": {"value": target, "unit": "mw"},
        "prev_target_load": {"value": prev, "unit": "mw"},
        "calculated_load": {"value": round(load_mw, 3), "unit": "mw"},
        "compliant": compliant,
        "correlation_id": c.correlation_id,
    }


def _load_at(c: Curtailment, at: timedelta) -> tuple[float, float] | None:
    """(calculated MW, target MW) of ``c``'s feed at ``at``, or None outside ``c``."""
    t0 = c.start
    t1 = t0 + c.ramp_down
    t2 = t1 + c.held
    t3 = t2 + c.ramp_up
    if at < t0 or (not c.stalls and at >= t3):
        return None
    if at < t1 or c.stalls:
        done = min(1.0, (at - t0) / c.ramp_down)
        if c.stalls:
            done = min(done, 0.4)  # DPS stopped mid-ramp
        return c.prev_mw - (c.prev_mw - c.reached_mw) * done, c.target_mw
    if at < t2:
        return c.reached_mw, c.target_mw
    done = (at - t2) / c.ramp_up
    return c.reached_mw + (c.prev_mw - c.reached_mw) * done, c.prev_mw


def seed_day(
    store: EventStore,
    origin: datetime,
    hours: float = 24,
    day_tag: str = "",
    site: str = DEFAULT_SITE,
) -> dict[str, int]:
    """Write the day starting at ``origin`` into ``store``: events and samples up to
    ``origin + hours``; ``day_tag`` is appended to the correlation ids (to seed several
    days); ``site``: whose they are (as delivered to its path). Returns how many of each
    were written."""
    horizon = origin + timedelta(hours=hours)
    events = 0
    for c in curtailments():
        t0 = origin + c.start
        steps = [("start_ramp_down", t0, c.prev_mw, c.prev_mw <= c.target_mw)]
        if not c.stalls:
            t1 = t0 + c.ramp_down
            t2 = t1 + c.held
            compliant = c.reached_mw <= c.target_mw + 1e-9
            steps += [
                ("end_ramp_down", t1, c.reached_mw, compliant),
                ("start_ramp_up", t2, c.reached_mw, True),
                ("end_ramp_up", t2 + c.ramp_up, c.prev_mw, True),
            ]
        for event, at, load, compliant in steps:
            if at < horizon:
                payload = _payload(c, event, load, compliant, origin)
                payload["correlation_id"] += day_tag
                store.add_event(normalise(payload, at, site=site))
                events += 1
    samples = 0
    default = {FEED_A: 10.0, FEED_B: 8.0}
    for feed, default_mw in default.items():
        at = origin + timedelta(minutes=3)
        while at < horizon:
            reading = next(
                (r for c in curtailments() if c.feed == feed and (r := _load_at(c, at - origin))),
                None,
            )
            load, target = reading or (default_mw, default_mw)
            store.add_sample(
                LoadSample(
                    feed_tag=feed,
                    sampled_at=at,
                    calculated_w=load * 1e6,
                    target_w=target * 1e6,
                    correlation_id=None,
                    expires_at=at + timedelta(days=3650),
                    site=site,
                )
            )
            samples += 1
            at += SAMPLE_EVERY
    return {"events": events, "samples": samples}


# -- episodes built by hand, for tests of the report alone --------------------------------

_ORDER = ("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up")


def hand_built_episode(
    *,
    start: datetime,
    feed: str | None = "f1",
    correlation_id: str | None = "c1",
    down_s: float = 300.0,
    hold_s: float = 3600.0,
    up_s: float = 240.0,
    prev_mw: float = 10.0,
    target_mw: float = 6.0,
    reached_mw: float | None = None,
    through: str = "end_ramp_up",
    status: str | None = None,
    flags: tuple[str, ...] = (),
    now: datetime | None = None,
    site: str = DEFAULT_SITE,
) -> Episode:
    """A curtailment episode with its real events, received up to ``through``; its figures
    follow from the arguments (the episode derivation itself is tested elsewhere)."""
    reached = target_mw if reached_mw is None else reached_mw
    received = _ORDER[: _ORDER.index(through) + 1]
    times = {
        "start_ramp_down": start,
        "end_ramp_down": start + timedelta(seconds=down_s),
        "start_ramp_up": start + timedelta(seconds=down_s + hold_s),
        "end_ramp_up": start + timedelta(seconds=down_s + hold_s + up_s),
    }
    loads = {
        "start_ramp_down": prev_mw,
        "end_ramp_down": reached,
        "start_ramp_up": reached,
        "end_ramp_up": prev_mw,
    }
    events = []
    for name in received:
        down = name.endswith("down")
        payload = {
            "event": name,
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": None,
            "strategy": "best_effort",
            "target_load": {"value": target_mw if down else prev_mw, "unit": "mw"},
            "prev_target_load": {"value": prev_mw if down else target_mw, "unit": "mw"},
            "calculated_load": {"value": loads[name], "unit": "mw"},
            "compliant": reached <= target_mw
            if name == "end_ramp_down"
            else name != "start_ramp_down",
        }
        if feed is not None:
            payload["feed_tag"] = feed
        if correlation_id is not None:
            payload["correlation_id"] = correlation_id
        events.append(normalise(payload, times[name], site=site))
    is_open = through != "end_ramp_up"
    until = now or times[through]
    got = set(received)

    def seconds(a: str, b: str) -> float | None:
        return (times[b] - times[a]).total_seconds() if {a, b} <= got else None

    constrained = None
    held: tuple[tuple[datetime, datetime], ...] = ()
    if "end_ramp_down" in got:
        held_until = times["start_ramp_up"] if "start_ramp_up" in got else until
        constrained = (held_until - times["end_ramp_down"]).total_seconds()
        held = ((times["end_ramp_down"], held_until),)
    reduction = (prev_mw - target_mw) * 1e6
    return Episode(
        episode_id=f"{feed}|{correlation_id}|{start.isoformat()}",
        feed_tag=feed,
        correlation_id=correlation_id,
        status=status or ("in_progress" if is_open else "complete"),
        kind="curtailment",
        open=is_open,
        target_load={"value": target_mw, "unit": "mw"},
        target_w=target_mw * 1e6,
        prev_target_load={"value": prev_mw, "unit": "mw"},
        prev_target_w=prev_mw * 1e6,
        interval_start=start,
        interval_end=None,
        ramp_down_started_at=times["start_ramp_down"],
        ramp_down_ended_at=times["end_ramp_down"] if "end_ramp_down" in got else None,
        ramp_down_seconds=seconds("start_ramp_down", "end_ramp_down"),
        constrained_seconds=constrained,
        ramp_up_started_at=times["start_ramp_up"] if "start_ramp_up" in got else None,
        ramp_up_ended_at=times["end_ramp_up"] if "end_ramp_up" in got else None,
        ramp_up_seconds=seconds("start_ramp_up", "end_ramp_up"),
        compliant=(reached <= target_mw) if "end_ramp_down" in got else None,
        requested_reduction_w=reduction,
        requested_energy_wh=None if constrained is None else reduction * constrained / 3600,
        load_w={name: loads[name] * 1e6 for name in received},
        events=tuple(events),
        missing=(),
        flags=flags,
        ended_at=None if is_open else times["end_ramp_up"],
        held_spans=held,
        as_of=now,
    )


def sample(feed: str, at: datetime, load_mw: float, target_mw: float | None) -> LoadSample:
    return LoadSample(
        feed_tag=feed,
        sampled_at=at,
        calculated_w=load_mw * 1e6,
        target_w=None if target_mw is None else target_mw * 1e6,
        correlation_id=None,
        expires_at=at + timedelta(days=3650),
    )


# -- reports over adjacent ranges ------------------------------------------------------------


def _totals(report: Report, feed: str | None = "*") -> dict[str, float]:
    """The figures that must add up, of one feed's section (or the overall row)."""
    if feed == "*":
        summary, days = report.overall, [d for f in report.feeds for d in f.compliance_by_day]
    else:
        section = next((f for f in report.feeds if f.feed_tag == feed), None)
        if section is None:
            return dict.fromkeys(_ADDITIVE, 0.0)
        summary, days = section.summary, list(section.compliance_by_day)
    return {
        "hours_constrained": summary.hours_constrained,
        "requested_mwh": summary.requested_mwh,
        "judged": summary.judged,
        "compliant": summary.compliant,
        "ramp_down_count": summary.ramp_down.count,
        "ramp_up_count": summary.ramp_up.count,
        "judged_by_day": sum(d.judged for d in days),
        "compliant_by_day": sum(d.compliant for d in days),
    }


_ADDITIVE = (
    "hours_constrained",
    "requested_mwh",
    "judged",
    "compliant",
    "ramp_down_count",
    "ramp_up_count",
    "judged_by_day",
    "compliant_by_day",
)


def assert_adds_up(whole: Report, parts: list[Report]) -> None:
    for feed in ("*", *(f.feed_tag for f in whole.feeds)):
        expected = _totals(whole, feed)
        added = {k: sum(_totals(p, feed)[k] for p in parts) for k in _ADDITIVE}
        assert added == pytest.approx(expected, rel=1e-9, abs=1e-9), feed
    # Listed: whatever any part lists, the whole lists, and the other way round.
    listed = {e.episode_id for e in whole.episodes}
    assert {e.episode_id for p in parts for e in p.episodes} == listed
