"""What each site registers and whom it asks: its URL (``GRIDHOOK_WEBHOOK_URL/<site>``, the
``default`` site's unchanged) reaching that site's receiving path, its own current token,
its own DPS endpoint and credentials, and every mistake named with the site and the key."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gridhook.jobs import open_nvgrid
from gridhook.nvgrid import NvGridConfigError
from gridhook.receiver import site_of_path
from gridhook.settings import ConfigError, Settings, load_settings
from gridhook.subscriptions import desired_subscription, site_hook

BASE = "https://region-project.cloudfunctions.net/receive_power_event/nvgrid/webhook"
TOKENS = {"default": "default-token-0123456789", "phx1": "phx1-token-0123456789ab"}


def fleet(tmp_path: Path, **env: str) -> Settings:
    """Two sites, default and phx1, each with its own files, as GRIDHOOK_SITES sets them."""
    sites = {}
    for port, name in enumerate(("default", "phx1"), start=50051):
        tokens = tmp_path / f"{name}-tokens"
        tokens.write_text(f"{TOKENS[name]}\nold-{TOKENS[name]}\n")
        credentials = tmp_path / f"{name}-credentials"
        credentials.write_text(f"user-{name}:password-{name}")
        sites[name] = {
            "timezone": "UTC",
            "nvgrid_host": f"127.0.0.1:{port}",
            "nvgrid_tls": "plaintext",
            "nvgrid_credentials_file": str(credentials),
            "webhook_tokens_file": str(tokens),
        }
    return load_settings(
        {"GRIDHOOK_SITES": json.dumps({"sites": sites}), "GRIDHOOK_WEBHOOK_URL": BASE, **env}
    )


def test_each_site_registers_its_own_url_with_its_own_current_token(tmp_path: Path) -> None:
    settings = fleet(tmp_path)
    for site in ("default", "phx1"):
        desired = desired_subscription(settings, site)
        parts = urlsplit(desired.url)
        assert parse_qs(parts.query) == {"token": [TOKENS[site]]}
        # The receiver takes the path it is delivered to for this very site.
        assert site_of_path(parts.path) == site
        assert desired.record().site == site
        assert TOKENS[site] not in desired.redacted_url
    assert desired_subscription(settings, "default").url.startswith(f"{BASE}?token=")
    assert desired_subscription(settings, "phx1").url.startswith(f"{BASE}/phx1?token=")


def test_a_rotated_token_file_is_read_at_the_next_run(tmp_path: Path) -> None:
    settings = fleet(tmp_path)
    (tmp_path / "phx1-tokens").write_text(f"rotated-token-0123456789\n{TOKENS['phx1']}\n")
    hook = site_hook(settings, "phx1")
    assert hook.tokens == ("rotated-token-0123456789", TOKENS["phx1"])
    assert site_hook(settings, "default").current_token == TOKENS["default"]


def test_without_sites_settings_the_default_site_is_as_before(tmp_path: Path) -> None:
    settings = load_settings(
        {"GRIDHOOK_WEBHOOK_URL": BASE, "GRIDHOOK_WEBHOOK_TOKENS": TOKENS["default"]}
    )
    desired = desired_subscription(settings)
    assert desired.url == f"{BASE}?token={TOKENS['default']}"
    assert site_hook(settings).token_source == "GRIDHOOK_WEBHOOK_TOKENS"


def test_a_base_url_a_sites_path_cannot_be_added_to_is_refused(tmp_path: Path) -> None:
    settings = fleet(tmp_path, GRIDHOOK_WEBHOOK_URL="https://gridhook.example.com/hooks")
    # The default site's URL is GRIDHOOK_WEBHOOK_URL itself: any path reaches it.
    assert desired_subscription(settings, "default").url.startswith("https://gridhook")
    with pytest.raises(ConfigError, match="must end with /nvgrid/webhook for site phx1"):
        desired_subscription(settings, "phx1")


def test_a_sites_unreadable_or_empty_token_file_names_the_site_and_the_key(
    tmp_path: Path,
) -> None:
    settings = fleet(tmp_path)
    (tmp_path / "phx1-tokens").write_text("\n")
    with pytest.raises(ConfigError, match="site phx1: webhook_tokens_file: no webhook token"):
        site_hook(settings, "phx1")
    (tmp_path / "phx1-tokens").unlink()
    with pytest.raises(ConfigError, match=r"site phx1: webhook_tokens_file = .* does not exist"):
        site_hook(settings, "phx1")
    assert site_hook(settings, "default").current_token == TOKENS["default"]  # not its own


def test_each_site_asks_its_own_dps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Today's variables describe no site of a fleet: never read for one. (Each site's own
    # credentials log in to its own simulator in tests/integration/test_fleet_jobs.py.)
    monkeypatch.setenv("NVGRID_HOST", "elsewhere.example.com:443")
    settings = fleet(tmp_path)
    for port, site in enumerate(("default", "phx1"), start=50051):
        with open_nvgrid(settings, site, budget_s=8.0) as client:
            assert client.endpoint.address == f"127.0.0.1:{port}"
            assert client.endpoint.policy.overall_timeout == 2.0  # a quarter of the budget


def test_a_sites_nvgrid_mistakes_name_the_site_and_the_key(tmp_path: Path) -> None:
    settings = fleet(tmp_path)
    (tmp_path / "phx1-credentials").write_text("no colon here")
    with pytest.raises(NvGridConfigError, match=r"site phx1: nvgrid_credentials_file=.* must hold"):
        open_nvgrid(settings, "phx1")
    (tmp_path / "phx1-credentials").unlink()
    with pytest.raises(
        NvGridConfigError, match=r"site phx1: nvgrid_credentials_file = .* does not exist"
    ):
        open_nvgrid(settings, "phx1")
    open_nvgrid(settings, "default").close()  # the other site's files are its own
