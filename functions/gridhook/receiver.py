"""receive_power_event: the HTTP contract DPS NvGrid delivers webhooks to.

authenticate → bound the body → intake (parse, validate, event id, normalise: one
function shared with quarantine replay) → store exactly once → answer. 200 only after the
store confirmed the write; every other answer is a JSON error in the envelope of
``gridhook.http`` (ARCHITECTURE.md, "Webhook HTTP contract"). Requests rejected before the body is
read get a streamed response: functions-framework reads the whole request body into
memory after a non-streamed response, which would load an oversized or unauthenticated
body after all. (gunicorn may still discard the unread bytes to reuse the connection,
without keeping them.)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import flask
from werkzeug.exceptions import ClientDisconnected

from gridhook import clock, http, log, units
from gridhook.auth import ReloadingTokenVerifier, TokenVerifier, presented_tokens
from gridhook.intake import Rejected, RejectReason, Unreadable, read_event
from gridhook.settings import Settings, get_settings, parse_tokens
from gridhook.store import AddOutcome, EventStore, LazyStore, QuarantinedPayload, StoreError

__all__ = ["Receiver", "check_startup", "handle"]

_logger = log.get_logger("gridhook.receiver")


@dataclass(slots=True)
class _Outcome:
    """What one request came to: the answer and the fields of its log line."""

    status: int
    body: dict[str, Any]
    outcome: str
    headers: dict[str, str] | None = None
    body_unread: bool = False
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


class Receiver:
    """The webhook receiver: settings, a token verifier and a store, built once."""

    def __init__(self, settings: Settings, store: EventStore | None = None) -> None:
        settings.require_webhook_auth()
        self.settings = settings
        self._verifier: TokenVerifier | ReloadingTokenVerifier
        if settings.webhook_tokens_file:
            self._verifier = ReloadingTokenVerifier(
                settings.webhook_tokens_file,
                settings.webhook_tokens,
                settings.tokens_reload_seconds,
                lambda raw: parse_tokens(raw, "GRIDHOOK_WEBHOOK_TOKENS_FILE"),
            )
        else:
            self._verifier = TokenVerifier(settings.webhook_tokens)
        self._store = LazyStore(
            settings.store_url, timeout_seconds=settings.store_timeout_seconds, store=store
        )

    def store(self) -> EventStore:
        return self._store.get()

    def handle(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        try:
            result = self._process(request)
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

    def _process(self, request: flask.Request) -> _Outcome:
        if request.method != "POST":
            return _error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed; DPS webhooks are delivered with POST",
                "method_not_allowed",
                headers={"Allow": "POST"},
                body_unread=True,
            )
        if self._verifier.enabled and not self._verifier.verify(
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
        intake = read_event(raw, received_at)
        if isinstance(intake, Unreadable):
            return _error(400, intake.code, intake.message, "invalid")
        if isinstance(intake, Rejected):
            return self._reject(raw, intake, received_at)
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

    def _reject(self, raw: bytes, rejected: Rejected, received_at: datetime) -> _Outcome:
        """422, and the body quarantined (its id in the answer, when it could be kept)."""
        details = [problem.to_dict() for problem in rejected.problems]
        quarantine_id, failure = self._quarantine(raw, rejected, details, received_at)
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
            extra={"quarantine_id": quarantine_id} if quarantine_id else None,
            event=rejected.event_type,
            detail="; ".join(log_detail) or None,
        )

    def _quarantine(
        self,
        raw: bytes,
        rejected: Rejected,
        details: list[dict[str, str]],
        received_at: datetime,
    ) -> tuple[str | None, str | None]:
        """Keep a rejected payload for diagnosis and replay: (its id, or why that failed)."""
        digest = hashlib.sha256(raw).hexdigest()
        item = QuarantinedPayload(
            # Keyed by content: a rejected payload sent again is the same record, and the
            # store keeps its first receipt (what a replay stores as the receipt time).
            quarantine_id=digest[:32],
            received_at=received_at,
            expires_at=received_at + timedelta(days=self.settings.quarantine_ttl_days),
            reason=rejected.reason.value,
            errors=details[:50],
            # The whole body (within the body limit), so it can be replayed; a backend
            # that cannot hold it keeps a prefix and marks it truncated.
            body=raw.decode("utf-8", "replace"),
            body_bytes=len(raw),
            body_sha256=digest,
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
            event=result.event,
            event_id=result.event_id,
            feed_tag=result.feed_tag,
            correlation_id=result.correlation_id,
            compliant=result.compliant,
            error=result.detail,
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
    """Validate settings at cold start; refuse to start without a webhook token."""
    settings = get_settings()
    settings.require_webhook_auth()
    log.configure(settings.log_level)
    clock.use(settings.dev_clock, _logger, "receipt times")
    units.watts_per_unit()  # a schema file without its units table fails start-up, naming it
    if not settings.webhook_tokens:
        _logger.warning(
            "GRIDHOOK_ALLOW_UNAUTHENTICATED=1: accepting webhooks without a token; "
            "anyone who can reach this URL can store events"
        )


def handle(request: flask.Request) -> flask.Response:
    """Entry point body for ``receive_power_event``."""
    return get_receiver().handle(request)
