"""The HTTP plumbing every gridhook function shares.

- one JSON error envelope, ``{"error": {"code", "message", "details", …}}``;
- one ``Retry-After`` policy (:class:`RetryAfter`), a named wait per kind of answer;
- answers that are never cached (``Cache-Control: no-store``);
- JSON answers for the errors the web framework raises before our code runs:
  functions-framework answers ``/robots.txt`` and ``/favicon.ico`` itself, and would
  render HTML for them and for any crash.

Used by the receiver, ``power_report`` (report_http) and the jobs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

__all__ = [
    "JSON",
    "RetryAfter",
    "answer",
    "error_answer",
    "error_body",
    "install_error_handlers",
]

JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store"}
_logger = logging.getLogger("gridhook.http")


class RetryAfter(IntEnum):
    """How long a 503 asks its caller to wait, in seconds: one named wait per kind of answer.

    REQUEST: a request our store or instance failed to serve (a webhook delivery, a report,
    an unexpected error). Such blips pass in seconds, and a webhook retried late is a
    curtailment seen late, so ask for a prompt retry.

    JOB: a scheduled job (reconcile, teardown) that could not reach DPS or the store for a
    whole run, each call already retried within the run's budget. Cloud Scheduler's own
    retry waits at least 30 s (``scheduler_min_backoff`` in infra/terraform); a person or
    script calling the job by hand is asked to wait as long, not to hammer DPS sooner.
    """

    REQUEST = 5
    JOB = 30

    def header(self) -> dict[str, str]:
        return {"Retry-After": str(int(self))}


def error_body(
    code: str, message: str, details: Iterable[Mapping[str, Any]] = (), **extra: Any
) -> dict[str, Any]:
    """The one error envelope: a machine-readable code, what to do, and the particulars.

    ``details`` is always present (a list, maybe empty); ``extra`` adds members beside
    them (the 422's ``quarantine_id``).
    """
    return {"error": {"code": code, "message": message, "details": list(details), **extra}}


def answer(
    status: int,
    body: str | bytes,
    *,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
) -> flask.Response:
    """An answer that is never cached.

    ``stream=True`` sends the body as a stream (with its Content-Length): after a streamed
    response, functions-framework does not read the request body, which an answer given
    before reading it (an oversized or unauthenticated request) relies on.
    """
    data = body.encode("utf-8") if isinstance(body, str) else body
    all_headers = {**(headers or {}), **_NO_STORE}
    if stream:
        all_headers["Content-Length"] = str(len(data))
        return flask.Response(iter([data]), status, all_headers, content_type=content_type)
    return flask.Response(data, status, all_headers, content_type=content_type)


def error_answer(
    status: int,
    code: str,
    message: str,
    details: Iterable[Mapping[str, Any]] = (),
    *,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    **extra: Any,
) -> flask.Response:
    """A JSON error answer in the one envelope."""
    body = json.dumps(error_body(code, message, details, **extra), ensure_ascii=False)
    return answer(status, body, headers=headers, stream=stream)


def _http_error(exc: HTTPException) -> flask.Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    if exc.code == 404:
        # The framework's own paths (/robots.txt, /favicon.ico) answer like any unknown path.
        message = f"no such path: {flask.request.path}"
    else:
        message = exc.description or exc.name or "error"
    return error_answer(exc.code or 500, code, message)


def _unexpected(exc: Exception) -> flask.Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    _logger.exception("unhandled error outside the receiver")
    message = "unexpected failure; retry later"
    return error_answer(503, "internal_error", message, headers=RetryAfter.REQUEST.header())


def install_error_handlers(errorhandler: Callable[..., Any]) -> None:
    """Register JSON handlers with ``functions_framework.errorhandler`` (a no-op outside it)."""
    errorhandler(HTTPException)(_http_error)
    errorhandler(Exception)(_unexpected)
