"""The CLI and power_report read parameters by the same rules (issue 15, item 11).

One table of cases runs on both sides: ``gridhook report|episodes`` in-process and the real
power_report app (functions-framework, in-process) on the same seeded SQLite store. A case
is accepted by both, with the same episodes, or refused by both, naming the same parameter
(``--correlation-id`` on the command line is ``correlation_id`` over HTTP).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from gridhook.cli import main
from gridhook.store import open_store
from tests.report_app import power_report_client
from tests.report_scenario import seed_day

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
DAY = {"since": "2026-01-10T00:00:00Z", "until": "2026-01-11T00:00:00Z"}


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # report or episodes
    params: dict[str, str | list[str]]
    refused: str | None = None  # the parameter blamed; None: accepted
    correlation_ids: tuple[str, ...] | None = None  # what an accepted case lists


CASES = [
    Case(
        "lowercase RFC 3339",
        "episodes",
        {"since": "2026-01-10t00:00:00z", "until": "2026-01-11t00:00:00z"},
        correlation_ids=("dr-0600", "dr-0800", "dr-1100", "dr-1400", "dr-2000"),
    ),
    Case(
        "status in any case", "episodes", {**DAY, "status": "STALLED"}, correlation_ids=("dr-2000",)
    ),
    Case(
        "format in any case",
        "report",
        {**DAY, "format": "JSON"},
        correlation_ids=("dr-0600", "dr-0800", "dr-1100", "dr-1400", "dr-2000"),
    ),
    Case(
        "a correlation id is found any time",
        "episodes",
        {"correlation_id": "dr-0800"},
        correlation_ids=("dr-0800",),
    ),
    Case("since given twice", "report", {"since": ["1d", "2d"]}, refused="since"),
    Case("empty correlation id", "episodes", {"correlation_id": ""}, refused="correlation_id"),
    Case("empty feed", "report", {"feed": ""}, refused="feed"),
    Case("over 400 days", "episodes", {"since": "401d"}, refused="since"),
    Case(
        "over 400 days into the future",
        "report",
        {"since": "1d", "until": "2099-01-01T00:00:00Z"},
        refused="until",
    ),
    Case(
        "over 400 days in the past",
        "report",
        {"since": "2020-01-01T00:00:00Z", "until": "1d"},
        refused="since",
    ),
    Case(
        "backwards",
        "episodes",
        {"since": "2026-01-11T00:00:00Z", "until": "2026-01-10T00:00:00Z"},
        refused="until",
    ),
    Case(
        "a time a datetime cannot hold",
        "report",
        {"until": "0001-01-01T00:00:00+01:00"},
        refused="until",
    ),
    Case("unknown status", "episodes", {"status": "late"}, refused="status"),
    Case("unknown format", "report", {"format": "pdf"}, refused="format"),
]


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('params') / 'events.db'}"
    store = open_store(url)
    try:
        seed_day(store, ORIGIN)
    finally:
        store.close()
    return url


@pytest.fixture
def client(store_url: str) -> Iterator[Any]:
    with power_report_client(store_url) as test_client:
        yield test_client


def listed_ids(path: str, body: Any) -> tuple[str, ...]:
    episodes = (
        [e for f in body["feeds"] for e in f["episodes"]] if path == "report" else body["episodes"]
    )
    return tuple(sorted(e["correlation_id"] for e in episodes))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_over_http(client: Any, case: Case) -> None:
    query = dict(case.params)
    if case.path == "report":
        query.setdefault("format", "json")
    response = client.get(f"/{case.path}", query_string=query)
    if case.refused is None:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert listed_ids(case.path, response.get_json()) == case.correlation_ids
    else:
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["details"][0]["parameter"] == case.refused, error


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_on_the_command_line(
    store_url: str, capsys: pytest.CaptureFixture[str], case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRIDHOOK_DEV_CLOCK", raising=False)
    argv = [case.path, "--store", store_url]
    for name, values in case.params.items():
        for value in [values] if isinstance(values, str) else values:
            argv += [f"--{name.replace('_', '-')}", value]
    if "format" not in case.params:
        argv += ["--format", "json"]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusing an argument
        code = exc.code
    out, err = capsys.readouterr()
    if case.refused is None:
        assert code == 0, err
        body = json.loads(out)
        body = body if case.path == "report" else {"episodes": body}
        assert listed_ids(case.path, body) == case.correlation_ids
    else:
        assert (code, out) == (2, "")
        flag = f"--{case.refused.replace('_', '-')}"
        assert err.startswith(f"gridhook {case.path}: {flag}: ") and err.count("\n") == 1, err
