"""Settings: parsed once, validated, errors naming the variable, secrets never shown."""

from __future__ import annotations

import json
import re

import pytest

from gridhook.settings import (
    DEFAULT_STORE,
    ENV_VARS,
    POWER_EVENTS,
    ConfigError,
    Settings,
    load_settings,
)
from gridhook.sites import DEFAULT_SITE

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


# -- sites -----------------------------------------------------------------------------------


def test_without_sites_settings_there_is_one_default_site_as_before() -> None:
    settings = load_settings(
        {"GRIDHOOK_WEBHOOK_TOKENS": TOKEN, "GRIDHOOK_TIMEZONE": "Europe/Paris"}
    )
    assert settings.sites.names == (DEFAULT_SITE,) and settings.sites.legacy
    assert settings.sites.get(DEFAULT_SITE).timezone == "Europe/Paris"
    assert settings.webhook_tokens == (TOKEN,)
    # A Settings made in code (tests, tools) has the same one site.
    assert Settings().sites.names == (DEFAULT_SITE,) and Settings().sites.legacy


def test_sites_are_loaded_with_the_rest(tmp_path) -> None:
    sites = {
        "sites": {
            name: {
                "timezone": zone,
                "nvgrid_host": f"dps.{name}.example.com:443",
                "nvgrid_credentials_file": f"/secrets/{name}/credentials",
                "webhook_tokens_file": f"/secrets/{name}/webhook-tokens",
            }
            for name, zone in (("phx1", "America/Phoenix"), ("ams2", "Europe/Amsterdam"))
        }
    }
    settings = load_settings({"GRIDHOOK_SITES": json.dumps(sites)})
    assert settings.sites.names == ("phx1", "ams2") and not settings.sites.legacy
    assert settings.sites.get("ams2").timezone == "Europe/Amsterdam"
    # Loading settings reads none of the files a site names: each function checks its own.
    assert settings.sites.source == "GRIDHOOK_SITES"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GRIDHOOK_SITES": '{"sites": {"phx1": {"timezone": "Mars/Olympus"}}}'}, "site phx1"),
        (
            {"GRIDHOOK_SITES": '{"sites": {"phx1": {"colour": "red"}}}'},
            "site phx1: unknown key 'colour'",
        ),
        ({"GRIDHOOK_SITES": '{"sites": {"PHX": {}}}'}, "site name 'PHX'"),
        ({"GRIDHOOK_SITES": "{}", "GRIDHOOK_SITES_FILE": "/x.toml"}, "both set"),
        ({"GRIDHOOK_SITES_FILE": "/nonexistent/sites.toml"}, "GRIDHOOK_SITES_FILE"),
        ({"GRIDHOOK_TIMEZONE": "Nowhere/Special"}, "GRIDHOOK_TIMEZONE"),
    ],
)
def test_a_sites_mistake_fails_start_up_as_a_config_error_naming_it(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(env)


def test_the_sites_variables_are_settings_like_the_others() -> None:
    # tests/infra checks that Terraform sets each (GRIDHOOK_SITES) or refuses it (the file).
    assert {"GRIDHOOK_SITES_FILE", "GRIDHOOK_SITES", "GRIDHOOK_TIMEZONE"} <= set(ENV_VARS)
