"""The scheduled and on-demand jobs: reconcile_subscriptions, teardown_subscriptions and
sample_load, for one site or for every site.

All are private HTTP functions (Cloud Scheduler calls reconcile and sample_load with an
OIDC token, one job per site, each naming its site as ``?site=NAME``; the teardown job
names none: every site).

**One site** (``?site=NAME``): that site's report. 200 with a JSON summary when the world
matches; 503 (``Retry-After`` by the jobs' policy in ``gridhook.http``) when DPS or the
store could not be reached, so Scheduler retries; 200 with ``status: error`` for permanent
failures that retrying cannot fix (not whitelisted, bad credentials), logged at ERROR; 404
JSON (``unknown_site``) for a site this deployment does not serve; 400 for ``site`` given
twice.

**Every site** (no ``?site=``): the sites in parallel, at most
GRIDHOOK_RECONCILE_CONCURRENCY at once, each within the run's deadline
(``gridhook.site_runs``); the answer lists each site's outcome and report, and is 503 when
a retry may fix some site, else 200.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import flask

from gridhook import clock, http, log
from gridhook.observe import SampleReport, sample_feeds
from gridhook.settings import ConfigError, Settings, get_settings
from gridhook.site_runs import SiteReport, SitesRun, run_on_sites
from gridhook.sites import DEFAULT_SITE, SiteConfigError, UnknownSite
from gridhook.store import EventStore, StoreError, open_store
from gridhook.subscriptions import (
    NvGridApi,
    ReconcileReport,
    TeardownReport,
    reconcile,
    teardown,
)

if TYPE_CHECKING:
    from gridhook.nvgrid import CallPolicy, Credentials, NvGridClient, NvGridEndpoint

__all__ = [
    "check_sample_startup",
    "check_startup",
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

R = TypeVar("R", bound=SiteReport)


def open_nvgrid(
    settings: Settings, site: str = DEFAULT_SITE, budget_s: float | None = None
) -> NvGridClient:
    """A client for ``site``'s DPS, each call (retries included) bounded by a quarter of
    ``budget_s`` (default: the run's deadline). NvGridError when the site's NvGrid
    settings or files are wrong (naming the site and the key)."""
    from gridhook.nvgrid import CallPolicy, NvGridClient

    budget = settings.reconcile_deadline_seconds if budget_s is None else budget_s
    # A few calls per site: each may retry for at most a quarter of the site's budget.
    policy = CallPolicy(call_timeout=min(10.0, budget / 4), overall_timeout=budget / 4)
    return NvGridClient(*_site_nvgrid(settings, site, policy))


def _site_nvgrid(
    settings: Settings, site: str, policy: CallPolicy
) -> tuple[NvGridEndpoint, Credentials]:
    """The endpoint and credentials of ``site``: today's NVGRID_* variables for the one
    ``default`` site of a deployment without sites settings, else the site's own fields
    and files."""
    from gridhook.nvgrid import NvGridConfigError
    from gridhook.nvgrid.config import (
        credentials_from_env,
        credentials_from_file,
        endpoint_from_env,
        make_endpoint,
    )

    sites = settings.sites
    entry = sites.get(site)
    if sites.legacy:
        env = entry.legacy_env
        return endpoint_from_env(env, policy=policy), credentials_from_env(env)
    where = f"{sites.source}: site {site}"
    try:
        entry.check_files("nvgrid_ca_cert", "nvgrid_credentials_file")
    except SiteConfigError as exc:
        raise NvGridConfigError(f"{sites.source}: {exc}") from None
    try:
        endpoint = make_endpoint(
            entry.nvgrid_host,
            tls=entry.nvgrid_tls,
            ca_cert_path=entry.nvgrid_ca_cert,
            policy=policy,
            environ={},  # a site's own settings only, never another's NVGRID_*
        )
    except NvGridConfigError as exc:
        raise NvGridConfigError(f"{where}: {exc}") from None
    if entry.nvgrid_credentials_file is None:  # required in a site's table
        raise NvGridConfigError(f"{where}: nvgrid_credentials_file is missing")
    path = Path(entry.nvgrid_credentials_file)
    return endpoint, credentials_from_file(path, source=f"{where}: nvgrid_credentials_file")


@dataclass(frozen=True)
class _Job(Generic[R]):
    """One job as the fleet runs it: its work on one site with that site's DPS client,
    and the report of a site that failed before or around that work."""

    name: str
    work: Callable[[Settings, EventStore, NvGridApi, str], R]
    failed: Callable[[str, str, str, str, str], R]  # site, status, code, message, action


def _run(settings: Settings, sites: Sequence[str] | None, job: _Job[R]) -> SitesRun[R]:
    """``job`` on ``sites`` (None: every site) with one store, each site with its own
    DPS client, in parallel with a bound, answering by the run's deadline."""
    log.configure(settings.log_level)
    # Receipt times and ramp deadlines are judged by one clock (a demo's fast one, if set).
    clock.use(settings.dev_clock, _logger, "ramp deadlines and sample times")
    names = tuple(settings.sites.names if sites is None else sites)
    for name in names:
        settings.sites.get(name)  # UnknownSite before anything is done
    try:
        store = open_store(settings.store_url, timeout_seconds=settings.store_timeout_seconds)
    except (StoreError, ValueError) as exc:
        message = str(exc)
        return SitesRun(
            {
                n: job.failed(n, "unavailable", "store_unavailable", message, "retry later")
                for n in names
            }
        )

    def one(site: str, budget_s: float) -> R:
        with log.about_site(site):  # the NvGrid client's lines (retries, logins) name it too
            return _on_site(settings, store, site, budget_s, job)

    def overdue(site: str, why: str) -> R:
        action = "the site's DPS answers too slowly; the run will be retried"
        return job.failed(site, "unavailable", "deadline_exceeded", f"{job.name}: {why}", action)

    def crashed(site: str, exc: Exception) -> R:
        _logger.error(
            "%s of site %s failed unexpectedly",
            job.name,
            site,
            exc_info=exc,
            extra={"fields": {"site": site}},
        )
        message = f"{job.name}: unexpected {type(exc).__name__}"
        return job.failed(site, "unavailable", "internal_error", message, "see the log; retry")

    try:
        run = run_on_sites(
            names,
            one,
            concurrency=settings.reconcile_concurrency,
            deadline_s=settings.reconcile_deadline_seconds,
            overdue=overdue,
            crashed=crashed,
        )
    finally:
        store.close()
    if len(names) > 1:
        log.log_event(
            _logger,
            logging.INFO if run.outcome == "ok" else logging.WARNING,
            f"{job.name} of {len(names)} sites: {len(run.sites_with('ok'))} ok, "
            f"{len(run.sites_with('error', 'unavailable'))} failed in {run.elapsed:.1f} s",
            failed=run.sites_with("error", "unavailable"),
        )
    return run


def _on_site(settings: Settings, store: EventStore, site: str, budget_s: float, job: _Job[R]) -> R:
    """``job`` on one site, each failure of the site's own turned into its report."""
    from gridhook.nvgrid import NvGridError, NvGridUnavailable

    fix = f"fix site {site}'s setting it names"
    try:
        try:
            nvgrid = open_nvgrid(settings, site, budget_s)
        except NvGridUnavailable as exc:  # skip-verify fetches the certificate up front
            return job.failed(site, "unavailable", "nvgrid_unavailable", str(exc), "retry later")
        except NvGridError as exc:  # configuration: missing host, credentials, CA file
            return job.failed(site, "error", "nvgrid_config", str(exc), fix)
        try:
            return job.work(settings, store, nvgrid, site)
        finally:
            nvgrid.close()
    except StoreError as exc:
        return job.failed(site, "unavailable", "store_unavailable", str(exc), "retry later")
    except ConfigError as exc:
        return job.failed(site, "error", "config", str(exc), fix)


def _reconcile_failed(
    site: str, status: str, code: str, message: str, action: str
) -> ReconcileReport:
    report = ReconcileReport(site=site)
    report.fail(status, code, message, action)
    _logger.error(
        "reconcile failed: %s — %s",
        message,
        action,
        extra={"fields": {"outcome": "reconcile_failed", "site": site, "code": code}},
    )
    return report


def _teardown_failed(
    site: str, status: str, code: str, message: str, action: str
) -> TeardownReport:
    report = TeardownReport(site=site, unavailable=status == "unavailable")
    report.left.append({"url": "(unknown: nothing could be read)", "error": message})
    _logger.error(
        "teardown failed: %s — %s",
        message,
        action,
        extra={"fields": {"outcome": "teardown_incomplete", "site": site, "code": code}},
    )
    return report


def _sample_failed(site: str, status: str, code: str, message: str, action: str) -> SampleReport:
    report = SampleReport(site=site)
    report.fail(status, code, message, action)
    return report


_RECONCILE = _Job(
    "reconcile", lambda st, s, n, site: reconcile(st, s, n, site=site), _reconcile_failed
)
_TEARDOWN = _Job("teardown", lambda st, s, n, site: teardown(st, s, n, site=site), _teardown_failed)
_SAMPLE = _Job(
    "sampling", lambda st, s, n, site: _sample_and_roll_up(st, s, n, site), _sample_failed
)


def run_reconcile(
    settings: Settings | None = None, sites: Sequence[str] | None = None
) -> SitesRun[ReconcileReport]:
    """Reconcile ``sites`` (None: every site); UnknownSite for a site not served."""
    return _run(settings or get_settings(), sites, _RECONCILE)


def run_teardown(
    settings: Settings | None = None, sites: Sequence[str] | None = None
) -> SitesRun[TeardownReport]:
    """Tear down ``sites``' registrations (None: every site's)."""
    return _run(settings or get_settings(), sites, _TEARDOWN)


def run_sample(
    settings: Settings | None = None, sites: Sequence[str] | None = None
) -> SitesRun[SampleReport]:
    """One sampling run per site: one GetStatus, one load sample per feed, one log line."""
    run = _run(settings or get_settings(), sites, _SAMPLE)
    for report in run.reports.values():
        error = report.error or {}
        log.log_event(
            _logger,
            logging.INFO if report.status == "ok" else logging.ERROR,
            f"sampling {report.status}"
            + (f": {error['message']} — {error['action']}" if report.error else ""),
            outcome="sample_ok" if report.status == "ok" else "sample_failed",
            site=report.site,
            code=error.get("code"),
            feeds=report.feeds,
            samples=report.samples,
            rollups=report.rollups,
            days_packed=report.days_packed,
        )
    return run


def check_startup() -> None:
    """Cold start of reconcile_subscriptions and teardown_subscriptions: the settings (a
    bad one fails start-up, naming it) and, without sites settings, the webhook token as
    before sites. A site's own files (tokens, NvGrid credentials, CA) are read by each run,
    so one site's missing secret fails that site only."""
    settings = get_settings()
    if settings.sites.legacy:
        settings.require_webhook_auth()
    log.configure(settings.log_level)


def _sample_and_roll_up(
    settings: Settings, store: EventStore, nvgrid: NvGridApi, site: str
) -> SampleReport:
    """Sample once; then write the rollups of the last complete hours that lack theirs
    and, once an hour (a run that wrote rollups), the day rollups of the last complete
    days that lack theirs (insert-if-absent: a run at the same time, or a retry, writes
    none twice)."""
    report = sample_feeds(settings, store, nvgrid, clock.now, site)
    if report.sampled_at is None or report.status == "unavailable":
        return report  # nothing asked of DPS, or the store is down: the next run catches up
    from gridhook.intervals.rollups import PACK_LOOKBACK, RECENT_HOURS, pack_days, roll_up

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
        report.rollups = run.written
        if run.written:
            report.days_packed = pack_days(
                store,
                site=site,
                since=report.sampled_at - PACK_LOOKBACK,
                until=report.sampled_at,
                now=report.sampled_at,
            )
    except StoreError as exc:
        action = "the store is unavailable; the run will be retried"
        report.fail("unavailable", "store_unavailable", f"rolling up hours: {exc}", action)
    return report


def check_sample_startup() -> None:
    """Cold start of sample_load: its settings only (it holds no webhook token)."""
    log.configure(get_settings().log_level)


class _SiteGivenTwice(ValueError):
    pass


def requested_site(request: flask.Request, settings: Settings) -> str | None:
    """The site a job call names with ``?site=NAME`` (each site's Scheduler job sends
    it), or None for every site. Raises UnknownSite for a site this deployment does not
    serve."""
    named = request.args.getlist("site")
    if not named:
        return None
    if len(named) > 1:
        raise _SiteGivenTwice("site")
    name = named[0]
    if name not in settings.sites.names:
        raise UnknownSite(name[:100], settings.sites.names)
    return name


def _json(body: dict[str, Any], status: int) -> flask.Response:
    headers = http.RetryAfter.JOB.header() if status == 503 else None
    return http.answer(status, json.dumps(body), headers=headers)


def _answer(
    request: flask.Request,
    run: Callable[[Settings, Sequence[str] | None], SitesRun[R]],
    fleet_status: Callable[[str], str] = str,
) -> flask.Response:
    """One site's report when the call names one, else every site's."""
    settings = get_settings()
    try:
        site = requested_site(request, settings)
    except UnknownSite as exc:
        return http.error_answer(404, "unknown_site", str(exc), site=exc.name)
    except _SiteGivenTwice:
        message = "site is given more than once: name one site, or none for every site"
        return http.error_answer(400, "invalid_parameter", message, parameter="site")
    if site is not None:
        report = run(settings, (site,)).reports[site]
        return _json(report.to_dict(), 503 if report.outcome == "unavailable" else 200)
    result = run(settings, None)
    return _json(result.to_dict(fleet_status), result.http_status)


def teardown_status(outcome: str) -> str:
    """Teardown's word for a run's outcome, as a single site's report says it."""
    return "clean" if outcome == "ok" else "incomplete"


def reconcile_http(request: flask.Request) -> flask.Response:
    return _answer(request, run_reconcile)


def teardown_http(request: flask.Request) -> flask.Response:
    return _answer(request, run_teardown, teardown_status)


def sample_http(request: flask.Request) -> flask.Response:
    return _answer(request, run_sample)
