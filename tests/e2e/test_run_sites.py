"""`gridhook run` with a sites file, as a process: it checks each site's token file, prints
each site's URL and a curl line that works as printed, and serves each site on its path
with its own token only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.harness import SEED_PAYLOAD, free_port, wait_for_port

GRIDHOOK = Path(sys.executable).parent / "gridhook"
TOKENS = {"phx1": "phx1-token-0123456789abcdef", "ams2": "ams2-token-0123456789abcdef"}

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def sites_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    tables = []
    for site, token in TOKENS.items():
        (tmp_path / site).mkdir(exist_ok=True)
        (tmp_path / site / "webhook-tokens").write_text(token + "\n")
        tables.append(
            f'[sites.{site}]\ntimezone = "UTC"\nnvgrid_host = "dps.{site}.test:443"\n'
            f'nvgrid_credentials_file = "{tmp_path / site / "credentials"}"\n'
            f'webhook_tokens_file = "{tmp_path / site / "webhook-tokens"}"\n'
        )
    (tmp_path / "sites.toml").write_text("\n".join(tables))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDHOOK_", "FIRESTORE_"))}
    return {**env, "GRIDHOOK_SITES_FILE": str(tmp_path / "sites.toml"), **extra}


def test_run_serves_each_site_on_its_path_with_its_token(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(GRIDHOOK), "run", "--port", str(port)],
        cwd=tmp_path,
        env=sites_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 30, proc=server)
        assert server.stdout is not None
        banner: list[str] = []
        while not banner or not banner[-1].startswith("  -d '"):
            banner.append(server.stdout.readline().rstrip("\n"))
        text = "\n".join(banner)
        assert f"  phx1  http://localhost:{port}/nvgrid/webhook/phx1  (its token)" in text
        assert f"  ams2  http://localhost:{port}/nvgrid/webhook/ams2  (its token)" in text
        assert not any(token in text for token in TOKENS.values())  # secrets not printed
        curl = text[text.index("  curl") :].strip()
        out = subprocess.run(
            ["bash", "-c", curl + " --silent --show-error"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        on_phx1 = json.loads(out.stdout)
        assert on_phx1["status"] == "accepted"

        base = f"http://127.0.0.1:{port}/nvgrid/webhook"
        for token, status in ((TOKENS["phx1"], 401), (TOKENS["ams2"], 200)):
            reply = requests.post(
                f"{base}/ams2",
                json=SEED_PAYLOAD,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert reply.status_code == status, reply.text
        assert reply.json()["event_id"] != on_phx1["event_id"]
        # This deployment has no default site.
        unknown = requests.post(
            base,
            json=SEED_PAYLOAD,
            headers={"Authorization": f"Bearer {TOKENS['phx1']}"},
            timeout=30,
        )
        assert (unknown.status_code, unknown.json()["error"]["site"]) == (404, "default")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def test_run_names_the_site_whose_token_file_is_missing(tmp_path: Path) -> None:
    env = sites_env(tmp_path)
    (tmp_path / "ams2" / "webhook-tokens").unlink()
    result = subprocess.run(
        [str(GRIDHOOK), "run", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "site ams2: webhook_tokens_file" in result.stderr
    assert not (tmp_path / "var").exists()  # no development token made beside the sites
