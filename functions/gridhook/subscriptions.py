"""Subscription lifecycle: keep DPS's webhook registrations equal to what we want,
notice missed webhooks (drift) and stalled ramps, keep what DPS reports as load samples,
and remove every registration on teardown.

NvGrid has no "list webhooks" RPC, so DPS's registrations cannot be read back. What is
known comes from two facts: UnregisterWebhook takes only a URL, so registrations are keyed
by URL and re-registering the same URL replaces it (idempotent); and every URL we ever
registered is recorded in the store *before* the RPC (write-ahead), so neither a crash
nor a token rotation can leave a registration we forgot about.

The registered URL carries the current webhook token. The store keeps only the redacted
URL plus a token fingerprint; to unregister an old URL, its token is found again among
the configured ones (which is why a token is retired only after reconcile removed it).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gridhook import clock, log
from gridhook.auth import fingerprint
from gridhook.events import rfc3339
from gridhook.log import redact_url
from gridhook.nvgrid.errors import (
    NvGridAuthError,
    NvGridCallError,
    NvGridConfigError,
    NvGridError,
    NvGridRejected,
    NvGridUnavailable,
)
from gridhook.settings import ConfigError, Settings
from gridhook.state import FeedState, current_feed_states
from gridhook.store import (
    AddOutcome,
    AlertRecord,
    DriftRecord,
    EventStore,
    LoadSample,
    StoreError,
    SubscriptionRecord,
)

__all__ = [
    "DesiredSubscription",
    "ReconcileReport",
    "TeardownReport",
    "check_drift",
    "desired_subscription",
    "load_samples",
    "reconcile",
    "stalled_ramps",
    "teardown",
]

_logger = log.get_logger("gridhook.subscriptions")
# Relative difference below which DPS's target and ours are the same number.
_TARGET_TOLERANCE = 0.005


class NvGridApi(Protocol):
    """The part of NvGridClient the lifecycle uses."""

    def register_webhook(self, url: str, events: Any = None) -> Any: ...

    def unregister_webhook(self, url: str) -> Any: ...

    def get_status(self) -> dict[str, Any]: ...

    @property
    def server_clock_offset(self) -> timedelta | None:
        """How far DPS's clock is ahead of ours; None when DPS never said (a real DPS)."""

    def server_now(self) -> datetime:
        """DPS's current time, estimated from the last answer that carried it."""


@dataclass(frozen=True)
class DesiredSubscription:
    url: str = field(repr=False)  # carries the token
    redacted_url: str
    token_fingerprint: str | None
    events: tuple[str, ...]

    @property
    def subscription_id(self) -> str:
        return subscription_id(self.redacted_url, self.token_fingerprint)

    def record(self, previous: SubscriptionRecord | None = None) -> SubscriptionRecord:
        """The store record of this subscription, keeping ``previous``'s history."""
        base = previous or SubscriptionRecord(
            subscription_id=self.subscription_id,
            url=self.redacted_url,
            events=self.events,
            token_fingerprint=self.token_fingerprint,
            desired=True,
            registered=False,
        )
        return replace(base, events=self.events, desired=True)


def subscription_id(redacted_url: str, token_fingerprint: str | None) -> str:
    return hashlib.sha256(f"{redacted_url}|{token_fingerprint or ''}".encode()).hexdigest()[:24]


def url_with_token(url: str, token: str | None) -> str:
    """``url`` with ``token`` as its ``token`` query parameter (replacing any value there)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    if token:
        query.append(("token", token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def desired_subscription(settings: Settings) -> DesiredSubscription:
    """What this deployment wants registered, from its settings."""
    if not settings.webhook_url:
        raise ConfigError(
            "GRIDHOOK_WEBHOOK_URL is not set: set it to the receiver's public URL, "
            "e.g. https://REGION-PROJECT.cloudfunctions.net/receive_power_event/nvgrid/webhook"
        )
    token = settings.current_webhook_token
    url = url_with_token(settings.webhook_url, token)
    return DesiredSubscription(
        url=url,
        redacted_url=redact_url(url),
        token_fingerprint=fingerprint(token) if token else None,
        events=settings.events,
    )


def _recover_url(record: SubscriptionRecord, settings: Settings) -> str | None:
    """The full URL of a recorded registration, if its token is still configured."""
    if record.token_fingerprint is None:
        return url_with_token(record.url, None)
    for token in settings.webhook_tokens:
        if fingerprint(token) == record.token_fingerprint:
            return url_with_token(record.url, token)
    return None


def _already_absent(exc: NvGridRejected) -> bool:
    # DPS answers STATUS_CODE_ERROR for an URL it does not know; for teardown that is
    # success (the wording is not published: match what the simulator and DPS docs say).
    text = (exc.diag_msg or str(exc)).lower()
    return "not registered" in text or "not found" in text or "unknown" in text


@dataclass
class ReconcileReport:
    """What one reconcile run did; ``status`` decides the HTTP answer."""

    status: str = "ok"  # ok | error (permanent, 200) | unavailable (503)
    registered: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    left: list[dict[str, str]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    stalled: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    error: dict[str, str] | None = None

    def fail(self, status: str, code: str, message: str, action: str) -> None:
        # "unavailable" wins over "error": a retry may still fix the run.
        if self.status != "unavailable":
            self.status = status
        self.error = {"code": code, "message": message, "action": action}

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "registered": self.registered,
            "unregistered": self.unregistered,
            "already_absent": self.absent,
            "left": self.left,
            "drift": self.drift,
            "stalled": self.stalled,
            "samples": self.samples,
            "error": self.error,
        }


def _classify(exc: NvGridError) -> tuple[str, str, str]:
    """(status, code, what to do) for an NvGrid failure."""
    if isinstance(exc, NvGridUnavailable):
        return "unavailable", "nvgrid_unavailable", "DPS is unreachable; the run will be retried"
    if isinstance(exc, NvGridAuthError):
        return (
            "error",
            "nvgrid_auth",
            "DPS refused the credentials: fix the NvGrid credentials secret "
            "(NVGRID_CREDENTIALS_FILE or NVGRID_USERNAME/NVGRID_PASSWORD)",
        )
    if isinstance(exc, NvGridRejected):
        if "whitelist" in (exc.diag_msg or "").lower():
            return (
                "error",
                "not_whitelisted",
                "ask the DPS operator to add the receiver URL (scheme, host, port and path) "
                "to dps.nvgrid.webhook.whitelist",
            )
        return "error", "nvgrid_rejected", "DPS rejected the request; see its diag_msg"
    if isinstance(exc, NvGridConfigError):
        return "error", "nvgrid_config", "fix the NVGRID_* settings"
    if isinstance(exc, NvGridCallError):
        return "error", "nvgrid_call", "DPS refused the call; check the NvGrid API version"
    return "error", "nvgrid_error", "see the message"


def _record_failure(
    store: EventStore, record: SubscriptionRecord, message: str, now: datetime
) -> None:
    store.put_subscription(
        replace(
            record,
            last_attempt=now,
            last_error=message,
            consecutive_failures=record.consecutive_failures + 1,
        )
    )


def reconcile(
    settings: Settings,
    store: EventStore,
    nvgrid: NvGridApi,
    *,
    now: Callable[[], datetime] = clock.now,
) -> ReconcileReport:
    """Register what is desired, unregister what is stale, then look at the feeds: keep
    DPS's status as load samples, record drift, and report stalled ramps once."""
    report = ReconcileReport()
    desired = desired_subscription(settings)
    known = {r.subscription_id: r for r in store.subscriptions()}
    record = desired.record(known.get(desired.subscription_id))
    # Write-ahead: recorded before DPS hears of it, so teardown can never miss it.
    store.put_subscription(record)
    try:
        nvgrid.register_webhook(desired.url, list(desired.events))
    except NvGridError as exc:
        status, code, action = _classify(exc)
        report.fail(status, code, str(exc), action)
        _record_failure(store, record, str(exc), now())
        _logger.error(
            "registering the webhook failed: %s — %s",
            exc,
            action,
            extra={
                "fields": {"outcome": "reconcile_failed", "code": code, "url": desired.redacted_url}
            },
        )
        return report
    at = now()
    store.put_subscription(
        replace(
            record,
            registered=True,
            last_attempt=at,
            last_success=at,
            last_error=None,
            consecutive_failures=0,
        )
    )
    report.registered.append(desired.redacted_url)

    # Only now that the desired URL is registered: nothing is ever left unsubscribed.
    for stale in known.values():
        if stale.subscription_id == desired.subscription_id:
            continue
        _remove(stale, settings, store, nvgrid, report, now)

    _observe_feeds(report, settings, store, nvgrid, now)
    log.log_event(
        _logger,
        logging.INFO if report.status == "ok" else logging.ERROR,
        f"reconcile {report.status}",
        outcome="reconcile_ok" if report.status == "ok" else "reconcile_failed",
        code=report.error["code"] if report.error else None,
        error=report.error["message"] if report.error else None,
        registered=len(report.registered),
        unregistered=len(report.unregistered),
        left=len(report.left),
        drift=len(report.drift),
        stalled=len(report.stalled),
        samples=report.samples,
    )
    return report


def _remove(
    record: SubscriptionRecord,
    settings: Settings,
    store: EventStore,
    nvgrid: NvGridApi,
    report: ReconcileReport | TeardownReport,
    now: Callable[[], datetime],
) -> None:
    url = _recover_url(record, settings)
    if url is None:
        message = (
            "cannot unregister: its webhook token is no longer configured; put the old token "
            "back at the end of GRIDHOOK_WEBHOOK_TOKENS and run reconcile again"
        )
        _record_failure(store, replace(record, desired=False), message, now())
        report.left.append({"url": record.url, "error": message})
        if isinstance(report, ReconcileReport):
            report.fail("error", "stale_token_missing", message, "restore the old token")
        outcome = (
            "reconcile_failed" if isinstance(report, ReconcileReport) else "teardown_incomplete"
        )
        _logger.error("%s (%s)", message, record.url, extra={"fields": {"outcome": outcome}})
        return
    try:
        nvgrid.unregister_webhook(url)
    except NvGridRejected as exc:
        if _already_absent(exc):
            store.delete_subscription(record.subscription_id)
            report.absent.append(record.url)
            return
        _record_failure(store, replace(record, desired=False), str(exc), now())
        report.left.append({"url": record.url, "error": str(exc)})
        if isinstance(report, ReconcileReport):
            status, code, action = _classify(exc)
            report.fail(status, code, str(exc), action)
        return
    except NvGridError as exc:
        _record_failure(store, replace(record, desired=False), str(exc), now())
        report.left.append({"url": record.url, "error": str(exc)})
        if isinstance(report, ReconcileReport):
            status, code, action = _classify(exc)
            report.fail(status, code, str(exc), action)
        else:
            report.unavailable = report.unavailable or isinstance(exc, NvGridUnavailable)
        return
    store.delete_subscription(record.subscription_id)
    report.unregistered.append(record.url)


def _watts(load: Any) -> float | None:
    if load is None:
        return None
    factor = {"w": 1.0, "kw": 1e3, "mw": 1e6}.get(str(load.unit).lower(), 1.0)
    return float(load.value) * factor


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
) -> list[dict[str, Any]]:
    """Feeds where DPS's current target disagrees with what our received events say.

    A webhook that never arrived shows up here: DPS has an active target (correlation id)
    we never heard of, or a different target value, or DPS is back at the default while
    our last event left the feed ramping down or constrained. Targets that began less than
    ``grace`` ago are skipped: their webhooks may still be on the way.
    """
    found = []
    for tag, status in sorted(dps_status.items()):
        target = getattr(status, "current_target", None)
        started = getattr(target, "start_time", None) if target is not None else None
        if now is not None and started is not None and now - started < grace:
            continue
        load = getattr(target, "target_load", None) if target is not None else None
        dps_corr = (getattr(target, "correlation_id", "") or None) if load is not None else None
        dps_w = _watts(load)
        state = ours.get(tag)
        dps_view = {"correlation_id": dps_corr, "target_w": dps_w}
        our_view = state.to_dict() if state else {"phase": "no events received"}
        problem = None
        if dps_corr is not None:
            if state is None or state.correlation_id != dps_corr:
                problem = (
                    f"DPS has target {dps_corr!r} ({dps_w:g} W) on {tag} but no webhook for it "
                    f"was received (last received: "
                    f"{state.correlation_id if state else 'nothing'})"
                )
            elif state.phase in ("ramping_down", "constrained", "ramping_up") and _differs(
                dps_w, state.target_w
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


_END_OF_RAMP = {"ramping_down": "end_ramp_down", "ramping_up": "end_ramp_up"}


def load_samples(
    dps_status: dict[str, Any], sampled_at: datetime, retention: timedelta
) -> list[LoadSample]:
    """One sample per feed of what GetStatus reported (measured by DPS, not requested)."""
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
    """Feeds whose ramp started more than ``deadline`` ago and has not ended.

    Its end webhook was missed, or DPS stopped mid-ramp; DPS's current calculated load
    (when ``dps_status`` has it) says which is likelier. ``alert_id`` is derived from the
    feed, the correlation id and the start event, so one stall is one alert.
    """
    found = []
    for tag, state in sorted(ours.items()):
        missing = _END_OF_RAMP.get(state.phase)
        if missing is None or now - state.since <= deadline:
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


def _dps_time(nvgrid: NvGridApi, now: Callable[[], datetime]) -> datetime:
    """DPS's clock when it tells us its time (the simulator does), else ours."""
    return nvgrid.server_now() if nvgrid.server_clock_offset is not None else now()


def _store_failed(report: ReconcileReport, step: str, exc: StoreError) -> None:
    action = "the store is unavailable; the run will be retried"
    report.fail("unavailable", "store_unavailable", f"{step}: {exc}", action)


def _observe_feeds(
    report: ReconcileReport,
    settings: Settings,
    store: EventStore,
    nvgrid: NvGridApi,
    now: Callable[[], datetime],
) -> None:
    """Ask DPS for its status once: keep it as load samples and compare it with our
    events (drift); then report ramps that started too long ago and never ended.

    A store failure here is reported (503: Scheduler retries) without hiding what the
    run already did, and one failed step does not skip the others.
    """
    dps_status: dict[str, Any] | None = None
    try:
        dps_status = nvgrid.get_status()
    except NvGridError as exc:
        status, code, action = _classify(exc)
        report.fail(status, code, f"drift check: {exc}", action)
    at = now()
    if dps_status is not None:
        retention = timedelta(days=settings.sample_retention_days)
        try:
            for sample in load_samples(dps_status, _dps_time(nvgrid, now), retention):
                if store.add_sample(sample) is AddOutcome.ACCEPTED:
                    report.samples += 1
        except StoreError as exc:
            _store_failed(report, "storing load samples", exc)
    try:
        ours = current_feed_states(store)
        if dps_status is not None:
            _record_drift(report, settings, store, dps_status, ours, at)
        _record_stalled(report, settings, store, ours, dps_status, at)
    except StoreError as exc:
        _store_failed(report, "drift and stalled-ramp check", exc)


def _record_drift(
    report: ReconcileReport,
    settings: Settings,
    store: EventStore,
    dps_status: dict[str, Any],
    ours: dict[str, FeedState],
    at: datetime,
) -> None:
    grace = timedelta(seconds=settings.drift_grace_seconds)
    for drift in check_drift(dps_status, ours, now=at, grace=grace):
        key = f"{drift['feed_tag']}|{drift['dps']}|{drift['ours'].get('last_event_id')}"
        store.add_drift(
            DriftRecord(
                drift_id=hashlib.sha256(key.encode()).hexdigest()[:24],
                feed_tag=drift["feed_tag"],
                detected_at=at,
                message=drift["message"],
                dps_view=drift["dps"],
                our_view=drift["ours"],
            )
        )
        report.drift.append(drift)
        log.log_event(
            _logger,
            logging.WARNING,
            drift["message"],
            outcome="drift",
            feed_tag=drift["feed_tag"],
            dps=drift["dps"],
            ours=drift["ours"],
        )


def _record_stalled(
    report: ReconcileReport,
    settings: Settings,
    store: EventStore,
    ours: dict[str, FeedState],
    dps_status: dict[str, Any] | None,
    at: datetime,
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
                alert_id=stall["alert_id"],
                feed_tag=stall["feed_tag"],
                correlation_id=stall["correlation_id"],
                since=stall["since"],
                missing=stall["missing"],
                likely_cause=stall["likely_cause"],
                start_event_id=stall["start_event_id"],
            )


@dataclass
class TeardownReport:
    unregistered: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    left: list[dict[str, str]] = field(default_factory=list)
    unavailable: bool = False

    @property
    def clean(self) -> bool:
        return not self.left

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "clean" if self.clean else "incomplete",
            "unregistered": self.unregistered,
            "already_absent": self.absent,
            "left": self.left,
        }


def teardown(
    settings: Settings,
    store: EventStore,
    nvgrid: NvGridApi,
    *,
    now: Callable[[], datetime] = clock.now,
) -> TeardownReport:
    """Unregister every URL this deployment registered, plus the desired one."""
    report = TeardownReport()
    records = {r.subscription_id: r for r in store.subscriptions()}
    if settings.webhook_url:
        desired = desired_subscription(settings)
        records.setdefault(desired.subscription_id, desired.record())
    for record in records.values():
        _remove(record, settings, store, nvgrid, report, now)
    log.log_event(
        _logger,
        logging.INFO if report.clean else logging.ERROR,
        "teardown clean" if report.clean else f"teardown left {len(report.left)} subscription(s)",
        outcome="teardown_ok" if report.clean else "teardown_incomplete",
        unregistered=len(report.unregistered),
        left=len(report.left),
    )
    return report
