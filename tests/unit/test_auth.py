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


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reloading(tmp_path, text: str, clock: FakeClock, reload_seconds: float = 30.0):
    from gridhook.auth import ReloadingTokenVerifier
    from gridhook.settings import parse_tokens

    path = tmp_path / "tokens"
    path.write_text(text)
    verifier = ReloadingTokenVerifier(
        str(path),
        parse_tokens(text, "test"),
        reload_seconds,
        lambda raw: parse_tokens(raw, "test"),
        clock=clock,
    )
    return verifier, path


OLD = "old-token-0123456789abcdef"
NEW = "new-token-0123456789abcdef"
NEWER = "newer-token-0123456789abcd"


def test_rotated_file_is_picked_up_after_the_interval(tmp_path) -> None:
    clock = FakeClock()
    verifier, path = reloading(tmp_path, OLD, clock)
    path.write_text(f"{NEW}\n")  # the old token retired
    clock.now = 10
    assert verifier.verify([OLD])  # not due yet: the old set is still in force
    clock.now = 31
    assert not verifier.verify([OLD])
    assert verifier.verify([NEW])


def test_an_unknown_token_looks_at_the_file_early_but_at_most_once_a_second(tmp_path) -> None:
    clock = FakeClock()
    verifier, path = reloading(tmp_path, OLD, clock)
    path.write_text(f"{NEW},{OLD}")
    clock.now = 2
    assert verifier.verify([NEW])  # accepted at once, long before the 30 s interval
    path.write_text(f"{NEWER},{NEW},{OLD}")
    clock.now = 2.5
    assert not verifier.verify([NEWER])  # rate-limited
    clock.now = 3.1
    assert verifier.verify([NEWER])


def test_a_broken_new_version_keeps_the_tokens_in_force(tmp_path) -> None:
    clock = FakeClock()
    verifier, path = reloading(tmp_path, OLD, clock)
    path.write_text("too-short")
    clock.now = 31
    assert verifier.verify([OLD])
    path.unlink()
    clock.now = 62
    assert verifier.verify([OLD])


def test_no_request_is_judged_by_stale_tokens_during_a_reload(tmp_path) -> None:
    import threading

    verifier, path = reloading(tmp_path, OLD, time_clock := FakeClock(), reload_seconds=0.0)
    path.write_text(f"{NEW},{OLD}")
    time_clock.now = 1
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(verifier.verify([NEW]))) for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 16
