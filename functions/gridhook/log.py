"""Structured logs: one JSON object per line, in Cloud Logging's shape.

Cloud Logging turns a JSON line on stdout into a structured entry, ``severity`` and
``message`` included, so the log-based metrics can filter on ``jsonPayload.outcome``.
Nothing secret is passed here: callers log redacted URLs and never tokens.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["about_site", "configure", "get_logger", "log_event", "log_request", "redact_url"]

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


# The site the work of this thread (or task) concerns: see about_site.
_current_site: ContextVar[str | None] = ContextVar("gridhook_log_site", default=None)


class JsonFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging JSON line; ``extra={"fields": {...}}`` adds keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update({k: v for k, v in fields.items() if v is not None})
        # Formatted in the thread that logged (StreamHandler): its about_site, if any.
        site = _current_site.get()
        if site is not None and "site" not in entry and "sites" not in entry:
            entry["site"] = site
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


_configured = False


@contextlib.contextmanager
def about_site(name: str) -> Iterator[None]:
    """Every gridhook log line written inside the block, in this thread, names ``name`` as its
    site unless it names one itself: so the lines of code that knows nothing of sites (the
    NvGrid client's retries and logins, a token file's reload) still say which site they
    concern, which the log metrics' ``site`` label is taken from."""
    token = _current_site.set(name)
    try:
        yield
    finally:
        _current_site.reset(token)


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send gridhook's logs to stdout (or ``stream``) as JSON lines (idempotent)."""
    global _configured
    logger = logging.getLogger("gridhook")
    logger.setLevel(level)
    if _configured:
        return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    _configured = True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("gridhook") else f"gridhook.{name}")


def log_event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log ``message`` with structured ``fields`` (None values are left out)."""
    logger.log(level, message, extra={"fields": fields})


def log_request(
    logger: logging.Logger,
    request: Any,
    *,
    message: str,
    status: int,
    outcome: str,
    started: float,
    **fields: Any,
) -> None:
    """The one log line of an HTTP request: its outcome, ``fields``, latency since
    ``started`` (a ``time.perf_counter()``) and Cloud Logging's ``httpRequest``, with
    the URL redacted. INFO below 400, WARNING for 4xx, ERROR for 5xx."""
    level = logging.INFO if status < 400 else logging.ERROR if status >= 500 else logging.WARNING
    log_event(
        logger,
        level,
        message,
        outcome=outcome,
        status=status,
        **fields,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        httpRequest={
            "requestMethod": request.method,
            # Only a query string can carry a secret; skip the redaction work without one.
            "requestUrl": redact_url(request.url) if request.query_string else request.path,
            "status": status,
            "userAgent": request.user_agent.string or None,
        },
    )


def redact_url(url: str) -> str:
    """The URL with every query value and any password replaced, safe to log or store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED@" + netloc.rsplit("@", 1)[1]
    query = urlencode([(k, "REDACTED") for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
