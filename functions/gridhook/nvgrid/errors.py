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
