"""The test harness's own promises: the one clean environment strips every setting the
code reads; in-process functions leave the process as they found it."""

from __future__ import annotations

import os

from gridhook import clock, receiver
from gridhook.settings import DEV_ENV_VARS, ENV_VARS, get_settings
from tests.harness import TEST_TOKEN, clean_env, function_app


def test_clean_env_strips_every_setting_the_code_and_its_libraries_read() -> None:
    read = {name: "x" for name in (*ENV_VARS, *DEV_ENV_VARS)}
    libraries = {
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
        "AWS_PROFILE": "prod",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://x",
        "GRIDHOOK_SOMETHING_NEW": "1",
        "NVGRID_SOMETHING_NEW": "1",
        "HTTPS_PROXY": "http://proxy:3128",
        "grpc_proxy": "http://proxy:3128",
    }
    kept = {"PATH": "/usr/bin", "HOME": "/root", "PYTHONPATH": "/src"}
    env = clean_env({**read, **libraries, **kept}, GRIDHOOK_STORE="sqlite:///x.db")
    assert env == {**kept, "GRIDHOOK_STORE": "sqlite:///x.db"}


def test_a_bare_env_keeps_only_what_a_clean_venv_needs() -> None:
    source = {"PATH": "/usr/bin", "HOME": "/root", "PYTHONPATH": "/src", "VIRTUAL_ENV": "/v"}
    assert clean_env(source, bare=True, PORT="1") == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "PORT": "1",
    }


def test_the_session_starts_from_the_clean_env() -> None:
    assert clean_env() == dict(os.environ)


def test_function_app_leaves_settings_receiver_clock_and_env_as_found(tmp_path) -> None:
    before = (dict(os.environ), receiver._receiver, clock._dev_clock)
    env = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path}/events.db",
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
        "GRIDHOOK_DEV_CLOCK": "1@2031-06-01T12:00:00Z@2026-01-01T00:00:00Z",
    }
    with function_app("receive_power_event", env) as app:
        assert (
            app.post(json={}, headers={"Authorization": f"Bearer {TEST_TOKEN}"}).status_code == 422
        )
        assert "GRIDHOOK_STORE" not in os.environ  # set only while it builds and answers
        assert clock._dev_clock is not None
    assert (dict(os.environ), receiver._receiver, clock._dev_clock) == before
    assert get_settings.cache_info().currsize == 0
