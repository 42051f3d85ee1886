"""Webhook tokens: carriers and constant-time verification."""

from __future__ import annotations

import base64

from gridhook.auth import TokenVerifier, fingerprint, presented_tokens

TOKEN = "a-token-that-is-long-enough"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_carriers() -> None:
    assert presented_tokens(f"Bearer {TOKEN}", {}) == [TOKEN]
    assert presented_tokens(f"bearer   {TOKEN}  ", {}) == [TOKEN]
    assert presented_tokens(basic("dps", TOKEN), {}) == [TOKEN]
    assert presented_tokens(basic("", TOKEN), {}) == [TOKEN]
    assert presented_tokens(None, {"token": TOKEN}) == [TOKEN]
    assert presented_tokens(f"Bearer {TOKEN}", {"token": "other"}) == [TOKEN, "other"]


def test_malformed_carriers_present_nothing() -> None:
    assert presented_tokens("Bearer", {}) == []
    assert presented_tokens("Basic %%%", {}) == []
    assert presented_tokens(basic("only-user", ""), {}) == []
    assert presented_tokens("Digest abc", {}) == []
    assert presented_tokens(None, {"token": ""}) == []


def test_verifier_accepts_any_configured_token() -> None:
    verifier = TokenVerifier([TOKEN, "older-token-still-accepted"])
    assert verifier.verify([TOKEN])
    assert verifier.verify(["wrong", "older-token-still-accepted"])
    assert not verifier.verify(["wrong"])
    assert not verifier.verify([])
    assert not verifier.verify([TOKEN[:-1]])
    assert not verifier.verify([TOKEN + "x"])


def test_disabled_without_tokens() -> None:
    assert not TokenVerifier([]).enabled


def test_fingerprint_is_stable_and_does_not_reveal_the_token() -> None:
    assert fingerprint(TOKEN) == fingerprint(TOKEN)
    assert fingerprint(TOKEN) != fingerprint(TOKEN + "x")
    assert TOKEN not in fingerprint(TOKEN) and len(fingerprint(TOKEN)) == 12
