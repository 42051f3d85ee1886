"""power_report's log lines carry the site a request concerns (issue 14: "Log lines carry
site"; the log metrics take their ``site`` label from ``jsonPayload.site``): a site's page,
``site=`` naming one site (or ``sites`` naming several), refusals and a store failure alike;
a one-site deployment's every line names its only site; the fleet page, which concerns every
site, names none. The real functions-framework app in-process on a SQLite fleet."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhook.store import open_store
from tests.fleet_scenario import AMS, PHX, seed_fleet, sites_json
from tests.harness import FunctionApp, function_app

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
NOW = ORIGIN + timedelta(hours=20)


class _Fields(logging.Handler):
    """Every power_report log line's structured fields."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None) or {}
        self.lines.append({k: v for k, v in fields.items() if v is not None})


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    handler = _Fields()
    logger = logging.getLogger("gridhook.report_http")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def _env(store_url: str, **more: str) -> dict[str, str]:
    clock = f"0.000001@{NOW:%Y-%m-%dT%H:%M:%SZ}@{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    return {"GRIDHOOK_STORE": store_url, "GRIDHOOK_DEV_CLOCK": clock, **more}


@pytest.fixture(scope="module")
def fleet_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report-log-sites') / 'events.db'}"
    store = open_store(url)
    try:
        seed_fleet(store, ORIGIN, NOW)
    finally:
        store.close()
    return url


@pytest.fixture
def fleet(fleet_store: str) -> Iterator[FunctionApp]:
    with function_app("power_report", _env(fleet_store, GRIDHOOK_SITES=sites_json())) as app:
        yield app


def _line_of(app: FunctionApp, lines: list[dict[str, Any]], path: str, **params: Any) -> dict:
    lines.clear()
    response = app.get(path, params=params)
    [line] = [line for line in lines if "status" in line]  # the request's one line
    assert line["status"] == response.status_code, response.text
    return line


@pytest.mark.parametrize(
    ("path", "params", "status", "site"),
    [
        (f"/sites/{PHX}", {}, 200, PHX),
        ("/report", {"site": AMS, "since": "1d", "format": "json"}, 200, AMS),
        ("/episodes", {"site": PHX, "since": "1d"}, 200, PHX),
        ("/report", {"site": PHX, "since": "yesterday-ish"}, 400, PHX),  # a bad parameter
        ("/sites/nowhere", {}, 404, "nowhere"),  # an unknown site: the name asked for
        ("/report", {"site": "nowhere"}, 400, "nowhere"),
    ],
)
def test_a_request_about_one_site_logs_its_site(
    fleet: FunctionApp,
    lines: list[dict[str, Any]],
    path: str,
    params: dict[str, str],
    status: int,
    site: str,
) -> None:
    line = _line_of(fleet, lines, path, **params)
    assert (line["status"], line.get("site"), line.get("sites")) == (status, site, None)


def test_a_request_about_several_sites_logs_them_and_the_fleet_page_none(
    fleet: FunctionApp, lines: list[dict[str, Any]]
) -> None:
    line = _line_of(fleet, lines, "/report", site=[PHX, AMS], since="1d", format="json")
    assert "site" not in line and line["sites"] == [PHX, AMS]
    line = _line_of(fleet, lines, "/")
    assert line["status"] == 200 and "site" not in line and "sites" not in line


def test_a_one_site_deployment_logs_its_only_site_even_when_the_store_fails(
    tmp_path: Path, lines: list[dict[str, Any]]
) -> None:
    missing = f"sqlite:///{tmp_path / 'never-made.db'}"  # reports never create a store: 503
    with function_app("power_report", _env(missing)) as app:
        for path in ("/", "/report", "/nowhere"):
            line = _line_of(app, lines, path)
            assert line.get("site") == "default", (path, line)
        assert _line_of(app, lines, "/")["status"] == 503
