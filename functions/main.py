"""Cloud Functions entry points. Each is a few lines; the work lives in gridhook."""

import os

import flask
import functions_framework

from gridhook import receiver
from gridhook.http import install_error_handlers

# Read and validate settings at cold start: a bad setting fails start-up, naming it.
# The report and sample_load functions hold no webhook token, so each checks only the
# settings it reads; the subscription jobs read each site's files per run, so that one
# site's missing secret fails that site only.
_TARGET = os.environ.get("FUNCTION_TARGET")
if _TARGET == "power_report":
    from gridhook import report_http

    report_http.check_startup()
elif _TARGET == "sample_load":
    from gridhook import jobs

    jobs.check_sample_startup()
elif _TARGET in ("reconcile_subscriptions", "teardown_subscriptions"):
    from gridhook import jobs

    jobs.check_startup()
else:
    receiver.check_startup()
install_error_handlers(functions_framework.errorhandler)


@functions_framework.http
def receive_power_event(request: flask.Request) -> flask.Response:
    """DPS NvGrid power-event webhook: validate, store exactly once, acknowledge."""
    return receiver.handle(request)


@functions_framework.http
def reconcile_subscriptions(request: flask.Request) -> flask.Response:
    """Scheduled: make DPS's webhook registrations match ours and record drift."""
    from gridhook import jobs

    return jobs.reconcile_http(request)


@functions_framework.http
def teardown_subscriptions(request: flask.Request) -> flask.Response:
    """On demand: unregister every webhook this deployment registered."""
    from gridhook import jobs

    return jobs.teardown_http(request)


@functions_framework.http
def sample_load(request: flask.Request) -> flask.Response:
    """Scheduled, per site: one GetStatus, kept as load samples (the interval data)."""
    from gridhook import jobs

    return jobs.sample_http(request)


@functions_framework.http
def power_report(request: flask.Request) -> flask.Response:
    """Private, read-only: the control-room page, curtailment reports and episodes."""
    from gridhook import report_http

    return report_http.handle(request)
