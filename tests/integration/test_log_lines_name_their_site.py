"""Lines logged by code that knows nothing of sites still name the site they concern (issue
14: "Log lines carry site"; the log metrics take their ``site`` label from
``jsonPayload.site``): the NvGrid client's retries during one site's reconcile, and a
webhook token file's reload on one site's delivery. ``gridhook.log.about_site`` sets the
site for the work of one thread; a line that names its own site keeps it.

Real parts: the jobs against a DPS address where nothing listens (UNAVAILABLE, retried:
what a site whose DPS is down does), the receiver as the real functions-framework app."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.processes import free_port
from gridhook import log
from gridhook.auth import ReloadingTokenVerifier
from gridhook.jobs import run_reconcile
from gridhook.log import JsonFormatter
from gridhook.settings import load_settings
from tests.harness import function_app


class _Lines(logging.Handler):
    """Every line of a gridhook logger, as the JSON the deployment writes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    handler = _Lines()
    loggers = [logging.getLogger(name) for name in ("gridhook.nvgrid", "gridhook.auth", "t")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_about_site_names_the_site_of_its_own_thread_only(lines: list[dict[str, Any]]) -> None:
    logger = logging.getLogger("t")
    elsewhere = threading.Event()

    def other_thread() -> None:
        logger.info("another thread's line")
        elsewhere.set()

    with log.about_site("phx1"):
        logger.info("inside")
        logger.info("its own", extra={"fields": {"site": "ams1"}})
        logger.info("several", extra={"fields": {"sites": ["phx1", "ams1"]}})
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    logger.info("outside")
    assert elsewhere.is_set()
    sites = {line["message"]: (line.get("site"), line.get("sites")) for line in lines}
    assert sites == {
        "inside": ("phx1", None),
        "its own": ("ams1", None),
        "several": (None, ["phx1", "ams1"]),
        "another thread's line": (None, None),
        "outside": (None, None),
    }


def _site(tmp_path: Path, name: str, port: int) -> dict[str, str]:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "credentials").write_text("demo:secret\n")
    (directory / "webhook-tokens").write_text(f"token-of-{name}-0123456789abcdef\n")
    return {
        "timezone": "UTC",
        "nvgrid_host": f"127.0.0.1:{port}",
        "nvgrid_tls": "plaintext",
        "nvgrid_credentials_file": str(directory / "credentials"),
        "webhook_tokens_file": str(directory / "webhook-tokens"),
    }


def test_the_nvgrid_clients_retries_name_the_site_whose_dps_is_down(
    tmp_path: Path, lines: list[dict[str, Any]]
) -> None:
    sites = {"phx1": _site(tmp_path, "phx1", free_port()), "ams1": _site(tmp_path, "ams1", 1)}
    settings = load_settings(
        {
            "GRIDHOOK_STORE": f"sqlite:///{tmp_path / 'events.db'}",
            "GRIDHOOK_SITES": json.dumps({"sites": sites}),
            "GRIDHOOK_WEBHOOK_URL": "http://127.0.0.1:8080/nvgrid/webhook",
            "GRIDHOOK_RECONCILE_DEADLINE_SECONDS": "4",
        }
    )
    run = run_reconcile(settings)
    assert {site: report.status for site, report in run.reports.items()} == {
        "phx1": "unavailable",
        "ams1": "unavailable",
    }
    retries = [line for line in lines if "retrying" in line["message"]]
    assert retries, lines  # the client retried each DPS that did not answer
    for line in retries:
        host = sites[line["site"]]["nvgrid_host"]
        assert host in line["message"], line  # the line's site is the DPS it called
    assert {line["site"] for line in retries} == {"phx1", "ams1"}


def test_a_token_file_reload_names_its_site(tmp_path: Path, lines: list[dict[str, Any]]) -> None:
    sites = {"phx1": _site(tmp_path, "phx1", 1), "ams1": _site(tmp_path, "ams1", 1)}
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path / 'events.db'}",
        "GRIDHOOK_SITES": json.dumps({"sites": sites}),
    }
    unknown = {"token": "rotated-0123456789abcdef"}
    with function_app("receive_power_event", env) as app:
        assert app.post("/nvgrid/webhook/ams1", json={}, params=unknown).status_code == 401
        # ams1 rotates badly: its file is emptied. A token the receiver does not know makes
        # it look at the file early (at most once a second); it keeps the tokens in force and
        # says so, naming ams1.
        Path(sites["ams1"]["webhook_tokens_file"]).write_text("")
        time.sleep(ReloadingTokenVerifier._FORCED_INTERVAL + 0.1)
        assert app.post("/nvgrid/webhook/ams1", json={}, params=unknown).status_code == 401
    [kept] = [line for line in lines if "keeping the previous tokens" in line["message"]]
    assert kept["site"] == "ams1"
