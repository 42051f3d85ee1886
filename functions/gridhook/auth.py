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

    The file (a few bytes) is read again at most every ``reload_seconds`` and the tokens
    rebuilt when its text changed, so a rotated secret takes effect without a redeploy.
    Its content is compared, not its mtime: a mounted secret's timestamps are not
    something to rely on. A token we do not know triggers an early look too (at most
    once a second), so a sender that already has the new token is not refused while this
    instance catches up. An unreadable or invalid new version keeps the tokens in force
    and logs why.
    """

    _FORCED_INTERVAL = 1.0

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
        self._checked = self._forced = clock()
        self._text = self._read()
        self._lock = threading.Lock()

    def _read(self) -> str | None:
        try:
            with open(self._path, encoding="utf-8") as f:
                return f.read()
        except (OSError, ValueError) as exc:
            _logger.warning("cannot read the webhook token file: %s", exc)
            return None

    def _refresh(self, *, early: bool) -> bool:
        """Reload the file if it is due and changed; True when the tokens changed."""
        now = self._clock()
        if early:
            if now - self._forced < self._FORCED_INTERVAL:
                return False
        elif now - self._checked < self._reload_seconds:
            return False
        # Blocking: a request arriving mid-reload waits for the new tokens rather than
        # being judged by the old ones.
        with self._lock:
            self._checked = now
            if early:
                self._forced = now
            text = self._read()
            if text is None or text == self._text:
                return False
            self._text = text
            try:
                tokens = self._parse(text)
            except ValueError as exc:
                _logger.warning("webhook token file changed but cannot be used: %s", exc)
                return False
            if not tokens:
                _logger.warning("webhook token file is now empty; keeping the previous tokens")
                return False
            self._verifier = TokenVerifier(tokens)
            _logger.info("webhook tokens reloaded: %d accepted", len(tokens))
            return True

    @property
    def enabled(self) -> bool:
        return self._verifier.enabled

    def verify(self, presented: Iterable[str]) -> bool:
        tokens = list(presented)
        self._refresh(early=False)
        if self._verifier.verify(tokens):
            return True
        # Unknown token: it may be the new one of a rotation this instance has not seen yet.
        return self._refresh(early=True) and self._verifier.verify(tokens)
