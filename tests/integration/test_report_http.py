"""power_report as the real functions-framework app, in-process (``app``, Flask's test
client): the control room, reports, episodes, every 400, and that it never writes to the
store — on SQLite and on Firestore (the emulator, through the real client), the same
scenario and the same answers; its log lines through the real server (``server``), which
writes them to stdout."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests

from gridhook.episodes.load import load_episodes
from gridhook.state.load import current_feed_states
from gridhook.store import open_store
from tests.harness import FunctionApp, FunctionServer, Reply, function_app, function_server
from tests.report_scenario import FEED_A, FEED_B, seed_day

ORIGIN = datetime(2026, 1, 10, tzinfo=UTC)
# The server's clock shows the end of the seeded day (the development clock at speed 1).
SERVER_NOW = ORIGIN + timedelta(hours=24)
DEADLINE = timedelta(seconds=1800)


def dev_clock() -> str:
    real = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"1@{SERVER_NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}@{real}"


@dataclass(frozen=True)
class Seeded:
    """The scenario's day in a store of one backend."""

    url: str
    env: dict[str, str] = field(default_factory=dict)  # what a process needs to reach it
    sqlite_path: Path | None = None
    firestore_project: str | None = None


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("report") / "events.db"
        seeded = Seeded(f"sqlite:///{path}", sqlite_path=path)
    else:
        emulator = request.getfixturevalue("firestore_emulator")
        project = f"report-{uuid.uuid4().hex[:12]}"  # this module's own
        seeded = Seeded(
            f"firestore://{project}/gridhook",
            {"FIRESTORE_EMULATOR_HOST": emulator.host},
            firestore_project=project,
        )
    with pytest.MonkeyPatch.context() as env:
        for name, value in seeded.env.items():  # this process reads the store too
            env.setenv(name, value)
        store = open_store(seeded.url)
        try:
            seed_day(store, ORIGIN)
        finally:
            store.close()
        yield seeded


def store_contents(seeded: Seeded) -> list[Any]:
    """Everything the store holds, read past gridhook: SQLite's dump; every Firestore
    document of gridhook's collections with its update time (a rewrite shows too)."""
    if seeded.sqlite_path is not None:
        with sqlite3.connect(seeded.sqlite_path) as conn:
            return list(conn.iterdump())
    from google.cloud import firestore

    from gridhook.store.firestore import COLLECTIONS

    client = firestore.Client(project=seeded.firestore_project, database="gridhook")
    try:
        return [
            (name, doc.id, doc.update_time, doc.to_dict())
            for name in sorted(COLLECTIONS.values())
            for doc in sorted(client.collection(name).stream(), key=lambda d: d.id)
        ]
    finally:
        client.close()


def report_env(seeded: Seeded) -> dict[str, str]:
    return {
        **seeded.env,
        "GRIDHOOK_STORE": seeded.url,
        "GRIDHOOK_DEV_CLOCK": dev_clock(),
        "GRIDHOOK_RAMP_DEADLINE_SECONDS": str(int(DEADLINE.total_seconds())),
        # The report holds no webhook token: none is set here.
        "GRIDHOOK_WEBHOOK_TOKENS": "",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": "",
    }


@pytest.fixture(scope="module")
def server(seeded: Seeded) -> Iterator[FunctionServer]:
    with function_server("power_report", report_env(seeded)) as srv:
        yield srv


@pytest.fixture(scope="module")
def app(seeded: Seeded) -> Iterator[FunctionApp]:
    with function_app("power_report", report_env(seeded)) as function:
        yield function


def get(server: FunctionServer | FunctionApp, path: str, **params) -> requests.Response | Reply:
    if isinstance(server, FunctionApp):
        return server.get(path, params=params)
    return requests.get(server.url + path, params=params, timeout=60)


def expected_episodes(seeded: Seeded, since: datetime, until: datetime, **filters):
    store = open_store(seeded.url)
    try:
        # The server's clock has moved on a little since SERVER_NOW; statuses agree as
        # long as no ramp deadline falls in between, which the scenario keeps far apart.
        return load_episodes(
            store, since=since, until=until, now=SERVER_NOW, ramp_deadline=DEADLINE, **filters
        )
    finally:
        store.close()


class _Tags(HTMLParser):
    """Each start tag with its attributes, and the classes of the <section>s around it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self._sections: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._sections.append(attrs.get("class", ""))
        self.found.append((tag, attrs, tuple(self._sections)))

    def handle_endtag(self, tag):
        if tag == "section" and self._sections:
            self._sections.pop()


def row_ids(html: str, section: str) -> list[str]:
    """The episode ids of the table rows inside a <section class="{section} ...">."""
    return [
        attrs["data-episode-id"]
        for tag, attrs, sections in _Tags(html).found
        if tag == "tr"
        and "data-episode-id" in attrs
        and any(section in classes.split() for classes in sections)
    ]


def feed_cards(html: str) -> dict[str, str]:
    return {
        attrs["data-feed-tag"]: attrs["class"]
        for tag, attrs, _ in _Tags(html).found
        if tag == "article" and "data-feed-tag" in attrs
    }


def assert_json_error(response: requests.Response | Reply, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


# -- the control room -------------------------------------------------------------------


def test_control_room_shows_each_feed_open_episodes_and_the_last_day(app, seeded) -> None:
    response = get(app, "/")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    html = response.text
    assert '<meta http-equiv="refresh" content="30">' in html

    store = open_store(seeded.url)
    try:
        states = current_feed_states(store, now=SERVER_NOW, ramp_deadline=DEADLINE)
    finally:
        store.close()
    week = expected_episodes(seeded, SERVER_NOW - timedelta(days=7), SERVER_NOW)
    stalled = {e.feed_tag for e in week if e.open and e.status == "stalled"}
    # The cards' stalled is the state's, and the state's is the episodes'.
    assert stalled == {tag for tag, state in states.items() if state.stalled} == {FEED_A}
    assert feed_cards(html) == {
        tag: f"feed-card phase-{state.phase}" + (" stalled" if tag in stalled else "")
        for tag, state in states.items()
    }
    newest_first = sorted(week, key=lambda e: (e.started_at, e.episode_id), reverse=True)
    open_ids = [e.episode_id for e in newest_first if e.open]
    assert open_ids, "the scenario leaves a stalled ramp open"
    assert row_ids(html, "open-episodes") == open_ids
    assert row_ids(html, "recent-episodes") == [e.episode_id for e in newest_first]
    # The last 24 hours: one timeline per feed, each an SVG with drawn paths.
    day = html[html.index('class="last-day"') : html.index('class="recent-episodes"')]
    assert day.count("<svg") == 2 and day.count("<path") > 20
    assert "stalled" in html


def test_head_answers_like_get_without_a_body(app) -> None:
    response = app.head("/")
    assert response.status_code == 200 and response.content == b""


# -- /report ----------------------------------------------------------------------------


def test_report_html_json_and_csv_agree_with_the_store(app, seeded) -> None:
    since, until = ORIGIN, SERVER_NOW
    query = {"since": "2026-01-10T00:00:00Z", "until": "2026-01-11T00:00:00Z"}
    expected = [e.episode_id for e in expected_episodes(seeded, since, until)]
    assert len(expected) == 5

    html = get(app, "/report", **query)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert sorted(row_ids(html.text, "feed")) == sorted(expected)
    # For each feed: a timeline, delivered against needed, and compliance by day.
    assert html.text.count("<svg") == 6

    data = get(app, "/report", format="json", **query).json()
    assert [f["feed_tag"] for f in data["feeds"]] == sorted([FEED_A, FEED_B])
    got = [e["episode_id"] for f in data["feeds"] for e in f["episodes"]]
    assert sorted(got) == sorted(expected)
    assert data["overall"]["judged"] == 4 and data["overall"]["compliant"] == 3
    assert data["overall"]["by_status"]["stalled"] == 1

    response = get(app, "/report", format="csv", **query)
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["episode_id"] for r in rows) == sorted(expected)


def test_report_defaults_to_the_last_30_days_on_the_servers_clock(app) -> None:
    data = get(app, "/report", format="json").json()
    since = datetime.fromisoformat(data["since"])
    until = datetime.fromisoformat(data["until"])
    assert until - since == timedelta(days=30)
    assert SERVER_NOW <= until < SERVER_NOW + timedelta(minutes=10)
    assert data["overall"]["episodes"] == 5


def test_report_for_one_feed(app, seeded) -> None:
    data = get(app, "/report", feed=FEED_B, since="2d", format="json").json()
    assert [f["feed_tag"] for f in data["feeds"]] == [FEED_B]
    expected = expected_episodes(seeded, ORIGIN, SERVER_NOW, feed_tag=FEED_B)
    assert [e["episode_id"] for e in data["feeds"][0]["episodes"]] == [
        e.episode_id for e in expected
    ]


def test_report_of_an_empty_range_says_so(app) -> None:
    response = get(app, "/report", since="2025-06-01T00:00:00Z", until="2025-06-02T00:00:00Z")
    assert response.status_code == 200
    assert "Nothing to report" in response.text and "<svg" not in response.text


# -- /episodes --------------------------------------------------------------------------


def test_episodes_as_json_filtered(app, seeded) -> None:
    body = get(app, "/episodes", since="2d").json()
    expected = expected_episodes(seeded, SERVER_NOW - timedelta(days=2), SERVER_NOW)
    assert body["count"] == len(expected) == 5
    assert [e["episode_id"] for e in body["episodes"]] == [e.episode_id for e in expected]

    stalled = get(app, "/episodes", since="2d", status="stalled").json()["episodes"]
    assert [(e["feed_tag"], e["correlation_id"]) for e in stalled] == [(FEED_A, "dr-2000")]

    one = get(app, "/episodes", since="2d", feed=FEED_B, correlation_id="dr-1400").json()
    ((only),) = [one["episodes"]]
    assert [e["compliant"] for e in only] == [False]


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/report", {"since": "last week"}, "since"),
        ("/report", {"until": "2026-13-40"}, "until"),
        ("/report", {"since": "1h", "until": "2h"}, "until"),
        ("/report", {"since": "401d"}, "since"),
        ("/report", {"feed": "x" * 300}, "feed"),
        ("/report", {"feed": ""}, "feed"),
        ("/report", {"format": "pdf"}, "format"),
        ("/report", {"fromat": "csv"}, "fromat"),
        ("/report", {"since": ["1d", "2d"]}, "since"),
        ("/episodes", {"status": "late"}, "status"),
        ("/episodes", {"correlation_id": ""}, "correlation_id"),
        ("/episodes", {"since": "-1d"}, "since"),
        ("/episodes", {"format": "csv"}, "format"),
        ("/", {"since": "1d"}, "since"),
    ],
)
def test_a_bad_parameter_answers_400_naming_it(app, path, params, parameter) -> None:
    error = assert_json_error(get(app, path, **params), 400, "bad_parameter")
    assert error["details"] == [{"parameter": parameter, "message": error["details"][0]["message"]}]
    assert error["message"].startswith(f"{parameter}:")


def test_unknown_path_is_404_json(app) -> None:
    error = assert_json_error(get(app, "/reports"), 404, "not_found")
    assert "/report" in error["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_is_allowed(app, method) -> None:
    response = app.request(method, "/report")
    assert_json_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD"


def test_every_request_is_one_json_log_line(server) -> None:
    get(server, "/report", since="bogus")
    lines = [json.loads(x) for x in server.logs().splitlines() if x.startswith("{")]
    bad = [x for x in lines if x.get("outcome") == "bad_parameter"]
    assert bad and bad[-1]["status"] == 400 and bad[-1]["severity"] == "WARNING"
    assert bad[-1]["path"] == "/report" and "latency_ms" in bad[-1]


def test_serving_reports_never_writes_to_the_store(app, seeded) -> None:
    before = store_contents(seeded)
    assert before
    for path, params in [
        ("/", {}),
        ("/report", {"since": "2d"}),
        ("/report", {"since": "2d", "format": "csv"}),
        ("/episodes", {"since": "2d"}),
    ]:
        assert get(app, path, **params).status_code == 200
    assert store_contents(seeded) == before


def test_an_empty_store_gives_a_calm_control_room(store_url: str) -> None:
    env = {"GRIDHOOK_STORE": store_url}  # the backend's settings are in os.environ
    open_store(store_url).close()  # made by the receiver, nothing stored yet
    with function_app("power_report", env) as srv:
        page = get(srv, "/")
        assert page.status_code == 200
        assert "No feed has reported a power event yet." in page.text
        assert "Nothing in the last 24 hours" in page.text and "<svg" not in page.text
        assert get(srv, "/episodes").json()["count"] == 0


def test_store_unavailable_is_503_with_retry_after(tmp_path: Path) -> None:
    broken = tmp_path / "events.db"
    broken.write_text("a file that is not a database")
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{broken}",
        "GRIDHOOK_WEBHOOK_TOKENS": "",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": "",
    }
    with function_app("power_report", env) as srv:
        for path in ("/", "/report", "/episodes"):
            response = get(srv, path)
            assert_json_error(response, 503, "store_unavailable")
            assert response.headers["Retry-After"] == "5"
