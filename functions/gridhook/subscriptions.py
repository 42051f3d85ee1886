"""Subscription lifecycle: keep DPS's webhook registrations equal to what we want, and
remove every registration on teardown. After registering, reconcile looks at the feeds
(``gridhook.observe``: drift, stalled ramps); load samples are ``sample_load``'s.

NvGrid has no "list webhooks" RPC, so DPS's registrations cannot be read back. What is
known comes from two facts: UnregisterWebhook takes only a URL, so registrations are keyed
by URL and re-registering the same URL replaces it (idempotent); and every URL we ever
registered is recorded in the store *before* the RPC (write-ahead), so neither a crash
nor a token rotation can leave a registration we forgot about.

The registered URL carries the current webhook token. The store keeps only the redacted
URL plus a token fingerprint; to unregister an old URL, its token is found again among
the configured ones (which is why a token is retired only after reconcile removed it).

Per site: each site registers ``GRIDHOOK_WEBHOOK_URL/<site>?token=<its current token>``
with its own DPS (the ``default`` site ``GRIDHOOK_WEBHOOK_URL`` itself, as before sites),
and its records, drift and alerts are its own (``SiteHook``; running every site at once is
``gridhook.jobs``').
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gridhook import clock, log
from gridhook.auth import fingerprint
from gridhook.log import redact_url
from gridhook.nvgrid.errors import NvGridError, NvGridRejected, NvGridUnavailable, classify
from gridhook.observe import Observation, observe_feeds
from gridhook.settings import ConfigError, Settings, parse_tokens
from gridhook.sites import DEFAULT_SITE, SiteConfigError
from gridhook.store import EventStore, SubscriptionRecord

__all__ = [
    "DesiredSubscription",
    "ReconcileReport",
    "SiteHook",
    "TeardownReport",
    "desired_subscription",
    "reconcile",
    "site_hook",
    "teardown",
]

#: Where a site's URL must end for ``…/<site>`` to reach the site's receiving path.
_WEBHOOK_PATH = "/nvgrid/webhook"

_logger = log.get_logger("gridhook.subscriptions")


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
class SiteHook:
    """What one site registers with its DPS: its webhook URL (None when
    GRIDHOOK_WEBHOOK_URL is not set) and the tokens its receiving path accepts, the
    current one first; ``token_source`` says where those come from (for messages)."""

    site: str
    url: str | None
    tokens: tuple[str, ...] = field(repr=False)
    events: tuple[str, ...]
    token_source: str

    @property
    def current_token(self) -> str | None:
        return self.tokens[0] if self.tokens else None


def site_hook(settings: Settings, site: str = DEFAULT_SITE) -> SiteHook:
    """``site``'s webhook URL and tokens. ConfigError names the setting, the site and the
    key when its URL cannot reach it or its token file cannot be read.

    Without GRIDHOOK_SITES[_FILE] the ``default`` site's tokens are
    GRIDHOOK_WEBHOOK_TOKENS[_FILE], as before sites; otherwise each site's
    ``webhook_tokens_file``, read now (a rotated file takes effect at the next run)."""
    sites = settings.sites
    entry = sites.get(site)
    url = settings.webhook_url
    if url and not entry.is_default:
        base = url.rstrip("/")
        if not urlsplit(base).path.endswith(_WEBHOOK_PATH):
            raise ConfigError(
                f"GRIDHOOK_WEBHOOK_URL must end with {_WEBHOOK_PATH} for site {site}'s URL "
                f"(…{_WEBHOOK_PATH}/{site}) to reach its receiving path"
            )
        url = f"{base}/{site}"
    if sites.legacy:
        return SiteHook(
            site, url, settings.webhook_tokens, settings.events, "GRIDHOOK_WEBHOOK_TOKENS"
        )
    where = f"{sites.source}: site {site}: webhook_tokens_file"
    tokens: tuple[str, ...] = ()
    if entry.webhook_tokens_file is not None:
        try:
            entry.check_files("webhook_tokens_file")
            raw = Path(entry.webhook_tokens_file).read_text(encoding="utf-8")
        except SiteConfigError as exc:
            raise ConfigError(f"{sites.source}: {exc}") from None
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot read {entry.webhook_tokens_file} ({exc.strerror})"
            ) from None
        tokens = parse_tokens(raw, where)
    if not tokens and not settings.allow_unauthenticated:  # as the receiver refuses to start
        raise ConfigError(
            f"{where}: no webhook token in {entry.webhook_tokens_file}: put the site's token "
            "there (one per line, the current one first)"
        )
    return SiteHook(site, url, tokens, settings.events, f"site {site}'s webhook_tokens_file")


@dataclass(frozen=True)
class DesiredSubscription:
    url: str = field(repr=False)  # carries the token
    redacted_url: str
    token_fingerprint: str | None
    events: tuple[str, ...]
    site: str = DEFAULT_SITE

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
            site=self.site,
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


def desired_subscription(settings: Settings, site: str = DEFAULT_SITE) -> DesiredSubscription:
    """What this deployment wants registered with ``site``'s DPS, from its settings."""
    return _desired(site_hook(settings, site))


def _desired(hook: SiteHook) -> DesiredSubscription:
    if not hook.url:
        raise ConfigError(
            "GRIDHOOK_WEBHOOK_URL is not set: set it to the receiver's public URL, "
            "e.g. https://REGION-PROJECT.cloudfunctions.net/receive_power_event/nvgrid/webhook"
        )
    token = hook.current_token
    url = url_with_token(hook.url, token)
    return DesiredSubscription(
        url=url,
        redacted_url=redact_url(url),
        token_fingerprint=fingerprint(token) if token else None,
        events=hook.events,
        site=hook.site,
    )


def _recover_url(record: SubscriptionRecord, hook: SiteHook) -> str | None:
    """The full URL of a recorded registration, if its token is still configured."""
    if record.token_fingerprint is None:
        return url_with_token(record.url, None)
    for token in hook.tokens:
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
    """What one reconcile run of one site did; ``status`` decides the HTTP answer."""

    site: str = DEFAULT_SITE
    status: str = "ok"  # ok | error (permanent, 200) | unavailable (503)
    registered: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    left: list[dict[str, str]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    stalled: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None

    def absorb(self, seen: Observation) -> None:
        """Take in what observing the feeds found and what failed there."""
        self.drift += seen.drift
        self.stalled += seen.stalled
        for failure in seen.failures:
            self.fail(*failure)

    def fail(self, status: str, code: str, message: str, action: str) -> None:
        # "unavailable" wins over "error": a retry may still fix the run.
        if self.status != "unavailable":
            self.status = status
        self.error = {"code": code, "message": message, "action": action}

    @property
    def outcome(self) -> str:
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "site": self.site,
            "registered": self.registered,
            "unregistered": self.unregistered,
            "already_absent": self.absent,
            "left": self.left,
            "drift": self.drift,
            "stalled": self.stalled,
            "error": self.error,
        }


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
    site: str = DEFAULT_SITE,
    now: Callable[[], datetime] = clock.now,
) -> ReconcileReport:
    """Register what ``site`` wants with its DPS (``nvgrid``), unregister what is stale,
    then look at its feeds: record drift, and report stalled ramps once. Every record it
    reads or writes is ``site``'s."""
    report = ReconcileReport(site=site)
    hook = site_hook(settings, site)
    desired = _desired(hook)
    known = {r.subscription_id: r for r in store.subscriptions(site=site)}
    record = desired.record(known.get(desired.subscription_id))
    # Write-ahead: recorded before DPS hears of it, so teardown can never miss it.
    store.put_subscription(record)
    try:
        nvgrid.register_webhook(desired.url, list(desired.events))
    except NvGridError as exc:
        status, code, action = classify(exc)
        report.fail(status, code, str(exc), action)
        _record_failure(store, record, str(exc), now())
        _logger.error(
            "registering the webhook failed: %s — %s",
            exc,
            action,
            extra={
                "fields": {
                    "outcome": "reconcile_failed",
                    "site": site,
                    "code": code,
                    "url": desired.redacted_url,
                }
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
        _remove(stale, hook, store, nvgrid, report, now)

    report.absorb(observe_feeds(settings, store, nvgrid, now, site))
    log.log_event(
        _logger,
        logging.INFO if report.status == "ok" else logging.ERROR,
        f"reconcile {report.status}",
        outcome="reconcile_ok" if report.status == "ok" else "reconcile_failed",
        site=site,
        code=report.error["code"] if report.error else None,
        error=report.error["message"] if report.error else None,
        registered=len(report.registered),
        unregistered=len(report.unregistered),
        left=len(report.left),
        drift=len(report.drift),
        stalled=len(report.stalled),
    )
    return report


def _remove(
    record: SubscriptionRecord,
    hook: SiteHook,
    store: EventStore,
    nvgrid: NvGridApi,
    report: ReconcileReport | TeardownReport,
    now: Callable[[], datetime],
) -> None:
    url = _recover_url(record, hook)
    if url is None:
        message = (
            "cannot unregister: its webhook token is no longer configured; put the old token "
            f"back at the end of {hook.token_source} and run reconcile again"
        )
        _record_failure(store, replace(record, desired=False), message, now())
        report.left.append({"url": record.url, "error": message})
        if isinstance(report, ReconcileReport):
            report.fail("error", "stale_token_missing", message, "restore the old token")
        outcome = (
            "reconcile_failed" if isinstance(report, ReconcileReport) else "teardown_incomplete"
        )
        _logger.error(
            "%s (%s)",
            message,
            record.url,
            extra={"fields": {"outcome": outcome, "site": hook.site}},
        )
        return
    try:
        nvgrid.unregister_webhook(url)
    except NvGridRejected as exc:
        if _already_absent(exc):
            store.delete_subscription(record.subscription_id, site=hook.site)
            report.absent.append(record.url)
            return
        _record_failure(store, replace(record, desired=False), str(exc), now())
        report.left.append({"url": record.url, "error": str(exc)})
        if isinstance(report, ReconcileReport):
            status, code, action = classify(exc)
            report.fail(status, code, str(exc), action)
        return
    except NvGridError as exc:
        _record_failure(store, replace(record, desired=False), str(exc), now())
        report.left.append({"url": record.url, "error": str(exc)})
        if isinstance(report, ReconcileReport):
            status, code, action = classify(exc)
            report.fail(status, code, str(exc), action)
        else:
            report.unavailable = report.unavailable or isinstance(exc, NvGridUnavailable)
        return
    store.delete_subscription(record.subscription_id, site=hook.site)
    report.unregistered.append(record.url)


@dataclass
class TeardownReport:
    """What one teardown of one site did: ``clean`` when nothing is left registered."""

    site: str = DEFAULT_SITE
    unregistered: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    left: list[dict[str, str]] = field(default_factory=list)
    unavailable: bool = False

    @property
    def clean(self) -> bool:
        return not self.left

    @property
    def outcome(self) -> str:
        """ok when clean; unavailable when DPS or the store could not be reached (a retry
        may finish it); error when what is left needs a person (a retired token)."""
        if self.clean:
            return "ok"
        return "unavailable" if self.unavailable else "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "clean" if self.clean else "incomplete",
            "site": self.site,
            "unregistered": self.unregistered,
            "already_absent": self.absent,
            "left": self.left,
        }


def teardown(
    settings: Settings,
    store: EventStore,
    nvgrid: NvGridApi,
    *,
    site: str = DEFAULT_SITE,
    now: Callable[[], datetime] = clock.now,
) -> TeardownReport:
    """Unregister every URL this deployment registered with ``site``'s DPS, plus the
    desired one."""
    report = TeardownReport(site=site)
    hook = site_hook(settings, site)
    records = {r.subscription_id: r for r in store.subscriptions(site=site)}
    if hook.url:
        desired = _desired(hook)
        records.setdefault(desired.subscription_id, desired.record())
    for record in records.values():
        _remove(record, hook, store, nvgrid, report, now)
    log.log_event(
        _logger,
        logging.INFO if report.clean else logging.ERROR,
        "teardown clean" if report.clean else f"teardown left {len(report.left)} subscription(s)",
        outcome="teardown_ok" if report.clean else "teardown_incomplete",
        site=site,
        unregistered=len(report.unregistered),
        left=len(report.left),
    )
    return report
