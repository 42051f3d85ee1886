"""receive_power_event: the HTTP contract DPS NvGrid delivers webhooks to.

site (from the path) → authenticate with that site's tokens → bound the body → intake
(parse, validate, event id, normalise: one function shared with quarantine replay) → store
exactly once → answer. 200 only after the store confirmed the write; every other answer is
a JSON error in the envelope of ``gridhook.http`` (ARCHITECTURE.md, "Webhook HTTP
contract"). Requests rejected before the body is read get a streamed response:
functions-framework reads the whole request body into memory after a non-streamed
response, which would load an oversized or unauthenticated body after all. (gunicorn may
still discard the unread bytes to reuse the connection, without keeping them.)

Sites: ``…/nvgrid/webhook/<site>`` delivers to a site, any other path (``/nvgrid/webhook``
itself) to the ``default`` site, as every path did before sites. A site the deployment
does not serve is a 404 naming it. A token is checked against the site's own tokens only,
so another site's valid token is refused exactly as an unknown one is (the same 401).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import flask
from werkzeug.exceptions import ClientDisconnected

from gridhook import clock, http, log, units
from gridhook.auth import ReloadingTokenVerifier, TokenVerifier, presented_tokens
from gridhook.intake import Rejected, RejectReason, Unreadable, read_event
from gridhook.settings import ConfigError, Settings, get_settings, parse_tokens
from gridhook.sites import DEFAULT_SITE, Site, SiteConfigError, UnknownSite
from gridhook.store import (
    AddOutcome,
    EventStore,
    LazyStore,
    QuarantinedPayload,
    StoreError,
    quarantine_id,
)

__all__ = ["Receiver", "check_startup", "handle", "site_of_path", "site_verifiers"]

_logger = log.get_logger("gridhook.receiver")
#: A site's deliveries go to this path followed by ``/<site>``.
_WEBHOOK_PATH = "/nvgrid/webhook/"
#: How much of an unknown site's name an answer or a log line repeats.
_SHOWN_NAME = 80

Verifier = TokenVerifier | ReloadingTokenVerifier


@dataclass(slots=True)
class _Outcome:
    """What one request came to: the answer and the fields of its log line."""

    status: int
    body: dict[str, Any]
    outcome: str
    headers: dict[str, str] | None = None
    body_unread: bool = False
    site: str | None = None  # the site the path names (known or not)
    event: str | None = None
    event_id: str | None = None
    feed_tag: str | None = None
    correlation_id: str | None = None
    compliant: bool | None = None  # accepted events only: a metric counts targets not met
    detail: str | None = None  # for the log line only, never the answer


def _error(
    status: int,
    code: str,
    message: str,
    outcome: str,
    details: Iterable[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> _Outcome:
    body = http.error_body(code, message, details, **(extra or {}))
    return _Outcome(status, body, outcome, **kwargs)


def site_of_path(path: str) -> str:
    """The site a delivery's path names: ``<site>`` in ``…/nvgrid/webhook/<site>``; any
    other path is the ``default`` site's (``/nvgrid/webhook``, and whatever path a
    deployment from before sites registered). Not checked: the caller looks it up."""
    _, found, rest = path.partition(_WEBHOOK_PATH)
    return (rest.rstrip("/") or DEFAULT_SITE) if found else DEFAULT_SITE


def site_verifiers(settings: Settings) -> dict[str, Verifier]:
    """Each site's token verifier, by site name; ConfigError names the site and the key
    (or the variable) when a site's tokens cannot be read or there are none.

    Without sites settings the ``default`` site's tokens are GRIDHOOK_WEBHOOK_TOKENS[_FILE],
    as before. Otherwise each site's ``webhook_tokens_file``: read now (start-up fails
    without it) and re-read as it changes (rotation, site by site).
    """
    if settings.sites.legacy:
        settings.require_webhook_auth()
        return {site.name: _legacy_verifier(settings) for site in settings.sites}
    verifiers = {}
    for site in settings.sites:
        with log.about_site(site.name):  # a token file's first read logs under its site
            verifiers[site.name] = _site_verifier(settings, site)
    return verifiers


def _legacy_verifier(settings: Settings) -> Verifier:
    if settings.webhook_tokens_file:
        return ReloadingTokenVerifier(
            settings.webhook_tokens_file,
            settings.webhook_tokens,
            settings.tokens_reload_seconds,
            lambda raw: parse_tokens(raw, "GRIDHOOK_WEBHOOK_TOKENS_FILE"),
        )
    return TokenVerifier(settings.webhook_tokens)


def _site_verifier(settings: Settings, site: Site) -> Verifier:
    where = f"{settings.sites.source}: site {site.name}: webhook_tokens_file"
    try:
        site.check_files("webhook_tokens_file")
    except SiteConfigError as exc:
        raise ConfigError(f"{settings.sites.source}: {exc}") from None
    path = site.webhook_tokens_file
    if path is None:  # required in a site's table; a default site without it has none
        tokens: tuple[str, ...] = ()
    else:
        try:
            tokens = parse_tokens(Path(path).read_text(encoding="utf-8"), where)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {path} ({exc.strerror})") from None
    if not tokens and not settings.allow_unauthenticated:
        raise ConfigError(
            f"{where}: no webhook token in {path}: put the site's token there (one per line, "
            "the current one first), or set GRIDHOOK_ALLOW_UNAUTHENTICATED=1 to accept its "
            "webhooks without one on purpose"
        )
    if path is None:
        return TokenVerifier(())
    return ReloadingTokenVerifier(
        path, tokens, settings.tokens_reload_seconds, lambda raw: parse_tokens(raw, where)
    )


class Receiver:
    """The webhook receiver: settings, each site's token verifier and a store, built once."""

    def __init__(self, settings: Settings, store: EventStore | None = None) -> None:
        self.settings = settings
        self._verifiers = site_verifiers(settings)
        self._store = LazyStore(
            settings.store_url, timeout_seconds=settings.store_timeout_seconds, store=store
        )

    def store(self) -> EventStore:
        return self._store.get()

    def handle(self, request: flask.Request) -> flask.Response:
        name = site_of_path(request.path)
        # Every line logged meanwhile names the path's site (a token file's reload too).
        with log.about_site(name[:63]):
            return self._handle(request, name)

    def _handle(self, request: flask.Request, name: str) -> flask.Response:
        started = time.perf_counter()
        try:
            result = self._process(request, name)
        except Exception:
            # Nothing may answer 500 or HTML; an unknown failure is treated like a store
            # outage, so the sender keeps the event and retries.
            _logger.exception("unexpected error while receiving a webhook")
            result = _error(
                503,
                "internal_error",
                "the receiver failed unexpectedly; retry later",
                "internal_error",
                headers=http.RetryAfter.REQUEST.header(),
            )
        self._log(request, result, started)
        return _response(result)

    def _process(self, request: flask.Request, name: str) -> _Outcome:
        """``name``: the site the path names (known or not)."""
        if request.method != "POST":
            return _error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed; DPS webhooks are delivered with POST",
                "method_not_allowed",
                headers={"Allow": "POST"},
                body_unread=True,
                site=name[:_SHOWN_NAME],
            )
        try:
            site = self.settings.sites.get(name)
        except UnknownSite:
            return _unknown_site(name)
        outcome = self._receive(request, site.name)
        outcome.site = site.name
        return outcome

    def _receive(self, request: flask.Request, site: str) -> _Outcome:
        """A delivery to a site this deployment serves."""
        # Only this site's tokens: another site's token is as unknown here as any other.
        verifier = self._verifiers[site]
        if verifier.enabled and not verifier.verify(
            presented_tokens(request.headers.get("Authorization"), request.args)
        ):
            return _error(
                401,
                "unauthorized",
                "missing or wrong webhook token: send it as 'Authorization: Bearer <token>', "
                "as the password of Basic auth, or as the 'token' query parameter",
                "unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="gridhook"'},
                body_unread=True,
            )
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if request.mimetype != http.JSON or charset not in ("utf-8", "utf8"):
            return _error(
                415,
                "unsupported_media_type",
                f"Content-Type must be application/json, not {request.content_type or 'absent'!r}",
                "unsupported_media_type",
                body_unread=True,
            )
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _too_large(limit)
        try:
            raw = _read_bounded(request, limit)
        except ClientDisconnected:
            raw = b""
        if raw is None:
            return _too_large(limit)
        if request.content_length is not None and len(raw) < request.content_length:
            # The sender went away mid-body; even a prefix that parses is not the event.
            message = "the body ended before its Content-Length; nothing was stored"
            return _error(400, "incomplete_body", message, "invalid")
        received_at = clock.now()
        intake = read_event(raw, received_at, site)
        if isinstance(intake, Unreadable):
            return _error(400, intake.code, intake.message, "invalid")
        if isinstance(intake, Rejected):
            return self._reject(raw, intake, received_at, site)
        event = intake.event
        eid = event.event_id
        fields: dict[str, Any] = {
            "event": event.event,
            "event_id": eid,
            "feed_tag": event.feed_tag,
            "correlation_id": event.correlation_id,
        }
        try:
            outcome = self.store().add_event(event)
        except (StoreError, ValueError) as exc:
            return _error(
                503,
                "store_unavailable",
                "the event store is unavailable; nothing was stored, retry later",
                "store_unavailable",
                headers=http.RetryAfter.REQUEST.header(),
                detail=str(exc),
                **fields,
            )
        return _Outcome(
            200,
            {"status": outcome.value, "event_id": eid},
            outcome.value,
            # Only on the first receipt: a redelivery must not count a missed target twice.
            compliant=event.compliant if outcome is AddOutcome.ACCEPTED else None,
            **fields,
        )

    def _reject(self, raw: bytes, rejected: Rejected, received_at: datetime, site: str) -> _Outcome:
        """422, and the body quarantined (its id in the answer, when it could be kept)."""
        details = [problem.to_dict() for problem in rejected.problems]
        kept_as, failure = self._quarantine(raw, rejected, details, received_at, site)
        log_detail = [failure] if failure else []
        if rejected.reason is RejectReason.CANNOT_NORMALISE:
            # The schema admits what the code cannot read: the operator must hear of it.
            text = "; ".join(f"{d['path']}: {d['message']}" for d in details)
            log_detail.insert(0, f"{rejected.reason}: {text}")
        return _error(
            422,
            rejected.reason.value,
            rejected.message,
            "rejected",
            details=details,
            extra={"quarantine_id": kept_as} if kept_as else None,
            event=rejected.event_type,
            detail="; ".join(log_detail) or None,
        )

    def _quarantine(
        self,
        raw: bytes,
        rejected: Rejected,
        details: list[dict[str, str]],
        received_at: datetime,
        site: str,
    ) -> tuple[str | None, str | None]:
        """Keep a rejected payload for diagnosis and replay, in the site it was delivered
        to (a replay stores its event there): (its id, or why that failed)."""
        digest = hashlib.sha256(raw).hexdigest()
        item = QuarantinedPayload(
            # Keyed by content and site: a rejected payload sent again is the same record,
            # and the store keeps its first receipt (what a replay stores as its receipt time).
            quarantine_id=quarantine_id(raw, site),
            received_at=received_at,
            expires_at=received_at + timedelta(days=self.settings.quarantine_ttl_days),
            reason=rejected.reason.value,
            errors=details[:50],
            # The whole body (within the body limit), so it can be replayed; a backend
            # that cannot hold it keeps a prefix and marks it truncated.
            body=raw.decode("utf-8", "replace"),
            body_bytes=len(raw),
            body_sha256=digest,
            site=site,
        )
        try:
            self.store().quarantine(item)
        except (StoreError, ValueError) as exc:
            # The sender still gets its 422: quarantine is for diagnosis, not delivery.
            return None, f"could not quarantine the payload: {exc}"
        return item.quarantine_id, None

    def _log(self, request: flask.Request, result: _Outcome, started: float) -> None:
        log.log_request(
            _logger,
            request,
            message=f"webhook {result.outcome}",
            status=result.status,
            outcome=result.outcome,
            started=started,
            site=result.site,
            event=result.event,
            event_id=result.event_id,
            feed_tag=result.feed_tag,
            correlation_id=result.correlation_id,
            compliant=result.compliant,
            error=result.detail,
        )


def _unknown_site(name: str) -> _Outcome:
    """404 for a path naming a site this deployment does not serve. Which sites it does
    serve is not said: the caller has not authenticated."""
    shown = name[:_SHOWN_NAME]
    # Logged as "invalid" like any delivery that cannot be taken: a misdirected URL.
    return _error(
        404,
        "unknown_site",
        f"no site {shown!r} here: deliver each site's webhooks to /nvgrid/webhook/<site>, "
        "a site this deployment serves (/nvgrid/webhook for its default site)",
        "invalid",
        extra={"site": shown},
        body_unread=True,
        site=shown,
        detail=f"unknown site {shown!r}",
    )


def _too_large(limit: int) -> _Outcome:
    return _error(
        413,
        "payload_too_large",
        f"body exceeds the {limit}-byte limit",
        "too_large",
        body_unread=True,
    )


def _read_bounded(request: flask.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (never reading past limit + 1)."""
    stream = request.stream
    chunks: list[bytes] = []
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    raw = b"".join(chunks)
    return None if len(raw) > limit else raw


def _response(result: _Outcome) -> flask.Response:
    # A streamed answer stops functions-framework from reading an unread request body.
    body = json.dumps(result.body, ensure_ascii=False)
    return http.answer(result.status, body, headers=result.headers, stream=result.body_unread)


_receiver: Receiver | None = None
_receiver_lock = threading.Lock()


def get_receiver() -> Receiver:
    """The process-wide receiver, built on first use from the environment settings."""
    global _receiver
    if _receiver is None:
        with _receiver_lock:
            if _receiver is None:
                settings = get_settings()
                log.configure(settings.log_level)
                clock.configure(settings.dev_clock)
                _receiver = Receiver(settings)
    return _receiver


def check_startup() -> None:
    """Validate settings at cold start; refuse to start without each site's webhook token
    (each site's token file is read: the only site files the receiver needs)."""
    settings = get_settings()
    verifiers = site_verifiers(settings)
    log.configure(settings.log_level)
    clock.use(settings.dev_clock, _logger, "receipt times")
    units.watts_per_unit()  # a schema file without its units table fails start-up, naming it
    for name, verifier in verifiers.items():
        if not verifier.enabled:
            _logger.warning(
                "GRIDHOOK_ALLOW_UNAUTHENTICATED=1: accepting webhooks without a token; "
                "anyone who can reach this URL can store events",
                extra={"fields": {"site": name}},
            )


def handle(request: flask.Request) -> flask.Response:
    """Entry point body for ``receive_power_event``."""
    return get_receiver().handle(request)
