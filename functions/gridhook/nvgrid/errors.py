"""The failures an NvGrid call can end in, one class each, with a message that says what to do.

Every message names the endpoint (``host:port``) and never carries a password or a token:
gRPC status details come from the server and are included, our own credentials never are.
This module imports nothing heavy, so callers can catch these errors without importing grpc.
"""

from __future__ import annotations

from collections.abc import Sequence

from .models import ResponseDetail

__all__ = [
    "NvGridAuthError",
    "NvGridCallError",
    "NvGridConfigError",
    "NvGridError",
    "NvGridRejected",
    "NvGridTlsError",
    "NvGridUnavailable",
    "classify",
]


class NvGridError(Exception):
    """Base class: something went wrong talking to (or configuring the talk to) DPS NvGrid."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class NvGridConfigError(NvGridError, ValueError):
    """The endpoint, TLS settings or credentials are missing or invalid; nothing was sent."""


class NvGridUnavailable(NvGridError):
    """DPS could not be reached or did not answer in time, even after retrying."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        grpc_code: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.grpc_code = grpc_code
        self.attempts = attempts


class NvGridTlsError(NvGridUnavailable):
    """The TLS handshake failed (wrong CA, wrong host name, TLS vs plaintext); not retried."""


class NvGridAuthError(NvGridError):
    """DPS refused our credentials or token (UNAUTHENTICATED / PERMISSION_DENIED)."""

    def __init__(
        self, message: str, *, endpoint: str | None = None, grpc_code: str | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.grpc_code = grpc_code


class NvGridCallError(NvGridError):
    """DPS answered an RPC with a gRPC error that retrying will not fix (e.g. INVALID_ARGUMENT)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        grpc_code: str | None = None,
        details: str = "",
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.grpc_code = grpc_code
        self.details = details


class NvGridRejected(NvGridError):
    """The RPC went through but DPS answered ``STATUS_CODE_ERROR``; ``diag_msg`` says why."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        rpc: str = "",
        diag_msg: str = "",
        details: Sequence[ResponseDetail] = (),
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.rpc = rpc
        self.diag_msg = diag_msg
        self.details = tuple(details)


def classify(exc: NvGridError) -> tuple[str, str, str]:
    """(status, code, what to do) for an NvGrid failure: status is "unavailable" when a
    retry may fix it (the job answers 503), else "error" (permanent until fixed)."""
    if isinstance(exc, NvGridUnavailable):
        return "unavailable", "nvgrid_unavailable", "DPS is unreachable; the run will be retried"
    if isinstance(exc, NvGridAuthError):
        return (
            "error",
            "nvgrid_auth",
            "DPS refused the credentials: fix the site's NvGrid credentials secret (its "
            "nvgrid_credentials_file; one site without GRIDHOOK_SITES: NVGRID_CREDENTIALS_FILE "
            "or NVGRID_USERNAME/NVGRID_PASSWORD)",
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
        return "error", "nvgrid_config", "fix the site's NvGrid settings the message names"
    if isinstance(exc, NvGridCallError):
        return "error", "nvgrid_call", "DPS refused the call; check the NvGrid API version"
    return "error", "nvgrid_error", "see the message"
