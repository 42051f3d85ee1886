"""Sites: the DPS installations one deployment serves, each kept apart from the others.

A site is one DPS (its NvGrid endpoint, TLS mode, CA, credentials and feeds), the webhook
token set DPS presents when it delivers to ``/nvgrid/webhook/<site>``, and the IANA time
zone its days are counted in. Sites come from ``GRIDHOOK_SITES_FILE`` (TOML) or
``GRIDHOOK_SITES`` (the same structure as JSON, what Terraform sets)::

    [sites.phx1]
    timezone = "America/Phoenix"
    nvgrid_host = "dps.phx1.example.com:443"
    nvgrid_tls = "verify"                      # verify | skip-verify | plaintext
    nvgrid_ca_cert = "/secrets/phx1/ca.pem"     # optional
    nvgrid_credentials_file = "/secrets/phx1/credentials"
    webhook_tokens_file = "/secrets/phx1/webhook-tokens"

Without either, today's variables (``NVGRID_*``, ``GRIDHOOK_WEBHOOK_TOKENS[_FILE]``,
``GRIDHOOK_TIMEZONE``) describe one site named ``default``, so a one-site deployment
changes nothing. The structure is checked whole at start-up; the files a site names are
checked by the function that reads them (the receiver reads token files, the jobs the
NvGrid files), so no function needs a secret it does not use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_SITE",
    "SITE_KEYS",
    "SITE_NAME",
    "Site",
    "SiteConfigError",
    "Sites",
    "UnknownSite",
    "check_site_name",
    "load_sites",
    "one_default_site",
    "parse_sites",
    "site_digest",
]

#: The site of a deployment that names none: today's single-site configuration.
DEFAULT_SITE = "default"
#: What a site may be called: it is a URL path segment, a label and part of record keys.
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
#: Every key a site's table may hold, with whether it must be there.
SITE_KEYS: dict[str, bool] = {
    "timezone": True,
    "nvgrid_host": True,
    "nvgrid_tls": False,
    "nvgrid_ca_cert": False,
    "nvgrid_credentials_file": True,
    "webhook_tokens_file": True,
}
_TLS_MODES = ("verify", "skip-verify", "plaintext")


class SiteConfigError(ValueError):
    """The sites configuration is wrong; the message names the setting, the site and the key."""


class UnknownSite(LookupError):
    """A site name this deployment does not serve."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown site {name!r}: this deployment serves {', '.join(known)}")
        self.name = name


@dataclass(frozen=True)
class Site:
    """One DPS site. Secrets are file paths (or, for the ``default`` site only, what today's
    variables hold inline); none of them is ever in ``repr``."""

    name: str
    timezone: str = "UTC"
    nvgrid_host: str | None = None
    nvgrid_tls: str = "verify"
    nvgrid_ca_cert: str | None = None
    nvgrid_credentials_file: str | None = None
    webhook_tokens_file: str | None = None
    #: The default site only: GRIDHOOK_WEBHOOK_TOKENS and NVGRID_* as today.
    legacy_env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        """The site's time zone: its days, and every local time shown for it."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_SITE

    @property
    def webhook_path(self) -> str:
        """Where DPS delivers this site's webhooks (the default site keeps today's path)."""
        return "/nvgrid/webhook" if self.is_default else f"/nvgrid/webhook/{self.name}"

    def check_files(self, *keys: str) -> None:
        """Fail, naming the site and the key, when a file this function reads is missing."""
        for key in keys:
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise SiteConfigError(
                    f"site {self.name}: {key} = {path!r} does not exist or is not a file"
                )


@dataclass(frozen=True)
class Sites:
    """The sites of one deployment, by name, in the order they were configured."""

    sites: tuple[Site, ...]
    #: Where they came from: GRIDHOOK_SITES_FILE, GRIDHOOK_SITES or today's variables.
    source: str = "environment"

    def __post_init__(self) -> None:
        if not self.sites:
            raise SiteConfigError(f"{self.source}: no sites configured")

    def __iter__(self) -> Iterator[Site]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    @property
    def legacy(self) -> bool:
        """Whether today's variables describe the one ``default`` site (neither
        GRIDHOOK_SITES_FILE nor GRIDHOOK_SITES is set): its webhook tokens are then
        GRIDHOOK_WEBHOOK_TOKENS[_FILE], as before sites."""
        return self.source == "environment"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sites)

    @property
    def several(self) -> bool:
        """Whether views show which site a row belongs to (a SITE column)."""
        return len(self.sites) > 1

    def get(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise UnknownSite(name, self.names)


def check_site_name(name: str) -> str:
    """``name`` if it may name a site (``SITE_NAME``); ValueError otherwise. Stores check
    every site they are given: a site is part of a record's key and of a Firestore path."""
    if not isinstance(name, str) or not SITE_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a site name: 1-63 of a-z 0-9 and '-', starting with a letter or digit"
        )
    return name


def one_default_site() -> Sites:
    """A deployment of one ``default`` site described by today's variables (none set)."""
    return Sites((Site(name=DEFAULT_SITE),), "environment")


def site_digest(data: bytes, site: str) -> str:
    """The SHA-256 (hex) a record's id is made from: of ``data`` alone for the ``default``
    site, so its ids stay what they were before sites; of the site's name, a newline and
    ``data`` for any other, so the same payload on two sites is two records."""
    if site == DEFAULT_SITE:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(site.encode("utf-8") + b"\n" + data).hexdigest()


def load_sites(env: Mapping[str, str]) -> Sites:
    """The sites ``env`` describes: GRIDHOOK_SITES_FILE, GRIDHOOK_SITES, or one ``default``
    site from today's variables. Raises SiteConfigError naming what is wrong."""
    path = env.get("GRIDHOOK_SITES_FILE", "").strip()
    inline = env.get("GRIDHOOK_SITES", "").strip()
    if path and inline:
        raise SiteConfigError(
            "GRIDHOOK_SITES_FILE and GRIDHOOK_SITES are both set: use one (the file, or the "
            "same structure as JSON in GRIDHOOK_SITES)"
        )
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SiteConfigError(
                f"GRIDHOOK_SITES_FILE: cannot read {path} ({exc.strerror})"
            ) from None
        import tomllib  # here: the receiver's cold start without a sites file skips it

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SiteConfigError(f"GRIDHOOK_SITES_FILE: {path} is not TOML: {exc}") from None
        return parse_sites(data, "GRIDHOOK_SITES_FILE")
    if inline:
        try:
            data = json.loads(inline)
        except json.JSONDecodeError as exc:
            raise SiteConfigError(f"GRIDHOOK_SITES is not JSON: {exc}") from None
        return parse_sites(data, "GRIDHOOK_SITES")
    return Sites((_default_site(env),), "environment")


def parse_sites(data: Any, source: str) -> Sites:
    """``{"sites": {NAME: {key: value}}}`` checked whole; ``source`` names the setting."""
    if not isinstance(data, dict) or set(data) != {"sites"} or not isinstance(data["sites"], dict):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise SiteConfigError(
            f"{source}: expected one table 'sites' holding a table per site "
            f'([sites.NAME] in TOML, {{"sites": {{"NAME": {{...}}}}}} in JSON), found {found}'
        )
    sites = tuple(_site(name, table, source) for name, table in data["sites"].items())
    return Sites(sites, source)


def _site(name: Any, table: Any, source: str) -> Site:
    if not isinstance(name, str) or not SITE_NAME.fullmatch(name):
        raise SiteConfigError(
            f"{source}: site name {name!r} is not valid: 1-63 of a-z 0-9 and '-', "
            "starting with a letter or digit"
        )
    where = f"{source}: site {name}"
    if not isinstance(table, dict):
        raise SiteConfigError(f"{where}: expected a table of settings, not {table!r}")
    unknown = sorted(set(table) - set(SITE_KEYS))
    if unknown:
        raise SiteConfigError(
            f"{where}: unknown key {unknown[0]!r} (a site takes {', '.join(SITE_KEYS)})"
        )
    for key, required in SITE_KEYS.items():
        if key not in table:
            if required:
                raise SiteConfigError(f"{where}: {key} is missing")
            continue
        if not isinstance(table[key], str) or not table[key].strip():
            raise SiteConfigError(f"{where}: {key} must be a non-empty string")
    values = {key: value.strip() for key, value in table.items()}
    _check_timezone(values["timezone"], f"{where}: timezone")
    tls = values.get("nvgrid_tls", "verify").lower()
    if tls not in _TLS_MODES:
        raise SiteConfigError(f"{where}: nvgrid_tls {tls!r} is not one of {', '.join(_TLS_MODES)}")
    _check_host(values["nvgrid_host"], f"{where}: nvgrid_host")
    values["nvgrid_tls"] = tls
    return Site(name=name, **values)


def _default_site(env: Mapping[str, str]) -> Site:
    timezone = env.get("GRIDHOOK_TIMEZONE", "").strip() or "UTC"
    _check_timezone(timezone, "GRIDHOOK_TIMEZONE")
    keep = (
        "GRIDHOOK_WEBHOOK_TOKENS",
        "NVGRID_HOST",
        "NVGRID_PORT",
        "NVGRID_TLS",
        "NVGRID_CA_CERT",
        "NVGRID_USERNAME",
        "NVGRID_PASSWORD",
        "NVGRID_CREDENTIALS_FILE",
    )
    return Site(
        name=DEFAULT_SITE,
        timezone=timezone,
        nvgrid_host=env.get("NVGRID_HOST", "").strip() or None,
        nvgrid_tls=env.get("NVGRID_TLS", "").strip().lower() or "verify",
        nvgrid_ca_cert=env.get("NVGRID_CA_CERT", "").strip() or None,
        nvgrid_credentials_file=env.get("NVGRID_CREDENTIALS_FILE", "").strip() or None,
        webhook_tokens_file=env.get("GRIDHOOK_WEBHOOK_TOKENS_FILE", "").strip() or None,
        legacy_env={k: env[k] for k in keep if env.get(k)},
    )


def _check_timezone(name: str, where: str) -> None:
    try:
        if name != "UTC":  # zoneinfo's import is the cold start's, when a zone is named
            from zoneinfo import ZoneInfo

            ZoneInfo(name)
    except (LookupError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        raise SiteConfigError(
            f"{where}: {name!r} is not an IANA time zone (e.g. America/Phoenix, Europe/Paris, UTC)"
        ) from None


def _check_host(host: str, where: str) -> None:
    from gridhook.nvgrid.config import split_host_port
    from gridhook.nvgrid.errors import NvGridConfigError

    try:
        name, _ = split_host_port(host)
    except NvGridConfigError as exc:
        raise SiteConfigError(f"{where}: {exc}") from None
    if not name:
        raise SiteConfigError(f"{where}: {host!r} has no host name")
