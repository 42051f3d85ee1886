"""Sites: read from TOML, JSON or today's variables; every mistake named by site and key."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridhook.sites import DEFAULT_SITE, SiteConfigError, UnknownSite, load_sites, parse_sites

TWO_SITES_TOML = """
[sites.phx1]
timezone = "America/Phoenix"
nvgrid_host = "dps.phx1.example.com:443"
nvgrid_tls = "verify"                      # verify | skip-verify | plaintext
nvgrid_ca_cert = "/secrets/phx1/ca.pem"     # optional
nvgrid_credentials_file = "/secrets/phx1/credentials"
webhook_tokens_file = "/secrets/phx1/webhook-tokens"

[sites.ams2]
timezone = "Europe/Amsterdam"
nvgrid_host = "10.0.0.7:50051"
nvgrid_tls = "Plaintext"
nvgrid_credentials_file = "/secrets/ams2/credentials"
webhook_tokens_file = "/secrets/ams2/webhook-tokens"
"""


def _site_table(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {
        "timezone": "America/Phoenix",
        "nvgrid_host": "dps.example.com",
        "nvgrid_credentials_file": "/secrets/x/credentials",
        "webhook_tokens_file": "/secrets/x/webhook-tokens",
    }
    table.update(overrides)
    return {key: value for key, value in table.items() if value is not None}


def test_without_sites_settings_todays_variables_are_one_default_site() -> None:
    sites = load_sites(
        {
            "NVGRID_HOST": "dps.local:50051",
            "NVGRID_TLS": "plaintext",
            "GRIDHOOK_WEBHOOK_TOKENS": "a-token-of-16-chars-or-more",
        }
    )
    assert sites.names == (DEFAULT_SITE,)
    site = sites.get(DEFAULT_SITE)
    assert site.webhook_path == "/nvgrid/webhook"
    assert site.zone == ZoneInfo("UTC")
    assert (site.nvgrid_host, site.nvgrid_tls) == ("dps.local:50051", "plaintext")
    assert not sites.several
    # The inline secret is kept for the default site, and never shown.
    assert site.legacy_env["GRIDHOOK_WEBHOOK_TOKENS"] == "a-token-of-16-chars-or-more"
    assert "a-token-of-16" not in repr(site)


def test_the_default_sites_time_zone_is_gridhook_timezone() -> None:
    site = load_sites({"GRIDHOOK_TIMEZONE": "America/Chicago"}).get(DEFAULT_SITE)
    assert site.zone == ZoneInfo("America/Chicago")
    with pytest.raises(SiteConfigError, match=r"GRIDHOOK_TIMEZONE.*'Mars/Olympus'"):
        load_sites({"GRIDHOOK_TIMEZONE": "Mars/Olympus"})


def test_a_toml_file_describes_several_sites_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(TWO_SITES_TOML, encoding="utf-8")
    sites = load_sites({"GRIDHOOK_SITES_FILE": str(path)})
    assert sites.names == ("phx1", "ams2")
    assert sites.several and sites.source == "GRIDHOOK_SITES_FILE"
    phx1, ams2 = sites.get("phx1"), sites.get("ams2")
    assert phx1.webhook_path == "/nvgrid/webhook/phx1"
    assert phx1.zone == ZoneInfo("America/Phoenix")
    assert phx1.nvgrid_ca_cert == "/secrets/phx1/ca.pem"
    assert ams2.nvgrid_tls == "plaintext" and ams2.nvgrid_ca_cert is None
    with pytest.raises(UnknownSite, match=r"unknown site 'lon3'.*phx1, ams2"):
        sites.get("lon3")


def test_gridhook_sites_holds_the_same_structure_as_json(tmp_path: Path) -> None:
    import tomllib

    data = tomllib.loads(TWO_SITES_TOML)
    from_json = load_sites({"GRIDHOOK_SITES": json.dumps(data)})
    path = tmp_path / "sites.toml"
    path.write_text(TWO_SITES_TOML, encoding="utf-8")
    assert from_json.sites == load_sites({"GRIDHOOK_SITES_FILE": str(path)}).sites


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_site_table(nvgrid_hots="x"), r"site x1: unknown key 'nvgrid_hots'"),
        (_site_table(timezone="Mars/Olympus"), r"site x1: timezone: 'Mars/Olympus' is not an"),
        (_site_table(timezone=None), r"site x1: timezone is missing"),
        (_site_table(webhook_tokens_file=None), r"site x1: webhook_tokens_file is missing"),
        (_site_table(nvgrid_tls="maybe"), r"site x1: nvgrid_tls 'maybe' is not one of"),
        (_site_table(nvgrid_host="[::1"), r"site x1: nvgrid_host: .*unclosed"),
        (_site_table(nvgrid_host=":443"), r"site x1: nvgrid_host: ':443' has no host name"),
        (_site_table(nvgrid_credentials_file=7), r"site x1: nvgrid_credentials_file must be a"),
        (_site_table(nvgrid_ca_cert=" "), r"site x1: nvgrid_ca_cert must be a non-empty"),
    ],
)
def test_each_mistake_in_a_site_is_named_by_site_and_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(SiteConfigError, match=message):
        parse_sites({"sites": {"x1": table}}, "GRIDHOOK_SITES")


@pytest.mark.parametrize("name", ["Phx1", "-phx", "phx_1", "p" * 64, "", "phx 1"])
def test_a_site_name_is_a_lowercase_label(name: str) -> None:
    with pytest.raises(SiteConfigError, match=f"site name {name!r} is not valid"):
        parse_sites({"sites": {name: _site_table()}}, "GRIDHOOK_SITES")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "expected one table 'sites'"),
        ({"sites": {}}, "no sites configured"),
        ({"sites": {"x1": _site_table()}, "extra": 1}, "expected one table 'sites'"),
        ({"sites": {"x1": "phoenix"}}, "site x1: expected a table"),
        ([], "expected one table 'sites'"),
    ],
)
def test_the_structure_is_checked_whole(data: object, message: str) -> None:
    with pytest.raises(SiteConfigError, match=message):
        parse_sites(data, "GRIDHOOK_SITES")


def test_both_settings_at_once_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(TWO_SITES_TOML, encoding="utf-8")
    with pytest.raises(SiteConfigError, match="both set"):
        load_sites({"GRIDHOOK_SITES_FILE": str(path), "GRIDHOOK_SITES": '{"sites": {}}'})


def test_unreadable_or_malformed_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError, match="GRIDHOOK_SITES_FILE: cannot read"):
        load_sites({"GRIDHOOK_SITES_FILE": str(tmp_path / "absent.toml")})
    bad = tmp_path / "bad.toml"
    bad.write_text("[sites.phx1\n", encoding="utf-8")
    with pytest.raises(SiteConfigError, match=r"GRIDHOOK_SITES_FILE: .* is not TOML"):
        load_sites({"GRIDHOOK_SITES_FILE": str(bad)})
    with pytest.raises(SiteConfigError, match="GRIDHOOK_SITES is not JSON"):
        load_sites({"GRIDHOOK_SITES": "{sites"})


def test_a_missing_file_is_named_by_site_and_key_when_a_function_needs_it(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "webhook-tokens"
    tokens.write_text("a-token-of-16-chars-or-more\n", encoding="utf-8")
    table = _site_table(
        webhook_tokens_file=str(tokens),
        nvgrid_credentials_file=str(tmp_path / "credentials"),
    )
    site = parse_sites({"sites": {"phx1": table}}, "GRIDHOOK_SITES").get("phx1")
    site.check_files("webhook_tokens_file")  # the receiver's file is there
    with pytest.raises(SiteConfigError, match=r"site phx1: nvgrid_credentials_file = .* does not"):
        site.check_files("nvgrid_credentials_file")


def test_a_site_digest_is_the_plain_digest_on_the_default_site_only() -> None:
    import hashlib

    from gridhook.sites import site_digest

    data = b'{"event":"start_ramp_down"}'
    assert site_digest(data, DEFAULT_SITE) == hashlib.sha256(data).hexdigest()
    assert site_digest(data, "phx1") == hashlib.sha256(b"phx1\n" + data).hexdigest()
    assert site_digest(data, "phx1") != site_digest(data, "ams2")


def test_a_store_is_given_valid_site_names_only() -> None:
    from gridhook.sites import check_site_name

    assert check_site_name("phx1") == "phx1" and check_site_name(DEFAULT_SITE) == DEFAULT_SITE
    for bad in ("", "Phx1", "phx1/power_events", "-x", "a" * 64, "phx1#x"):
        with pytest.raises(ValueError, match="not a site name"):
            check_site_name(bad)


def test_a_sample_id_is_the_one_from_before_sites_on_the_default_site() -> None:
    from datetime import UTC, datetime

    from gridhook.store import LoadSample

    at, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    sample = LoadSample("main_power_feed", at, None, None, None, later)
    assert sample.sample_id == "369fb01d216dd796b22ac566e3ce95f8"  # as c82de6c made it
    on_phx1 = LoadSample("main_power_feed", at, None, None, None, later, site="phx1")
    assert on_phx1.sample_id != sample.sample_id


@pytest.mark.parametrize(
    ("path", "site"),
    [
        ("/nvgrid/webhook", DEFAULT_SITE),
        ("/nvgrid/webhook/", DEFAULT_SITE),
        ("/", DEFAULT_SITE),
        ("/receive_power_event", DEFAULT_SITE),
        ("/nvgrid/webhook/phx1", "phx1"),
        ("/nvgrid/webhook/phx1/", "phx1"),
        ("/receive_power_event/nvgrid/webhook/ams2", "ams2"),
        ("/nvgrid/webhook/phx1/extra", "phx1/extra"),  # no such site: a 404 naming it
    ],
)
def test_the_site_a_delivery_path_names(path: str, site: str) -> None:
    from gridhook.receiver import site_of_path

    assert site_of_path(path) == site
