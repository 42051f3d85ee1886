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
from collections.abc import Iterable, Mapping

__all__ = ["TokenVerifier", "fingerprint", "presented_tokens"]


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
