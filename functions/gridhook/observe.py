"""Observing the feeds: what DPS reports (GetStatus) against what our events say.

Once per reconcile run: DPS's status is compared with the state our events give (drift:
a webhook that never arrived), and ramps that started too long ago and never ended are
reported once (an insert-if-absent alert). Registering with DPS is
``gridhook.subscriptions``.

Once per ``sample_load`` run (every minute by default, its own Scheduler job per site):
DPS's status is kept as load samples (:func:`sample_feeds`), measured by DPS between the
webhooks — the interval data baselines are computed from. Reconcile does not sample: a
steady cadence, not reconcile's, is what interval coverage needs.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from gridhook import log, units
from gridhook.events import rfc3339
from gridhook.nvgrid.errors import NvGridError, classify
from gridhook.settings import Settings
from gridhook.sites import DEFAULT_SITE
from gridhook.state import FeedState
from gridhook.state.load import current_feed_states
from gridhook.store import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventStore,
    LoadSample,
    StoreError,
)

__all__ = [
    "Observation",
    "SampleReport",
    "StatusSource",
    "check_drift",
    "load_samples",
    "observe_feeds",
    "sample_feeds",
    "stalled_ramps",
]

_logger = log.get_logger("gridhook.subscriptions")
# Relative difference below which DPS's target and ours are the same number.
_TARGET_TOLERANCE = 0.005


class StatusSource(Protocol):
    """The part of NvGridClient that observing the feeds uses."""

    def get_status(self) -> dict[str, Any]: ...

    @property
    def server_clock_offset(self) -> timedelta | None:
        """How far DPS's clock is ahead of ours; None when DPS never said (a real DPS)."""

    def server_now(self) -> datetime:
        """DPS's current time, estimated from the last answer that carried it."""


@dataclass
class Observation:
    """What one look at the feeds found, and what failed on the way."""

    drift: list[dict[str, Any]] = field(default_factory=list)
    stalled: list[dict[str, Any]] = field(default_factory=list)
    # (status, code, message, action) of each step that failed; the others still ran.
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)

    def fail(self, status: str, code: str, message: str, action: str) -> None:
        self.failures.append((status, code, message, action))


def _watts(load: Any) -> float | None:
    """A GetStatus load in watts, by the units table; None when absent or unconvertible.

    A unit the table lacks (a newer DPS's, say) is unknown, never guessed: no sample value,
    no drift judged on it.
    """
    if load is None:
        return None
    try:
        return units.to_watts(load.value, str(load.unit))
    except ValueError as exc:
        _logger.warning("DPS reported a load gridhook cannot convert: %s", exc)
        return None


def _shown_w(watts: float | None) -> str:
    return "a load in a unit gridhook cannot convert" if watts is None else f"{watts:g} W"


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is not b
    return not math.isclose(a, b, rel_tol=_TARGET_TOLERANCE, abs_tol=1.0)


def check_drift(
    dps_status: dict[str, Any],
    ours: dict[str, FeedState],
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
    snapshot_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Feeds where DPS's current target disagrees with what our received events say.

    A webhook that never arrived shows up here: DPS has an active target (correlation id)
    we never heard of, or a different target value, or DPS is back at the default while
    our last event left the feed ramping down or constrained. Targets that began less than
    ``grace`` ago are skipped: their webhooks may still be on the way. So is a feed that
    received an event at or after ``snapshot_at`` (our clock when DPS was asked): DPS's
    status predates it, so a difference is no evidence of a lost webhook (the next run
    compares again).
    """
    found = []
    for tag, status in sorted(dps_status.items()):
        state = ours.get(tag)
        if _newer_than_snapshot(state, snapshot_at):
            continue
        target = getattr(status, "current_target", None)
        started = getattr(target, "start_time", None) if target is not None else None
        if now is not None and started is not None and now - started < grace:
            continue
        load = getattr(target, "target_load", None) if target is not None else None
        dps_corr = (getattr(target, "correlation_id", "") or None) if load is not None else None
        dps_w = _watts(load)  # None for a unit gridhook cannot convert: not compared
        dps_view = {"correlation_id": dps_corr, "target_w": dps_w}
        our_view = state.to_dict() if state else {"phase": "no events received"}
        problem = None
        if dps_corr is not None:
            if state is None or state.correlation_id != dps_corr:
                problem = (
                    f"DPS has target {dps_corr!r} ({_shown_w(dps_w)}) on {tag} but no webhook "
                    f"for it was received (last received: "
                    f"{state.correlation_id if state else 'nothing'})"
                )
            elif (
                state.phase in ("ramping_down", "constrained", "ramping_up")
                and dps_w is not None
                and _differs(dps_w, state.target_w)
            ):
                problem = (
                    f"DPS target on {tag} is {dps_w:g} W but the last webhook said "
                    f"{state.target_w} W"
                )
        elif state is not None and state.phase in ("ramping_down", "constrained"):
            problem = (
                f"DPS is back at the default on {tag} but the last webhook left it "
                f"{state.phase} ({state.correlation_id}): a start_ramp_up was not received"
            )
        if problem:
            found.append({"feed_tag": tag, "message": problem, "dps": dps_view, "ours": our_view})
    return found


def _newer_than_snapshot(state: FeedState | None, snapshot_at: datetime | None) -> bool:
    """Whether our events on a feed include one received after DPS's status was asked for.

    A webhook is sent after DPS applies the change it reports, so an event received before
    we asked is in DPS's status; one received since may or may not be.
    """
    if state is None or snapshot_at is None or state.last_received_at is None:
        return False
    return state.last_received_at >= snapshot_at


_END_OF_RAMP = {"ramping_down": "end_ramp_down", "ramping_up": "end_ramp_up"}


def load_samples(
    dps_status: dict[str, Any],
    sampled_at: datetime,
    retention: timedelta,
    site: str = DEFAULT_SITE,
) -> list[LoadSample]:
    """One sample per feed of what a site's GetStatus reported (measured by DPS, not
    requested)."""
    samples = []
    for tag, status in sorted(dps_status.items()):
        target = getattr(status, "current_target", None)
        samples.append(
            LoadSample(
                feed_tag=tag,
                sampled_at=sampled_at,
                calculated_w=_watts(getattr(status, "calculated_load", None)),
                target_w=_watts(getattr(target, "target_load", None)),
                correlation_id=getattr(target, "correlation_id", "") or None,
                expires_at=sampled_at + retention,
                site=site,
            )
        )
    return samples


def _stall_cause(state: FeedState, dps_w: float | None, missing: str) -> tuple[str, str]:
    """(likely cause, what to tell the operator), from DPS's calculated load if known."""
    target = state.target_w
    if dps_w is None or target is None:
        return "unknown", (
            f"either the {missing} webhook was missed or DPS stopped mid-ramp: compare "
            "DPS's status for the feed (gridhook nvgrid get-status)"
        )
    down = state.phase == "ramping_down"
    reached = (dps_w <= target if down else dps_w >= target) or not _differs(dps_w, target)
    if reached:
        return "missed_webhook", (
            f"DPS now reports {dps_w:g} W, at the ramp's target {target:g} W: the {missing} "
            "webhook was likely missed (see drift and the receiver's rejected or "
            "unauthorized requests)"
        )
    return "dps_stopped_mid_ramp", (
        f"DPS now reports {dps_w:g} W, short of the ramp's target {target:g} W: DPS may "
        "have stopped mid-ramp; ask the DPS operator"
    )


def stalled_ramps(
    ours: dict[str, FeedState],
    *,
    now: datetime,
    deadline: timedelta,
    dps_status: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Feeds whose ramp started more than ``deadline`` ago and has not ended: the feeds
    whose state says ``stalled`` (the episode derivation's verdict, judged at the time the
    states were derived for, which ``now`` should be), in a ramping phase.

    Its end webhook was missed, or DPS stopped mid-ramp; DPS's current calculated load
    (when ``dps_status`` has it) says which is likelier. ``alert_id`` is derived from the
    feed, the correlation id and the start event, so one stall is one alert.
    """
    found = []
    for tag, state in sorted(ours.items()):
        missing = _END_OF_RAMP.get(state.phase)
        if missing is None or not state.stalled:
            continue
        dps_w = _watts(getattr((dps_status or {}).get(tag), "calculated_load", None))
        likely, advice = _stall_cause(state, dps_w, missing)
        key = f"{tag}|{state.correlation_id or ''}|{state.last_event_id}"
        minutes = (now - state.since).total_seconds() / 60
        found.append(
            {
                "alert_id": hashlib.sha256(key.encode()).hexdigest()[:24],
                "feed_tag": tag,
                "correlation_id": state.correlation_id,
                "phase": state.phase,
                "since": rfc3339(state.since),
                "start_event_id": state.last_event_id,
                "missing": missing,
                "target_w": state.target_w,
                "dps_calculated_w": dps_w,
                "likely_cause": likely,
                "message": (
                    f"stalled ramp on {tag} ({state.correlation_id or 'no correlation id'}): "
                    f"{state.last_event} received at {rfc3339(state.since)}, no {missing} "
                    f"within {deadline.total_seconds():g} s ({minutes:.0f} min ago); {advice}"
                ),
            }
        )
    return found


def _dps_time(nvgrid: StatusSource, now: Callable[[], datetime]) -> datetime:
    """DPS's clock when it tells us its time (the simulator does), else ours."""
    return nvgrid.server_now() if nvgrid.server_clock_offset is not None else now()


def _store_failed(report: Observation, step: str, exc: StoreError) -> None:
    action = "the store is unavailable; the run will be retried"
    report.fail("unavailable", "store_unavailable", f"{step}: {exc}", action)


def observe_feeds(
    settings: Settings,
    store: EventStore,
    nvgrid: StatusSource,
    now: Callable[[], datetime],
    site: str = DEFAULT_SITE,
) -> Observation:
    """Ask a site's DPS for its status once and compare it with the site's events (drift);
    then report ramps that started too long ago and never ended. Every record it writes is
    ``site``'s; every read is of ``site``.

    A store failure here is reported (503: Scheduler retries) without hiding what the
    run already did, and one failed step does not skip the others.
    """
    report = Observation()
    dps_status: dict[str, Any] | None = None
    asked = now()  # DPS's status is no older than this: events since may be missing from it
    try:
        dps_status = nvgrid.get_status()
    except NvGridError as exc:
        status, code, action = classify(exc)
        report.fail(status, code, f"drift check: {exc}", action)
    at = now()
    try:
        deadline = timedelta(seconds=settings.ramp_deadline_seconds)
        ours = current_feed_states(store, now=at, ramp_deadline=deadline, site=site)
        if dps_status is not None:
            _record_drift(report, settings, store, dps_status, ours, at, asked, site)
        _record_stalled(report, settings, store, ours, dps_status, at, site)
    except StoreError as exc:
        _store_failed(report, "drift and stalled-ramp check", exc)
    return report


def _record_drift(
    report: Observation,
    settings: Settings,
    store: EventStore,
    dps_status: dict[str, Any],
    ours: dict[str, FeedState],
    at: datetime,
    asked: datetime,
    site: str,
) -> None:
    grace = timedelta(seconds=settings.drift_grace_seconds)
    for drift in check_drift(dps_status, ours, now=at, grace=grace, snapshot_at=asked):
        key = f"{drift['feed_tag']}|{drift['dps']}|{drift['ours'].get('last_event_id')}"
        store.add_drift(
            DriftRecord(
                drift_id=hashlib.sha256(key.encode()).hexdigest()[:24],
                feed_tag=drift["feed_tag"],
                detected_at=at,
                message=drift["message"],
                dps_view=drift["dps"],
                our_view=drift["ours"],
                site=site,
            )
        )
        report.drift.append(drift)
        log.log_event(
            _logger,
            logging.WARNING,
            drift["message"],
            outcome="drift",
            site=site,
            feed_tag=drift["feed_tag"],
            dps=drift["dps"],
            ours=drift["ours"],
        )


def _record_stalled(
    report: Observation,
    settings: Settings,
    store: EventStore,
    ours: dict[str, FeedState],
    dps_status: dict[str, Any] | None,
    at: datetime,
    site: str,
) -> None:
    deadline = timedelta(seconds=settings.ramp_deadline_seconds)
    for stall in stalled_ramps(ours, now=at, deadline=deadline, dps_status=dps_status):
        alert = AlertRecord(
            alert_id=stall["alert_id"],
            kind="episode_stalled",
            detected_at=at,
            message=stall["message"],
            feed_tag=stall["feed_tag"],
            correlation_id=stall["correlation_id"],
            details={k: v for k, v in stall.items() if k not in ("alert_id", "message")},
            site=site,
        )
        # Insert-if-absent: a stall seen again by a later run was reported already.
        new = store.add_alert(alert) is AddOutcome.ACCEPTED
        report.stalled.append({**stall, "new": new})
        if new:
            log.log_event(
                _logger,
                logging.WARNING,
                stall["message"],
                outcome="episode_stalled",
                site=site,
                alert_id=stall["alert_id"],
                feed_tag=stall["feed_tag"],
                correlation_id=stall["correlation_id"],
                since=stall["since"],
                missing=stall["missing"],
                likely_cause=stall["likely_cause"],
                start_event_id=stall["start_event_id"],
            )


@dataclass
class SampleReport:
    """What one sampling run did; ``status`` decides the HTTP answer (as reconcile's)."""

    site: str
    status: str = "ok"  # ok | error (permanent, 200) | unavailable (503)
    sampled_at: datetime | None = None
    feeds: int = 0
    samples: int = 0  # stored by this run (a retried run stores no sample twice)
    error: dict[str, str] | None = None
    rollups: int = 0  # hourly rollups written by this run (gridhook.intervals.rollups)
    days_packed: int = 0  # day rollups written by this run
    dps_feeds: tuple[str, ...] = ()  # the feeds GetStatus reported

    def fail(self, status: str, code: str, message: str, action: str) -> None:
        if self.status != "unavailable":  # a retry may still fix the run
            self.status = status
        self.error = {"code": code, "message": message, "action": action}

    @property
    def outcome(self) -> str:
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "site": self.site,
            "sampled_at": rfc3339(self.sampled_at) if self.sampled_at else None,
            "feeds": self.feeds,
            "samples": self.samples,
            "rollups": self.rollups,
            "days_packed": self.days_packed,
            "error": self.error,
        }


def sample_feeds(
    settings: Settings,
    store: EventStore,
    nvgrid: StatusSource,
    now: Callable[[], datetime],
    site: str,
) -> SampleReport:
    """Ask DPS for its status once and keep it as one load sample per feed, stamped with
    DPS's time when DPS tells it (as reconcile stamped them before sampling moved here)."""
    report = SampleReport(site=site)
    try:
        dps_status = nvgrid.get_status()
    except NvGridError as exc:
        status, code, action = classify(exc)
        report.fail(status, code, f"sampling: {exc}", action)
        return report
    report.sampled_at = _dps_time(nvgrid, now)
    report.feeds = len(dps_status)
    report.dps_feeds = tuple(sorted(dps_status))
    # Raw samples keep the short retention; their hourly rollups the long one.
    retention = timedelta(days=settings.raw_sample_retention_days)
    try:
        for sample in load_samples(dps_status, report.sampled_at, retention, site):
            if store.add_sample(sample) is AddOutcome.ACCEPTED:
                report.samples += 1
    except StoreError as exc:
        action = "the store is unavailable; the run will be retried"
        report.fail("unavailable", "store_unavailable", f"storing load samples: {exc}", action)
    return report
