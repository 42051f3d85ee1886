"""The HTTP plumbing every function shares (gridhook.http), through functions-framework's
real app for main.py, in process: one JSON error envelope (``details`` always a list), no
answer cached, one Retry-After policy, the framework's own paths (/favicon.ico,
/robots.txt) answered like any unknown path, and a 422 that names its quarantine record."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gridhook import receiver, report_http
from gridhook.cli import main
from gridhook.http import RetryAfter
from gridhook.settings import get_settings
from gridhook.store import StoreError
from tests.harness import FUNCTIONS, SEED_PAYLOAD, TEST_TOKEN

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
FUNCTIONS_SERVED = [
    "receive_power_event",
    "power_report",
    "reconcile_subscriptions",
    "teardown_subscriptions",
]
Serve = Callable[..., FlaskClient]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """serve(target, store_url=…): the real app for main.py serving ``target``."""
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:

        def start(target: str, store_url: str = f"sqlite:///{tmp_path}/events.db") -> FlaskClient:
            mp.setenv("FUNCTION_TARGET", target)
            mp.setenv("GRIDHOOK_STORE", store_url)
            mp.setenv("GRIDHOOK_WEBHOOK_TOKENS", TEST_TOKEN)
            mp.setenv("GRIDHOOK_STORE_TIMEOUT_SECONDS", "2")
            mp.delenv("GRIDHOOK_WEBHOOK_TOKENS_FILE", raising=False)
            # Settings, the receiver and the report service are process-wide singletons.
            get_settings.cache_clear()
            mp.setattr(receiver, "_receiver", None)
            mp.setattr(report_http, "_service", None)
            return create_app(target, str(FUNCTIONS / "main.py")).test_client()

        yield start
        for service in (receiver._receiver, report_http._service):
            if service is not None:
                with contextlib.suppress(StoreError):  # the unopenable one
                    service.store().close()
    get_settings.cache_clear()


def error_of(reply, status: int) -> dict:
    """The error of a JSON error answer in the one envelope, never cached."""
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.mimetype == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.get_json()
    assert list(body) == ["error"]
    error = body["error"]
    assert isinstance(error["code"], str) and error["message"]
    assert isinstance(error["details"], list)
    return error


@pytest.mark.parametrize("target", FUNCTIONS_SERVED)
@pytest.mark.parametrize("path", ["/favicon.ico", "/robots.txt"])
def test_framework_paths_answer_like_any_unknown_path(serve: Serve, target: str, path: str) -> None:
    client = serve(target)
    for method in (client.get, client.post):
        error = error_of(method(path), 404)
        assert error == {"code": "not_found", "message": f"no such path: {path}", "details": []}


def test_the_report_function_answers_its_own_unknown_paths_the_same_way(serve: Serve) -> None:
    client = serve("power_report")
    framework = client.get("/favicon.ico")
    ours = client.get("/no-such-page")
    assert error_of(ours, 404)["code"] == error_of(framework, 404)["code"] == "not_found"
    assert "/no-such-page" in ours.get_json()["error"]["message"]
    assert set(ours.headers.keys()) == set(framework.headers.keys())


def test_every_receiver_error_has_the_envelope(serve: Serve) -> None:
    client = serve("receive_power_event")
    error_of(client.get("/nvgrid/webhook"), 405)
    error_of(client.post("/nvgrid/webhook", data="{}"), 401)
    error_of(client.post("/nvgrid/webhook", data="{", headers=AUTH), 400)


def test_a_422_names_its_quarantine_record(serve: Serve, tmp_path: Path, capsys) -> None:
    client = serve("receive_power_event")
    raw = json.dumps({**copy.deepcopy(SEED_PAYLOAD), "compliant": "yes"}).encode()
    error = error_of(client.post("/nvgrid/webhook", data=raw, headers=AUTH), 422)
    assert error["code"] == "schema_violation" and error["details"]
    quarantine_id = error["quarantine_id"]
    assert quarantine_id == hashlib.sha256(raw).hexdigest()[:32]

    store = f"sqlite:///{tmp_path}/events.db"
    assert main(["quarantine", "show", quarantine_id, "--store", store]) == 0
    assert f"quarantine_id  {quarantine_id}" in capsys.readouterr().out


def unopenable_store(tmp_path: Path) -> str:
    """A SQLite path whose directory is a file: a store that cannot be opened."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    return f"sqlite:///{blocker}/events.db"


@pytest.mark.parametrize(
    ("target", "request_", "wait"),
    [
        ("receive_power_event", {"method": "POST", "json": SEED_PAYLOAD}, RetryAfter.REQUEST),
        ("power_report", {"method": "GET", "path": "/report"}, RetryAfter.REQUEST),
        ("reconcile_subscriptions", {"method": "POST"}, RetryAfter.JOB),
        ("teardown_subscriptions", {"method": "POST"}, RetryAfter.JOB),
    ],
)
def test_one_retry_after_policy(
    serve: Serve, tmp_path: Path, target: str, request_: dict, wait: RetryAfter
) -> None:
    client = serve(target, store_url=unopenable_store(tmp_path))
    reply = client.open(headers={"Authorization": f"Bearer {TEST_TOKEN}"}, **request_)
    assert reply.status_code == 503, reply.get_data(as_text=True)
    assert reply.headers["Retry-After"] == str(int(wait))
    assert reply.headers["Cache-Control"] == "no-store"
    if target == "receive_power_event":
        assert error_of(reply, 503)["code"] == "store_unavailable"
    elif target == "power_report":  # a reader never creates a store: there is none to read
        assert error_of(reply, 503)["code"] == "store_not_found"
