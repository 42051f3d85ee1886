"""power_report in-process: the real functions-framework app built from ``main.py``, driven
through Flask's test client, on the store a test names.

Settings and the report service are process-wide singletons (read once at cold start), so
the app is built from a clean slate and the slate is cleaned again afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask.testing import FlaskClient

from gridhook import report_http
from gridhook.settings import get_settings
from tests.harness import FUNCTIONS


@contextmanager
def power_report_client(store_url: str) -> Iterator[FlaskClient]:
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDHOOK_STORE", store_url)
        mp.setenv("FUNCTION_TARGET", "power_report")  # main.py checks this function's settings
        for name in ("GRIDHOOK_DEV_CLOCK", "GRIDHOOK_RAMP_DEADLINE_SECONDS"):
            mp.delenv(name, raising=False)
        get_settings.cache_clear()
        mp.setattr(report_http, "_service", None)
        mp.setattr(report_http, "_started", False)
        try:
            yield create_app("power_report", str(FUNCTIONS / "main.py")).test_client()
        finally:
            if report_http._service is not None:
                report_http._service.store().close()
    get_settings.cache_clear()
