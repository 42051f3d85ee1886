"""Webhook registry (whitelist, one registration per URL, event filters) and the dispatcher
that POSTs power events to registered URLs with DPS's concurrency and call timeout, plus the
fault knobs (drop, duplicate, reorder, retry)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from dpsapi.v1 import nvgrid_pb2
from simulator.faults import FaultKnobs
from simulator.sitelog import site_logger

log = logging.getLogger("simulator.webhooks")

PowerEvent = nvgrid_pb2.RegisterWebhookRequest.PowerEvent
EVENT_NAMES: dict[int, str] = {
    nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_UP: "start_ramp_up",
    nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_END_RAMP_UP: "end_ramp_up",
    nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_START_RAMP_DOWN: "start_ramp_down",
    nvgrid_pb2.RegisterWebhookRequest.POWER_EVENT_END_RAMP_DOWN: "end_ramp_down",
}
EVENT_NUMBERS: dict[str, int] = {name: number for number, name in EVENT_NAMES.items()}
NOT_WHITELISTED = "webhook URL not whitelisted"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def redact_url(url: str) -> str:
    """The URL with query values and any userinfo password replaced, safe to log."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            netloc = f"{userinfo.split(':', 1)[0]}:REDACTED@{hostport}"
        query = urlencode(
            [(key, "REDACTED") for key, _ in parse_qsl(parts.query, keep_blank_values=True)],
            safe="",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparseable URL>"


def _split_http_url(url: str) -> SplitResult:
    """Parse and check an http(s) URL with a host; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError("webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("webhook URL has no host")
    _ = parts.port  # raises ValueError for a malformed port
    return parts


@dataclass(frozen=True)
class WhitelistEntry:
    """`scheme://host[:port][/path]`. Without an explicit port, any port of that scheme and
    host matches (so a whitelist entry can cover test servers on ephemeral ports). A path
    matches the same path or anything below it (`/hooks` matches `/hooks` and `/hooks/a`,
    not `/hooksx`); no path, or `/`, matches every path."""

    scheme: str
    host: str
    port: int | None
    path: str
    raw: str

    @classmethod
    def parse(cls, entry: str) -> WhitelistEntry:
        parts = _split_http_url(entry.strip())
        return cls(
            scheme=parts.scheme.lower(),
            host=(parts.hostname or "").lower(),
            port=parts.port,
            path=parts.path,
            raw=entry.strip(),
        )

    def allows(self, url: str, parts: SplitResult) -> bool:
        if url == self.raw:
            return True
        if parts.scheme.lower() != self.scheme or (parts.hostname or "").lower() != self.host:
            return False
        port = parts.port or _DEFAULT_PORTS[parts.scheme.lower()]
        if self.port is not None and port != self.port:
            return False
        prefix = self.path.rstrip("/")
        if not prefix:
            return True
        return parts.path == prefix or parts.path.startswith(prefix + "/")


@dataclass(frozen=True)
class Registration:
    url: str
    events: frozenset[int]  # empty = all events
    registered_at: datetime

    def wants(self, event: int) -> bool:
        return not self.events or event in self.events

    @property
    def event_names(self) -> tuple[str, ...]:
        """Subscribed event names, or () for all events."""
        return tuple(EVENT_NAMES[e] for e in sorted(self.events))


class WebhookRegistry:
    def __init__(self, whitelist: Sequence[str] = ()) -> None:
        self._whitelist = [WhitelistEntry.parse(entry) for entry in whitelist]
        self._registrations: dict[str, Registration] = {}
        self._lock = threading.Lock()

    def register(self, url: str, events: Sequence[int]) -> str | None:
        """Register (or replace) `url`; returns None on success or the diag message."""
        try:
            parts = _split_http_url(url)
        except ValueError as error:
            return str(error)
        if self._whitelist and not any(entry.allows(url, parts) for entry in self._whitelist):
            return NOT_WHITELISTED
        unknown = sorted({e for e in events if e not in EVENT_NAMES and e != 0})
        if unknown:
            return f"unknown power event(s): {', '.join(map(str, unknown))}"
        # POWER_EVENT_UNSPECIFIED (0) anywhere in the list means "all events".
        wanted = frozenset() if 0 in events else frozenset(events)
        with self._lock:
            self._registrations[url] = Registration(url, wanted, datetime.now(UTC))
        return None

    def unregister(self, url: str) -> bool:
        with self._lock:
            return self._registrations.pop(url, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._registrations.clear()

    def registrations(self) -> list[Registration]:
        with self._lock:
            return list(self._registrations.values())

    def subscribers(self, event: int) -> list[Registration]:
        return [r for r in self.registrations() if r.wants(event)]


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver one event to one URL (or the decision not to)."""

    url: str  # as registered, query string included
    payload: dict[str, Any]
    attempt: int
    outcome: str  # "delivered" | "failed" | "dropped"
    status: int | None  # HTTP status, None if no answer
    error: str | None
    duplicate: bool  # this is the extra copy of a duplicated delivery
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def event(self) -> str:
        return str(self.payload.get("event"))


@dataclass(frozen=True)
class _Job:
    url: str
    payload: dict[str, Any]
    body: bytes
    duplicate: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect is a non-200 answer for DPS's purposes; never re-send the POST elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Dispatcher:
    """Fans power events out to subscribed URLs on a bounded thread pool."""

    def __init__(
        self,
        registry: WebhookRegistry,
        faults: FaultKnobs,
        concurrency: int = 32,
        call_timeout: float = 60.0,
        site: str | None = None,
    ) -> None:
        self._registry = registry
        self._faults = faults
        self._call_timeout = call_timeout
        self._log = site_logger(log, site)
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix=f"sim-{site}-webhook" if site else "sim-webhook",
        )
        # No proxies (a developer's http_proxy must not swallow 127.0.0.1) and no redirects.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._stopping = threading.Event()
        self._held: list[_Job] = []
        self._held_since = 0.0
        self._deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        self._lock = threading.Lock()

    # --- producing --------------------------------------------------------------------------

    def publish(self, event: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        for registration in self._registry.subscribers(event):
            job = _Job(registration.url, payload, body)
            reason = self._drop_reason(payload)
            if reason is not None:
                self._log.info(
                    "webhook dropped (fault) url=%s event=%s correlation_id=%s reason=%r",
                    redact_url(job.url),
                    payload["event"],
                    payload.get("correlation_id"),
                    reason,
                )
                self._record(Delivery(job.url, payload, 0, "dropped", None, reason, False))
                continue
            jobs = [job]
            if self._faults.take_duplicate():
                jobs.append(_Job(job.url, payload, body, duplicate=True))
            for one in jobs:
                self._enqueue(one)

    def _drop_reason(self, payload: dict[str, Any]) -> str | None:
        """Why this delivery is dropped (a fault), or None to send it."""
        rule = self._faults.drop_rule_for(payload)
        if rule is not None:
            return f"fault: dropped (rule {rule})"
        return "fault: dropped" if self._faults.take_drop() else None

    def _enqueue(self, job: _Job) -> None:
        if self._faults.reorder_batch <= 0:
            self._submit(job)
            return
        with self._lock:
            if not self._held:
                self._held_since = time.monotonic()
            self._held.append(job)
            full = len(self._held) >= self._faults.reorder_batch
        if full:
            self.flush_held()

    def flush_held(self, force: bool = True) -> None:
        """Send held (reordering) jobs shuffled; without `force`, only once the hold expired."""
        with self._lock:
            if not self._held:
                return
            if not force and time.monotonic() - self._held_since < self._faults.reorder_hold:
                return
            batch, self._held = self._held, []
        for job in self._faults.shuffled(batch):
            self._submit(job)

    def _submit(self, job: _Job) -> None:
        if self._stopping.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the pool was shut down meanwhile
            self._pool.submit(self._deliver, job)

    # --- delivering -------------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        max_attempts = (
            max(1, self._faults.retry_max_attempts) if self._faults.retry_on_failure else 1
        )
        backoff = self._faults.retry_backoff
        for attempt in range(1, max_attempts + 1):
            status, error = self._post(job)
            ok = status == 200
            self._record(
                Delivery(
                    job.url,
                    job.payload,
                    attempt,
                    "delivered" if ok else "failed",
                    status,
                    error,
                    job.duplicate,
                )
            )
            self._log.info(
                "webhook %s url=%s event=%s status=%s attempt=%d%s",
                "delivered" if ok else "failed",
                redact_url(job.url),
                job.payload.get("event"),
                status,
                attempt,
                f" error={error}" if error else "",
            )
            if ok or attempt == max_attempts:
                return
            # Event.wait instead of sleep: a stopping simulator abandons pending retries.
            if self._stopping.wait(backoff):
                return
            backoff *= 2

    def _post(self, job: _Job) -> tuple[int | None, str | None]:
        request = urllib.request.Request(  # noqa: S310 - scheme checked at registration
            job.url,
            data=job.body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "gridhook-sim"},
        )
        try:
            with self._opener.open(request, timeout=self._call_timeout) as response:
                response.read(65536)
                return response.status, None
        except urllib.error.HTTPError as answer:
            answer.close()
            return answer.code, None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return None, str(reason) or type(reason).__name__

    # --- observing --------------------------------------------------------------------------

    def _record(self, delivery: Delivery) -> None:
        with self._changed:
            self._deliveries.append(delivery)
            self._changed.notify_all()

    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for(
        self, predicate: Callable[[list[Delivery]], bool], timeout: float
    ) -> list[Delivery]:
        """Block until predicate(deliveries) is true; TimeoutError with the log otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._deliveries):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"deliveries did not reach the expected state within {timeout}s: "
                        f"{[(d.event, d.outcome, d.status) for d in self._deliveries]}"
                    )
                self._changed.wait(remaining)
            return list(self._deliveries)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._held.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
