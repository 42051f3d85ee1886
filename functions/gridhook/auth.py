"""Webhook authentication: a shared token, wherever the sender can put it.

DPS cannot mint Google identity tokens, and nothing public says it sends auth headers,
so the token may come as ``Authorization: Bearer``, as the password of
``Authorization: Basic`` (a URL like ``https://user:TOKEN@host/…``), or as the ``token``
query parameter of the registered URL. Comparison is in constant time, over SHA-256
digests so that the token's length does not leak either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping

__all__ = ["ReloadingTokenVerifier", "TokenVerifier", "fingerprint", "presented_tokens"]

_logger = logging.getLogger("gridhook.auth")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, safe to log and store."""
    return hashlib.sha256(b"gridhook-token:" + token.encode()).hexdigest()[:12]


def presented_tokens(authorization: str | None, query: Mapping[str, str]) -> list[str]:
    """Every token the request presents, from each carrier."""
    tokens: list[str] = []
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and credentials:
            tokens.append(credentials)
        elif scheme == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            _, sep, password = decoded.partition(":")
            if sep and password:
                tokens.append(password)
    query_token = query.get("token")
    if query_token:
        tokens.append(query_token)
    return tokens


class TokenVerifier:
    """Checks presented tokens against the accepted set (current first, then older ones)."""

    def __init__(self, accepted: Iterable[str]) -> None:
        self._digests = tuple(_digest(t) for t in accepted)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def verify(self, presented: Iterable[str]) -> bool:
        """True when any presented token is accepted; every comparison is made."""
        ok = False
        for token in presented:
            candidate = _digest(token)
            for accepted in self._digests:
                # No early exit: the time taken does not tell which token matched.
                ok |= hmac.compare_digest(candidate, accepted)
        return ok


class ReloadingTokenVerifier:
    """A TokenVerifier over a mounted secret file that may change (token rotation).

    The file is looked at again at most every ``reload_seconds`` (one stat call), and
    re-read only when it changed, so a rotated secret takes effect without a redeploy.
    An unreadable or invalid new version keeps the tokens in force and logs why.
    """

    def __init__(
        self,
        path: str,
        initial: Iterable[str],
        reload_seconds: float,
        parse: Callable[[str], tuple[str, ...]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._parse = parse
        self._reload_seconds = reload_seconds
        self._clock = clock
        self._verifier = TokenVerifier(initial)
        self._checked = clock()
        self._mtime = self._stat()
        self._lock = threading.Lock()

    def _stat(self) -> int | None:
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return None

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked < self._reload_seconds or not self._lock.acquire(blocking=False):
            return
        try:
            self._checked = now
            mtime = self._stat()
            if mtime is None or mtime == self._mtime:
                return
            try:
                with open(self._path, encoding="utf-8") as f:
                    tokens = self._parse(f.read())
            except (OSError, ValueError) as exc:
                _logger.warning("webhook token file changed but cannot be used: %s", exc)
                return
            if not tokens:
                _logger.warning("webhook token file is now empty; keeping the previous tokens")
                return
            self._verifier = TokenVerifier(tokens)
            self._mtime = mtime
            _logger.info("webhook tokens reloaded: %d accepted", len(tokens))
        finally:
            self._lock.release()

    @property
    def enabled(self) -> bool:
        return self._verifier.enabled

    def verify(self, presented: Iterable[str]) -> bool:
        self._refresh()
        return self._verifier.verify(presented)
