"""Settings: parsed once, validated, errors naming the variable, secrets never shown."""

from __future__ import annotations

import pytest

from gridhook.settings import DEFAULT_STORE, POWER_EVENTS, ConfigError, load_settings

TOKEN = "a-token-that-is-long-enough"


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.store_url == DEFAULT_STORE
    assert settings.webhook_tokens == ()
    assert settings.max_body_bytes == 65536
    assert settings.events == POWER_EVENTS
    with pytest.raises(ConfigError, match="GRIDHOOK_WEBHOOK_TOKENS"):
        settings.require_webhook_auth()


def test_tokens_from_env_current_first() -> None:
    settings = load_settings({"GRIDHOOK_WEBHOOK_TOKENS": f" {TOKEN} , older-token-0123456789 "})
    assert settings.webhook_tokens == (TOKEN, "older-token-0123456789")
    assert settings.current_webhook_token == TOKEN
    assert TOKEN not in repr(settings)


def test_tokens_file_wins_and_may_hold_one_per_line(tmp_path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN}\nolder-token-0123456789\n")
    settings = load_settings(
        {"GRIDHOOK_WEBHOOK_TOKENS_FILE": str(path), "GRIDHOOK_WEBHOOK_TOKENS": "x" * 20}
    )
    assert settings.webhook_tokens == (TOKEN, "older-token-0123456789")


def test_unreadable_tokens_file_names_the_variable(tmp_path) -> None:
    with pytest.raises(ConfigError, match="GRIDHOOK_WEBHOOK_TOKENS_FILE"):
        load_settings({"GRIDHOOK_WEBHOOK_TOKENS_FILE": str(tmp_path / "missing")})


def test_weak_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"GRIDHOOK_WEBHOOK_TOKENS": "short-secret"})
    assert "short-secret" not in str(exc.value)
    assert "GRIDHOOK_WEBHOOK_TOKENS" in str(exc.value)


@pytest.mark.parametrize(
    "name, value",
    [
        ("GRIDHOOK_STORE", "postgres://x"),
        ("GRIDHOOK_MAX_BODY_BYTES", "lots"),
        ("GRIDHOOK_MAX_BODY_BYTES", "10"),
        ("GRIDHOOK_ALLOW_UNAUTHENTICATED", "maybe"),
        ("GRIDHOOK_LOG_LEVEL", "LOUD"),
        ("GRIDHOOK_QUARANTINE_TTL_DAYS", "0"),
        ("GRIDHOOK_STORE_TIMEOUT_SECONDS", "-1"),
        ("GRIDHOOK_WEBHOOK_URL", "ftp://x"),
        ("GRIDHOOK_WEBHOOK_URL", "https://x/hook?token=abc"),
        ("GRIDHOOK_EVENTS", "start_ramp_down,explode"),
    ],
)
def test_bad_values_name_the_variable(name, value) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_allow_unauthenticated_is_explicit() -> None:
    allowed = load_settings({"GRIDHOOK_ALLOW_UNAUTHENTICATED": "1"})
    assert allowed.allow_unauthenticated is True and allowed.webhook_tokens == ()
    assert allowed.require_webhook_auth() is None  # no token, and no refusal: it was asked for
    # Without the explicit setting (absent or off), no token is a refusal naming the way out.
    for environ in ({}, {"GRIDHOOK_ALLOW_UNAUTHENTICATED": "0"}):
        refused = load_settings(environ)
        assert refused.allow_unauthenticated is False
        with pytest.raises(ConfigError, match="GRIDHOOK_ALLOW_UNAUTHENTICATED=1"):
            refused.require_webhook_auth()


def test_events_filter() -> None:
    assert load_settings({"GRIDHOOK_EVENTS": "END_RAMP_DOWN, start_ramp_down"}).events == (
        "end_ramp_down",
        "start_ramp_down",
    )
    assert load_settings({"GRIDHOOK_EVENTS": "all"}).events == POWER_EVENTS
