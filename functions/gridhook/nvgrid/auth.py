"""Bearer tokens for NvGrid calls: log in, refresh before expiry when known, recover on rejection.

DPS's ``TokenResponse`` carries no lifetime, so expiry is known only when the access token is a
JWT with an ``exp`` claim (or the response has an ``expires_in`` field, as some builds might);
otherwise the token is used until DPS answers UNAUTHENTICATED, then refreshed once and the call
repeated. A failed refresh (refresh token expired, rotated or unknown) falls back to a fresh
password login. Tokens and passwords are never logged or put in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from dpsapi.v1 import auth_pb2, auth_pb2_grpc

from .config import Credentials, NvGridEndpoint
from .errors import NvGridAuthError, NvGridCallError
from .retry import call_with_retry

__all__ = ["TokenManager", "bearer_metadata"]

log = logging.getLogger("gridhook.nvgrid")


def bearer_metadata(token: str) -> list[tuple[str, str]]:
    """The gRPC metadata that authenticates one call."""
    return [("authorization", f"Bearer {token}")]


class TokenManager:
    """Holds one access + refresh token pair for a channel; safe to share between threads."""

    def __init__(
        self,
        channel: grpc.Channel,
        credentials: Credentials,
        endpoint: NvGridEndpoint,
        *,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._credentials = credentials
        self._endpoint = endpoint
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()  # one login/refresh at a time; the others wait and reuse
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at: float | None = None  # wall-clock seconds, when known

    def access_token(self) -> str:
        """A token to call with: the current one, or a new one if none or about to expire."""
        with self._lock:
            if self._access is None:
                self._login()
            elif self._expires_at is not None and (
                self._clock() >= self._expires_at - self._refresh_margin
            ):
                self._refresh_or_login()
            assert self._access is not None
            return self._access

    def recover_from_rejection(self, rejected_token: str) -> bool:
        """DPS answered UNAUTHENTICATED to ``rejected_token``: get a new one. True if we did.

        If another thread already replaced that token, its replacement is used as is.
        """
        with self._lock:
            if self._access != rejected_token:
                return True
            self._refresh_or_login()
            return True

    def login(self) -> str:
        """Log in with the password now (ignoring any held token) and return the access token."""
        with self._lock:
            self._login()
            assert self._access is not None
            return self._access

    # --- under self._lock --------------------------------------------------------------------

    def _refresh_or_login(self) -> None:
        if self._refresh:
            try:
                self._store(
                    self._call(
                        "RefreshToken", auth_pb2.RefreshTokenRequest(refresh_token=self._refresh)
                    )
                )
                log.info("NvGrid access token refreshed for %s", self._endpoint)
                return
            except (NvGridAuthError, NvGridCallError):
                # Refresh tokens expire and rotate; the password still works, so log in again.
                log.info("NvGrid refresh token rejected by %s; logging in again", self._endpoint)
        self._login()

    def _login(self) -> None:
        request = auth_pb2.TokenRequest()
        request.password_credential.username = self._credentials.username
        request.password_credential.password = self._credentials.password
        try:
            self._store(self._call("Token", request))
        except NvGridAuthError as exc:
            raise NvGridAuthError(
                f"NvGrid at {self._endpoint} rejected the login of user "
                f"{self._credentials.username!r} ({exc.grpc_code}). Check NVGRID_USERNAME / "
                "NVGRID_PASSWORD (or NVGRID_CREDENTIALS_FILE, or --username/--password)",
                endpoint=self._endpoint.address,
                grpc_code=exc.grpc_code,
            ) from None
        log.info("NvGrid login for %s at %s", self._credentials.username, self._endpoint)

    def _call(self, rpc: str, request: Any) -> Any:
        method = getattr(self._stub, rpc)
        return call_with_retry(
            lambda timeout: method(request, timeout=timeout),
            endpoint=self._endpoint,
            rpc=f"AuthService.{rpc}",
            sleep=self._sleep,
        )

    def _store(self, response: Any) -> None:
        if not response.access_token:
            raise NvGridAuthError(
                f"NvGrid at {self._endpoint} answered the login without an access token; "
                "check that the host really is DPS",
                endpoint=self._endpoint.address,
            )
        self._access = response.access_token
        # Some servers do not rotate refresh tokens; keep the old one then.
        self._refresh = response.refresh_token or self._refresh
        self._expires_at = _expiry(response, self._clock())


def _expiry(response: Any, now: float) -> float | None:
    """When the access token expires (wall-clock seconds), if the server lets us know."""
    fields = response.DESCRIPTOR.fields_by_name
    if "expires_in" in fields:  # not in DPS's published proto; honoured if a build adds it
        seconds = getattr(response, "expires_in", 0)
        seconds = getattr(seconds, "seconds", seconds)  # int seconds or a Duration
        if seconds:
            return now + float(seconds)
    return _jwt_expiry(response.access_token)


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified: it only schedules our refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
