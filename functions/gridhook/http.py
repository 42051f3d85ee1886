"""JSON answers for the errors the web framework raises before our code runs.

functions-framework answers some paths itself (``/robots.txt``, ``/favicon.ico``) and
would render HTML for them and for any crash; these handlers keep every answer JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

__all__ = ["install_error_handlers"]

_logger = logging.getLogger("gridhook.http")


def _json(status: int, code: str, message: str) -> flask.Response:
    response = flask.jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> flask.Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    return _json(exc.code or 500, code, exc.description or exc.name or "error")


def _unexpected(exc: Exception) -> flask.Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    _logger.exception("unhandled error outside the receiver")
    response = _json(503, "internal_error", "unexpected failure; retry later")
    response.headers["Retry-After"] = "5"
    return response


def install_error_handlers(errorhandler: Callable[..., Any]) -> None:
    """Register JSON handlers with ``functions_framework.errorhandler`` (a no-op outside it)."""
    errorhandler(HTTPException)(_http_error)
    errorhandler(Exception)(_unexpected)
