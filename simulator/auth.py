"""Users, access tokens that expire, and refresh tokens that rotate."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class _Grant:
    username: str
    expires_at: float  # time.monotonic()


class TokenAuthority:
    """Issues opaque bearer tokens. Expiry uses real (not simulated) time: token lifetimes are
    a client concern and must not race the simulated clock."""

    def __init__(self, users: Mapping[str, str], token_ttl: float, refresh_token_ttl: float):
        self._users = dict(users)
        self.token_ttl = token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def check_password(self, username: str, password: str) -> bool:
        expected = self._users.get(username)
        # Compare even for unknown users so timing does not reveal which names exist.
        candidate = (expected if expected is not None else "\0").encode()
        return hmac.compare_digest(candidate, password.encode()) and expected is not None

    def issue(self, username: str) -> tuple[str, str]:
        """New (access_token, refresh_token) for `username`."""
        now = time.monotonic()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired(now)
            self._access[access] = _Grant(username, now + self.token_ttl)
            self._refresh[refresh] = _Grant(username, now + self.refresh_token_ttl)
        return access, refresh

    def refresh(self, refresh_token: str) -> tuple[str, str] | None:
        """Rotate: the refresh token is single-use; None if unknown or expired."""
        with self._lock:
            grant = self._refresh.pop(refresh_token, None)
        if grant is None or grant.expires_at <= time.monotonic():
            return None
        return self.issue(grant.username)

    def user_for(self, access_token: str) -> str | None:
        """The user an unexpired access token belongs to, else None."""
        with self._lock:
            grant = self._access.get(access_token)
        if grant is None or grant.expires_at <= time.monotonic():
            return None
        return grant.username

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired now (refresh tokens stay valid)."""
        with self._lock:
            self._access = {t: _Grant(g.username, 0.0) for t, g in self._access.items()}

    def revoke_all(self) -> None:
        """Forget every token (as a restarted DPS would)."""
        with self._lock:
            self._access.clear()
            self._refresh.clear()

    def _drop_expired(self, now: float) -> None:
        # Called under the lock, so long-running simulators do not accumulate dead tokens.
        self._access = {t: g for t, g in self._access.items() if g.expires_at > now}
        self._refresh = {t: g for t, g in self._refresh.items() if g.expires_at > now}
