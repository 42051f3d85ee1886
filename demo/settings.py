"""The demo fleet's settings, as a deployment keeps them: a sites file (`GRIDHOOK_SITES_FILE`,
docs/sites.md) and, per site, its webhook token file and NvGrid credentials file (owner-only,
like mounted secrets), all in the demo's own directory.

Each site's DPS is one of the simulator's sites: `127.0.0.1:PORT + i`, TLS verified against
the CA the simulator writes for that site (`TLS_DIR/<site>/ca.pem`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from demo.plan import DemoSite

__all__ = ["SiteFiles", "SitesFiles", "write_sites"]

DEMO_USER = "demo"


@dataclass(frozen=True)
class SiteFiles:
    """One site's settings and secrets (the password never in repr)."""

    name: str
    timezone: str
    nvgrid_host: str
    ca_cert: Path
    credentials: Path
    webhook_tokens: Path
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SitesFiles:
    path: Path  # the sites file
    sites: tuple[SiteFiles, ...]


def write_sites(
    directory: Path, sites: Sequence[DemoSite], *, sim_port: int, tls_dir: Path
) -> SitesFiles:
    """Write `directory/sites.toml` and each site's secrets under `directory/sites/<site>/`.
    Paths in the file are absolute, so it reads the same from any working directory."""
    written = []
    for i, site in enumerate(sites):
        secrets_dir = directory / "sites" / site.name
        secrets_dir.mkdir(parents=True, mode=0o700)
        password = secrets.token_urlsafe(16)
        credentials = _secret(secrets_dir / "credentials", f"{DEMO_USER}:{password}\n")
        tokens = _secret(secrets_dir / "webhook-tokens", secrets.token_urlsafe(32) + "\n")
        written.append(
            SiteFiles(
                name=site.name,
                timezone=site.timezone,
                nvgrid_host=f"127.0.0.1:{sim_port + i}",
                ca_cert=(tls_dir / site.name / "ca.pem").resolve(),
                credentials=credentials.resolve(),
                webhook_tokens=tokens.resolve(),
                username=DEMO_USER,
                password=password,
            )
        )
    path = directory / "sites.toml"
    path.write_text(_toml(written), encoding="utf-8")
    return SitesFiles(path, tuple(written))


def _secret(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return path


def _toml(sites: Sequence[SiteFiles]) -> str:
    """The sites file; each value a TOML basic string (JSON's escapes are TOML's)."""
    lines = [
        "# The demo's fleet (GRIDHOOK_SITES_FILE, docs/sites.md): two of the simulator's sites.",
    ]
    for site in sites:
        values = {
            "timezone": site.timezone,
            "nvgrid_host": site.nvgrid_host,
            "nvgrid_tls": "verify",
            "nvgrid_ca_cert": str(site.ca_cert),
            "nvgrid_credentials_file": str(site.credentials),
            "webhook_tokens_file": str(site.webhook_tokens),
        }
        lines += ["", f"[sites.{site.name}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
