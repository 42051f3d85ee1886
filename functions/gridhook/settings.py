"""Settings: every environment variable gridhook reads, parsed and validated once.

A bad value fails start-up with a :class:`ConfigError` naming the variable. Secrets
(webhook tokens, NvGrid credentials) are read from mounted files where given, and are
kept out of ``repr`` so they never reach a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gridhook.clock import DevClock, parse_dev_clock
from gridhook.sites import SiteConfigError, Sites, load_sites, one_default_site
from gridhook.store.url import parse_store_url

__all__ = [
    "DEV_ENV_VARS",
    "ENV_VARS",
    "ConfigError",
    "Settings",
    "get_settings",
    "load_settings",
    "parse_tokens",
]

DEFAULT_STORE = "sqlite:///var/gridhook.db"
POWER_EVENTS = ("start_ramp_up", "end_ramp_up", "start_ramp_down", "end_ramp_down")

#: Every environment variable gridhook reads (Terraform's env blocks are checked against it).
ENV_VARS: tuple[str, ...] = (
    "GRIDHOOK_STORE",
    "GRIDHOOK_WEBHOOK_TOKENS",
    "GRIDHOOK_WEBHOOK_TOKENS_FILE",
    "GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS",
    "GRIDHOOK_ALLOW_UNAUTHENTICATED",
    "GRIDHOOK_MAX_BODY_BYTES",
    "GRIDHOOK_QUARANTINE_TTL_DAYS",
    "GRIDHOOK_STORE_TIMEOUT_SECONDS",
    "GRIDHOOK_LOG_LEVEL",
    "GRIDHOOK_WEBHOOK_URL",
    "GRIDHOOK_EVENTS",
    "GRIDHOOK_RECONCILE_DEADLINE_SECONDS",
    "GRIDHOOK_DRIFT_GRACE_SECONDS",
    "GRIDHOOK_RAMP_DEADLINE_SECONDS",
    "GRIDHOOK_SAMPLE_RETENTION_DAYS",
    "GRIDHOOK_SITES",
    "GRIDHOOK_SITES_FILE",
    "GRIDHOOK_TIMEZONE",
    "GRIDHOOK_RECONCILE_CONCURRENCY",
    "GRIDHOOK_INTERVAL_MIN_COVERAGE",
    "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS",
    "GRIDHOOK_BASELINE_METHOD",
    "NVGRID_HOST",
    "NVGRID_PORT",
    "NVGRID_TLS",
    "NVGRID_CA_CERT",
    "NVGRID_USERNAME",
    "NVGRID_PASSWORD",
    "NVGRID_CREDENTIALS_FILE",
)

#: Development-only settings: read by the code, never set by Terraform (tests/infra refuses them).
DEV_ENV_VARS: tuple[str, ...] = ("GRIDHOOK_DEV_CLOCK",)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: gridhook.settlement.METHODS, spelled out: settings must not import numpy (the receiver
#: reads them at cold start); tests/unit/test_settings_fleet.py keeps the two equal.
BASELINE_METHODS = ("caiso-10-in-10", "pjm-high-4-of-5", "pjm-same-day", "meter-before")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    """What one process of gridhook is configured to do."""

    store_url: str = DEFAULT_STORE
    webhook_tokens: tuple[str, ...] = field(default=(), repr=False)
    webhook_tokens_file: str | None = None
    tokens_reload_seconds: float = 30.0
    allow_unauthenticated: bool = False
    max_body_bytes: int = 64 * 1024
    quarantine_ttl_days: int = 7
    store_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    webhook_url: str | None = None
    events: tuple[str, ...] = POWER_EVENTS
    reconcile_deadline_seconds: float = 120.0
    drift_grace_seconds: float = 120.0
    ramp_deadline_seconds: float = 1800.0
    sample_retention_days: int = 400
    reconcile_concurrency: int = 8
    interval_min_coverage: float = 0.8
    raw_sample_retention_days: int = 35
    baseline_method: str = BASELINE_METHODS[0]
    dev_clock: DevClock | None = None
    #: The sites this deployment serves (one ``default`` site unless GRIDHOOK_SITES[_FILE]).
    sites: Sites = field(default_factory=one_default_site)

    @property
    def current_webhook_token(self) -> str | None:
        """The token new registrations carry; the others are still accepted (rotation)."""
        return self.webhook_tokens[0] if self.webhook_tokens else None

    def require_webhook_auth(self) -> None:
        """Refuse to serve webhooks with no token configured, unless explicitly allowed."""
        if not self.webhook_tokens and not self.allow_unauthenticated:
            raise ConfigError(
                "no webhook token configured: set GRIDHOOK_WEBHOOK_TOKENS (comma-separated) or "
                "GRIDHOOK_WEBHOOK_TOKENS_FILE (a mounted secret), or set "
                "GRIDHOOK_ALLOW_UNAUTHENTICATED=1 to accept unauthenticated webhooks on purpose"
            )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    return Settings(
        store_url=_store_url(env),
        webhook_tokens=_webhook_tokens(env),
        webhook_tokens_file=env.get("GRIDHOOK_WEBHOOK_TOKENS_FILE", "").strip() or None,
        tokens_reload_seconds=_float(
            env, "GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS", 30.0, 0.0, 3600
        ),
        allow_unauthenticated=_bool(env, "GRIDHOOK_ALLOW_UNAUTHENTICATED", False),
        max_body_bytes=_int(env, "GRIDHOOK_MAX_BODY_BYTES", 64 * 1024, low=256, high=10 << 20),
        quarantine_ttl_days=_int(env, "GRIDHOOK_QUARANTINE_TTL_DAYS", 7, low=1, high=365),
        store_timeout_seconds=_float(env, "GRIDHOOK_STORE_TIMEOUT_SECONDS", 10.0, 0.1, 55.0),
        log_level=_log_level(env),
        webhook_url=_webhook_url(env),
        events=_events(env),
        reconcile_deadline_seconds=_float(
            env, "GRIDHOOK_RECONCILE_DEADLINE_SECONDS", 120.0, 1.0, 1800.0
        ),
        drift_grace_seconds=_float(env, "GRIDHOOK_DRIFT_GRACE_SECONDS", 120.0, 0.0, 86400.0),
        ramp_deadline_seconds=_float(
            env, "GRIDHOOK_RAMP_DEADLINE_SECONDS", 1800.0, 1.0, 7 * 86400.0
        ),
        sample_retention_days=_int(env, "GRIDHOOK_SAMPLE_RETENTION_DAYS", 400, low=1, high=3650),
        reconcile_concurrency=_int(env, "GRIDHOOK_RECONCILE_CONCURRENCY", 8, low=1, high=64),
        interval_min_coverage=_float(env, "GRIDHOOK_INTERVAL_MIN_COVERAGE", 0.8, 0.01, 1.0),
        raw_sample_retention_days=_int(
            env, "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS", 35, low=1, high=3650
        ),
        baseline_method=_baseline_method(env),
        dev_clock=_dev_clock(env),
        sites=_sites(env),
    )


def _sites(env: Mapping[str, str]) -> Sites:
    """The sites ``env`` describes; ConfigError names the setting, the site and the key."""
    try:
        return load_sites(env)
    except SiteConfigError as exc:
        raise ConfigError(str(exc)) from None


def _dev_clock(env: Mapping[str, str]) -> DevClock | None:
    """GRIDHOOK_DEV_CLOCK parsed (None when unset); ConfigError names the variable."""
    raw = env.get("GRIDHOOK_DEV_CLOCK", "").strip()
    if not raw:
        return None
    try:
        return parse_dev_clock(raw)
    except ValueError as exc:
        raise ConfigError(
            f"GRIDHOOK_DEV_CLOCK: {exc} (use SPEED@SIM_TIME@REAL_TIME, e.g. "
            "1440@2026-11-29T02:00:00Z@2026-11-30T02:00:00Z; development only)"
        ) from None


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once at cold start."""
    return load_settings()


def _store_url(env: Mapping[str, str]) -> str:
    url = env.get("GRIDHOOK_STORE", "").strip() or DEFAULT_STORE
    try:
        parse_store_url(url)  # the parser open_store uses: refused now, not at first use
    except ValueError as exc:
        raise ConfigError(f"GRIDHOOK_STORE: {exc}") from None
    return url


def _webhook_tokens(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("GRIDHOOK_WEBHOOK_TOKENS", "")
    path = env.get("GRIDHOOK_WEBHOOK_TOKENS_FILE", "").strip()
    if path:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"GRIDHOOK_WEBHOOK_TOKENS_FILE: cannot read {path} ({exc.strerror}); "
                "mount the webhook token secret there or unset the variable"
            ) from None
    source = "GRIDHOOK_WEBHOOK_TOKENS_FILE" if path else "GRIDHOOK_WEBHOOK_TOKENS"
    return parse_tokens(raw, source)


def parse_tokens(raw: str, source: str) -> tuple[str, ...]:
    """Tokens separated by commas or newlines (a secret file may hold one per line)."""
    tokens = tuple(t.strip() for t in raw.replace("\n", ",").split(",") if t.strip())
    for token in tokens:
        if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
            # The token itself is never echoed: it is a secret even when malformed.
            raise ConfigError(
                f"{source}: every token must be at least 16 printable ASCII characters "
                "without spaces (generate one with: python3 -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )
    return tokens


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1 or 0")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range [{low}, {high}]")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range [{low}, {high}]")
    return value


def _log_level(env: Mapping[str, str]) -> str:
    level = env.get("GRIDHOOK_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in _LOG_LEVELS:
        raise ConfigError(f"GRIDHOOK_LOG_LEVEL={level!r}: use one of {', '.join(_LOG_LEVELS)}")
    return level


def _webhook_url(env: Mapping[str, str]) -> str | None:
    url = env.get("GRIDHOOK_WEBHOOK_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("https://", "http://")) or "?" in url or "#" in url:
        raise ConfigError(
            "GRIDHOOK_WEBHOOK_URL must be the receiver's http(s) URL without a query string "
            "(the token is added when registering)"
        )
    return url


def _baseline_method(env: Mapping[str, str]) -> str:
    method = env.get("GRIDHOOK_BASELINE_METHOD", "").strip().lower() or BASELINE_METHODS[0]
    if method not in BASELINE_METHODS:
        raise ConfigError(
            f"GRIDHOOK_BASELINE_METHOD={method!r}: use one of {', '.join(BASELINE_METHODS)}"
        )
    return method


def _events(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("GRIDHOOK_EVENTS", "").strip()
    if not raw or raw.lower() == "all":
        return POWER_EVENTS
    events = tuple(dict.fromkeys(e.strip().lower() for e in raw.split(",") if e.strip()))
    unknown = [e for e in events if e not in POWER_EVENTS]
    if unknown:
        raise ConfigError(
            f"GRIDHOOK_EVENTS: unknown event(s) {', '.join(unknown)}; "
            f"use 'all' or a comma list of {', '.join(POWER_EVENTS)}"
        )
    return events
