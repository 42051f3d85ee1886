"""power_report under a failure no real part produces on demand: a store call raising
something unexpected. A stand-in store raises it (the only fake in the report tests; the
real server and store are in tests/integration/test_report_http.py). The answer is still
JSON, 503 with Retry-After, and says nothing of the failure's insides."""

from __future__ import annotations

import flask
import pytest

from gridhook.report_http import ReportService
from gridhook.settings import Settings


class _BrokenStore:
    """Every read fails in a way no backend documents."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise RuntimeError("secret internals: row 42 of table events")

        return fail


@pytest.mark.parametrize("path", ["/", "/report", "/episodes", "/settlement"])
def test_an_unexpected_failure_is_a_503_not_a_500(path) -> None:
    service = ReportService(Settings(), store=_BrokenStore())
    app = flask.Flask(__name__)
    with app.test_request_context(path, method="GET"):
        response = service.handle(flask.request)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)
