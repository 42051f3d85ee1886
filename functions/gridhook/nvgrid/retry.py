"""Deadlines, retries and error translation shared by every NvGrid and AuthService call.

Only UNAVAILABLE and DEADLINE_EXCEEDED are retried: they mean "the call may not have reached
DPS or DPS could not answer in time", and every NvGrid write is safe to repeat (setting the
same target or (un)registering the same URL again has the same effect). Anything else is an
answer, and asking again would get the same one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from .config import NvGridEndpoint
from .errors import (
    NvGridAuthError,
    NvGridCallError,
    NvGridError,
    NvGridTlsError,
    NvGridUnavailable,
)

__all__ = ["RETRYABLE_CODES", "call_with_retry", "translate_rpc_error"]

log = logging.getLogger("gridhook.nvgrid")

T = TypeVar("T")

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

# A certificate or protocol mismatch will not fix itself, so it is reported at once.
_TLS_FAILURE_MARKERS = ("handshake failed", "certificate_verify_failed", "wrong_version_number")


def _is_tls_failure(details: str) -> bool:
    lowered = details.lower()
    return any(marker in lowered for marker in _TLS_FAILURE_MARKERS)


def call_with_retry(
    invoke: Callable[[float], T],
    *,
    endpoint: NvGridEndpoint,
    rpc: str,
    on_unauthenticated: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    uniform: Callable[[float, float], float] = random.uniform,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``invoke(timeout)`` under ``endpoint.policy``; translate failures to NvGrid errors.

    ``on_unauthenticated`` is called (at most once) when the call fails UNAUTHENTICATED; if it
    returns True (e.g. the token was refreshed) the call is repeated once, outside the
    attempt budget, since the first attempt did reach DPS.
    """
    policy = endpoint.policy
    give_up_at = clock() + policy.overall_timeout
    attempt = 0
    reauthenticated = False
    while True:
        attempt += 1
        timeout = max(0.001, min(policy.call_timeout, give_up_at - clock()))
        try:
            return invoke(timeout)
        except grpc.RpcError as exc:
            code = _code(exc)
            details = _details(exc)
            if (
                code is grpc.StatusCode.UNAUTHENTICATED
                and on_unauthenticated is not None
                and not reauthenticated
            ):
                reauthenticated = True
                if on_unauthenticated():
                    log.info(
                        "NvGrid %s at %s: token rejected, retrying with a new one", rpc, endpoint
                    )
                    attempt -= 1  # the repeat does not use up the UNAVAILABLE budget
                    continue
            if code not in RETRYABLE_CODES or _is_tls_failure(details):
                raise translate_rpc_error(
                    exc, endpoint=endpoint, rpc=rpc, attempts=attempt
                ) from None
            # Full jitter: a fleet of clients retrying after a DPS blip spreads out.
            backoff = uniform(
                0.0, min(policy.max_backoff, policy.initial_backoff * 2 ** (attempt - 1))
            )
            remaining = give_up_at - clock()
            if attempt >= policy.max_attempts or remaining <= backoff:
                raise translate_rpc_error(
                    exc, endpoint=endpoint, rpc=rpc, attempts=attempt
                ) from None
            log.warning(
                "NvGrid %s at %s failed %s (attempt %d of %d), retrying in %.2fs",
                rpc,
                endpoint,
                code.name if code else "?",
                attempt,
                policy.max_attempts,
                backoff,
            )
            sleep(backoff)


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def _details(exc: grpc.RpcError) -> str:
    details = getattr(exc, "details", None)
    return (details() or "") if callable(details) else ""


def translate_rpc_error(
    exc: grpc.RpcError, *, endpoint: NvGridEndpoint, rpc: str, attempts: int = 1
) -> NvGridError:
    """The NvGrid exception for a failed RPC, with a message naming the endpoint and the fix."""
    code = _code(exc)
    code_name = code.name if code is not None else "UNKNOWN"
    details = _details(exc)
    where = f"NvGrid {rpc} at {endpoint}"
    address = endpoint.address

    if code in RETRYABLE_CODES and _is_tls_failure(details):
        return NvGridTlsError(
            f"{where}: TLS handshake failed ({details}). Check NVGRID_CA_CERT / --ca-cert-path "
            "points at the CA that signed DPS's certificate and that the host name matches it; "
            "if DPS serves plaintext use NVGRID_TLS=plaintext / --insecure",
            endpoint=address,
            grpc_code=code_name,
            attempts=attempts,
        )
    if code in RETRYABLE_CODES:
        return NvGridUnavailable(
            f"{where}: {code_name} after {attempts} attempt(s) ({details}). Check that DPS is "
            "running and reachable at that address (NVGRID_HOST / NVGRID_PORT), and that "
            "NVGRID_TLS matches how it serves (verify / skip-verify / plaintext); then retry",
            endpoint=address,
            grpc_code=code_name,
            attempts=attempts,
        )
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return NvGridAuthError(
            f"{where}: UNAUTHENTICATED ({details}). Check the NvGrid username and password "
            "(NVGRID_USERNAME / NVGRID_PASSWORD or NVGRID_CREDENTIALS_FILE)",
            endpoint=address,
            grpc_code=code_name,
        )
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return NvGridAuthError(
            f"{where}: PERMISSION_DENIED ({details}). The NvGrid user is authenticated but not "
            "allowed to do this; ask the DPS administrator for the right role",
            endpoint=address,
            grpc_code=code_name,
        )
    if code is grpc.StatusCode.UNIMPLEMENTED:
        hint = "this DPS does not serve that RPC; check the DPS version and that the host is DPS"
    elif code is grpc.StatusCode.INVALID_ARGUMENT:
        hint = "fix the request"
    else:
        hint = "see the DPS logs; retrying will not help until that is fixed"
    return NvGridCallError(
        f"{where}: {code_name} ({details}): {hint}",
        endpoint=address,
        grpc_code=code_name,
        details=details,
    )
