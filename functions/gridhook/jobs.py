"""The scheduled and on-demand jobs: reconcile_subscriptions, teardown_subscriptions and
sample_load.

All are private HTTP functions (Cloud Scheduler calls reconcile and sample_load with an
OIDC token, one job per site, each naming its site as ``?site=NAME``).
Answers: 200 with a JSON summary when the world matches; 503 (``Retry-After`` by the jobs'
policy in ``gridhook.http``) when DPS or the store could not be reached, so Scheduler
retries; 200 with ``status: error`` for permanent failures
that retrying cannot fix (not whitelisted, bad credentials), logged at ERROR; 404 JSON
(``unknown_site``) for a site this deployment does not serve.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import flask

from gridhook import clock, http, log
from gridhook.observe import SampleReport, sample_feeds
from gridhook.settings import ConfigError, Settings, get_settings
from gridhook.sites import DEFAULT_SITE, UnknownSite
from gridhook.store import EventStore, StoreError, open_store
from gridhook.subscriptions import (
    NvGridApi,
    ReconcileReport,
    TeardownReport,
    reconcile,
    teardown,
)

__all__ = [
    "check_sample_startup",
    "open_nvgrid",
    "reconcile_http",
    "requested_site",
    "run_reconcile",
    "run_sample",
    "run_teardown",
    "sample_http",
    "teardown_http",
]

_logger = log.get_logger("gridhook.jobs")


def open_nvgrid(settings: Settings) -> Any:
    """An NvGrid client from the NVGRID_* settings, with calls bounded by the run's deadline."""
    from gridhook.nvgrid import CallPolicy, NvGridClient, credentials_from_env, endpoint_from_env

    budget = settings.reconcile_deadline_seconds
    # A few calls per run: each may retry for at most a quarter of the run's deadline.
    policy = CallPolicy(call_timeout=min(10.0, budget / 4), overall_timeout=budget / 4)
    return NvGridClient(endpoint_from_env(policy=policy), credentials_from_env())


def _with_resources(
    settings: Settings,
    work: Callable[[EventStore, NvGridApi], Any],
    on_failure: Callable[[str, str, str, str], Any],
) -> Any:
    from gridhook.nvgrid import NvGridError, NvGridUnavailable

    log.configure(settings.log_level)
    # Receipt times and ramp deadlines are judged by one clock (a demo's fast one, if set).
    clock.use(settings.dev_clock, _logger, "ramp deadlines and sample times")

    try:
        store = open_store(settings.store_url, timeout_seconds=settings.store_timeout_seconds)
    except (StoreError, ValueError) as exc:
        return on_failure("unavailable", "store_unavailable", str(exc), "retry later")
    try:
        try:
            nvgrid = open_nvgrid(settings)
        except NvGridUnavailable as exc:  # skip-verify fetches the certificate up front
            return on_failure("unavailable", "nvgrid_unavailable", str(exc), "retry later")
        except NvGridError as exc:  # configuration: missing host, credentials, CA file
            return on_failure("error", "nvgrid_config", str(exc), "fix the NVGRID_* settings")
        try:
            return work(store, nvgrid)
        finally:
            nvgrid.close()
    except StoreError as exc:
        return on_failure("unavailable", "store_unavailable", str(exc), "retry later")
    except ConfigError as exc:
        return on_failure("error", "config", str(exc), "fix the setting it names")
    finally:
        store.close()


def run_reconcile(settings: Settings | None = None) -> ReconcileReport:
    settings = settings or get_settings()

    def failed(status: str, code: str, message: str, action: str) -> ReconcileReport:
        report = ReconcileReport()
        report.fail(status, code, message, action)
        _logger.error(
            "reconcile failed: %s — %s",
            message,
            action,
            extra={"fields": {"outcome": "reconcile_failed", "code": code}},
        )
        return report

    return _with_resources(settings, lambda s, n: reconcile(settings, s, n), failed)


def run_teardown(settings: Settings | None = None) -> TeardownReport:
    settings = settings or get_settings()

    def failed(status: str, code: str, message: str, action: str) -> TeardownReport:
        report = TeardownReport(unavailable=status == "unavailable")
        report.left.append({"url": "(unknown: nothing could be read)", "error": message})
        _logger.error(
            "teardown failed: %s — %s",
            message,
            action,
            extra={"fields": {"outcome": "teardown_incomplete", "code": code}},
        )
        return report

    return _with_resources(settings, lambda s, n: teardown(settings, s, n), failed)


def run_sample(settings: Settings | None = None, site: str = DEFAULT_SITE) -> SampleReport:
    """One sampling run: one GetStatus, one load sample per feed, logged once."""
    settings = settings or get_settings()

    def failed(status: str, code: str, message: str, action: str) -> SampleReport:
        report = SampleReport(site=site)
        report.fail(status, code, message, action)
        return report

    report: SampleReport = _with_resources(
        settings, lambda s, n: _sample_and_roll_up(settings, s, n, site), failed
    )
    error = report.error or {}
    log.log_event(
        _logger,
        logging.INFO if report.status == "ok" else logging.ERROR,
        f"sampling {report.status}"
        + (f": {error['message']} — {error['action']}" if report.error else ""),
        outcome="sample_ok" if report.status == "ok" else "sample_failed",
        site=site,
        code=error.get("code"),
        feeds=report.feeds,
        samples=report.samples,
        rollups=report.rollups,
    )
    return report


def _sample_and_roll_up(
    settings: Settings, store: EventStore, nvgrid: NvGridApi, site: str
) -> SampleReport:
    """Sample once; then write the rollups of the last complete hours that lack theirs
    (insert-if-absent: a run at the same time, or a retry, writes none twice)."""
    report = sample_feeds(settings, store, nvgrid, clock.now, site)
    if report.sampled_at is None or report.status == "unavailable":
        return report  # nothing asked of DPS, or the store is down: the next run catches up
    from gridhook.intervals.rollups import RECENT_HOURS, roll_up

    try:
        run = roll_up(
            store,
            site=site,
            since=report.sampled_at - timedelta(hours=RECENT_HOURS),
            until=report.sampled_at,
            now=report.sampled_at,  # DPS's time, as the samples are stamped
            retention=timedelta(days=settings.sample_retention_days),
            feeds=report.dps_feeds,
        )
    except StoreError as exc:
        action = "the store is unavailable; the run will be retried"
        report.fail("unavailable", "store_unavailable", f"rolling up hours: {exc}", action)
        return report
    report.rollups = run.written
    return report


def check_sample_startup() -> None:
    """Cold start of sample_load: its settings only (it holds no webhook token)."""
    log.configure(get_settings().log_level)


def requested_site(request: flask.Request) -> str:
    """The site a job call names with ``?site=NAME`` (each site's Scheduler job sends it),
    else the default site. Raises UnknownSite for a site this deployment does not serve."""
    name = request.args.get("site", DEFAULT_SITE)
    # Until the jobs act per site (the fleet work), the default site is the only one.
    served = (DEFAULT_SITE,)
    if name not in served:
        raise UnknownSite(name[:100], served)
    return name


def _json(body: dict[str, Any], status: int) -> flask.Response:
    headers = http.RetryAfter.JOB.header() if status == 503 else None
    return http.answer(status, json.dumps(body), headers=headers)


def _unknown_site(exc: UnknownSite) -> flask.Response:
    return http.error_answer(404, "unknown_site", str(exc), site=exc.name)


def reconcile_http(request: flask.Request) -> flask.Response:
    try:
        requested_site(request)
    except UnknownSite as exc:
        return _unknown_site(exc)
    report = run_reconcile()
    return _json(report.to_dict(), 503 if report.status == "unavailable" else 200)


def teardown_http(request: flask.Request) -> flask.Response:
    try:
        requested_site(request)
    except UnknownSite as exc:
        return _unknown_site(exc)
    report = run_teardown()
    return _json(report.to_dict(), 503 if report.unavailable else 200)


def sample_http(request: flask.Request) -> flask.Response:
    try:
        site = requested_site(request)
    except UnknownSite as exc:
        return _unknown_site(exc)
    report = run_sample(site=site)
    return _json(report.to_dict(), 503 if report.status == "unavailable" else 200)
