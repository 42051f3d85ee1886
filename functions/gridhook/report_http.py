"""power_report: the control rooms, curtailment reports and episodes over HTTP (read-only).

| request | answer |
|---|---|
| ``GET /`` | the fleet's control-room page; a one-site deployment's is that site's page |
| ``GET /sites/<site>`` | one site's control-room page, in its local time (HTML, refreshes itself) |
| ``GET /report?since=&until=&site=&feed=&format=&method=&source=`` | a report (30 days) |
| ``GET /episodes?since=&until=&site=&feed=&status=&correlation_id=`` | episodes, JSON (7 days) |
| ``GET /settlement?…`` (/report's, and method, source, interval) | settlement: html, json, csv |
| a bad, unknown, repeated or empty parameter | 400, the error names the parameter |
| ``site=`` a site the deployment does not serve | 400 naming it and the sites it serves |
| ``/sites/<site>`` of a site the deployment does not serve | 404 ``unknown_site``, naming it |
| any other path | 404 · not GET or HEAD: 405 with ``Allow`` |
| no store where ``GRIDHOOK_STORE`` points (no such SQLite file) | 503 naming the setting |
| store unavailable, or any unexpected failure | 503 with ``Retry-After``; never a 500 |

Errors are JSON like the receiver's: ``{"error": {"code", "message", "details"}}``. It
only reads: nothing here calls a store method that writes. Private by IAM in the cloud.
``site`` may be repeated (``?site=phx1&site=ams2``), as ``--site`` on the command line;
without it a report or an episode list covers every site. A report and the control rooms
settle each curtailment against the baseline ``GRIDHOOK_BASELINE_METHOD`` (``method=``
picks another for a report; ``source=`` auto, meter or samples).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import flask

from gridhook import clock, http, log
from gridhook.report.params import (
    EPISODE_PARAMETERS,
    REPORT_PARAMETERS,
    SETTLEMENT_PARAMETERS,
    BadParameter,
    episode_params,
    report_params,
    settlement_params,
    single_values,
)
from gridhook.report.render import CONTENT_SECURITY_POLICY
from gridhook.settings import Settings, get_settings
from gridhook.sites import Site, UnknownSite
from gridhook.store import EventStore, LazyStore, StoreError, StoreNotFound

if TYPE_CHECKING:
    from gridhook.report.settled import DeliveryOptions, QuarterHourCache

__all__ = ["ReportService", "check_startup", "handle"]

_ALLOWED_METHODS = "GET, HEAD"
_ROUTES = {
    "/": (),
    "/report": REPORT_PARAMETERS,
    "/episodes": EPISODE_PARAMETERS,
    "/settlement": SETTLEMENT_PARAMETERS,
}
#: One site's page: /sites/<site> (no parameters).
_SITE_PAGES = "/sites/"
_JSON = http.JSON
# The pages' own policy, plus frame-ancestors, which only works as a header.
_HTML_HEADERS = {
    "Content-Security-Policy": f"{CONTENT_SECURITY_POLICY}; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_logger = log.get_logger("gridhook.report_http")


@dataclass(slots=True)
class _Answer:
    """What one request came to: the answer and the fields of its log line."""

    status: int
    body: str
    content_type: str
    outcome: str
    headers: dict[str, str] = field(default_factory=dict)
    detail: str | None = None  # for the log line only
    episodes: int | None = None


def _error(
    status: int, code: str, message: str, outcome: str, details: list[dict[str, str]] | None = None
) -> _Answer:
    body = http.error_body(code, message, details or ())
    return _Answer(status, json.dumps(body, ensure_ascii=False), _JSON, outcome)


def _bad_parameter(exc: BadParameter) -> _Answer:
    return _error(
        400,
        "bad_parameter",
        str(exc),
        "bad_parameter",
        details=[{"parameter": exc.name, "message": exc.message}],
    )


def _unavailable(message: str, outcome: str, detail: str) -> _Answer:
    answer = _error(503, outcome, message, outcome)
    answer.headers.update(http.RetryAfter.REQUEST.header())
    answer.detail = detail
    return answer


class ReportService:
    """The report function: settings and a store, opened on first use."""

    def __init__(self, settings: Settings, store: EventStore | None = None) -> None:
        self.settings = settings
        # Read-only: never creates a store (a report of an empty one would look like a
        # quiet grid); until the receiver has made it, every request is a 503 saying so.
        self._store = LazyStore(
            settings.store_url,
            timeout_seconds=settings.store_timeout_seconds,
            store=store,
            create=False,
        )
        # The control rooms' settlements, reused within a quarter hour (pages refresh
        # every 30 s; settling reads 45 days of a feed's load). Made on first use.
        self._settled: QuarterHourCache | None = None
        self._settled_lock = threading.Lock()

    @property
    def ramp_deadline(self) -> timedelta:
        return timedelta(seconds=self.settings.ramp_deadline_seconds)

    def delivery(self, method: str | None = None, source: str = "auto") -> DeliveryOptions:
        """How a view settles: ``method`` (default: the settings'), ``source``."""
        from gridhook.report.settled import DeliveryOptions

        return DeliveryOptions(
            method=method or self.settings.baseline_method,
            source=source,
            min_coverage=self.settings.interval_min_coverage,
        )

    def settled_cache(self) -> QuarterHourCache:
        if self._settled is None:
            with self._settled_lock:
                if self._settled is None:
                    from gridhook.report.settled import QuarterHourCache

                    self._settled = QuarterHourCache()
        return self._settled

    def store(self) -> EventStore:
        return self._store.get()

    def handle(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        try:
            answer = self._process(request)
        except BadParameter as exc:
            answer = _bad_parameter(exc)
        except StoreNotFound as exc:
            # Nothing is created: the path (kept to the log) may be a typo.
            answer = _unavailable(
                "no store where GRIDHOOK_STORE points: nothing has been stored there yet, "
                "or the setting names the wrong store; reports never create one",
                "store_not_found",
                str(exc),
            )
        except StoreError as exc:
            answer = _unavailable(
                "the event store is unavailable; retry later", "store_unavailable", str(exc)
            )
        except Exception as exc:
            # Nothing may answer 500 or an HTML error page.
            _logger.exception(
                "unexpected error while serving a report",
                extra={"fields": self._site_fields(request)},
            )
            answer = _unavailable(
                "the report failed unexpectedly; retry later", "internal_error", repr(exc)
            )
        self._log(request, answer, started)
        return _response(answer)

    def _process(self, request: flask.Request) -> _Answer:
        path = request.path.rstrip("/") or "/"
        site_page = path.startswith(_SITE_PAGES) and "/" not in path[len(_SITE_PAGES) :]
        if path not in _ROUTES and not site_page:
            known = ", ".join([*_ROUTES, f"{_SITE_PAGES}<site>"])
            return _error(
                404,
                "not_found",
                f"no such path: {request.path}; this function serves {known}",
                "not_found",
            )
        if request.method not in ("GET", "HEAD"):
            answer = _error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed; reports are read with GET",
                "method_not_allowed",
            )
            answer.headers["Allow"] = _ALLOWED_METHODS
            return answer
        params = single_values(request.args.to_dict(flat=False), () if site_page else _ROUTES[path])
        now = clock.now()
        if site_page:
            return self._site_page(path[len(_SITE_PAGES) :], now)
        if path == "/report":
            return self._report(params, now)
        if path == "/episodes":
            return self._episodes(params, now)
        if path == "/settlement":
            return self._settlement(params, now)
        sites = self.settings.sites
        if sites.several:
            return self._fleet_page(now)
        # One site: its page is what its reader wants at the root, as before sites.
        return self._control_room(sites.sites[0], now, root="")

    def _site_page(self, name: str, now: datetime) -> _Answer:
        try:
            site = self.settings.sites.get(name)
        except UnknownSite:
            answer = _error(
                404,
                "unknown_site",
                f"unknown site {name[:63]!r}: this deployment serves "
                f"{', '.join(self.settings.sites.names)}",
                "not_found",
                details=[{"site": name[:63]}],
            )
            answer.detail = f"unknown site {name[:63]!r}"
            return answer
        return self._control_room(site, now, root="../")

    def _control_room(self, site: Site, now: datetime, *, root: str) -> _Answer:
        from gridhook.report.control_room import build_control_room
        from gridhook.report.render import render_control_room

        room = build_control_room(
            self.store(),
            now=now,
            ramp_deadline=self.ramp_deadline,
            site=site.name,
            zone=site.zone,
            several=self.settings.sites.several,
            delivery=self.delivery(),
            cache=self.settled_cache(),
        )
        html = render_control_room(room, root=root)
        answer = _Answer(200, html, "text/html; charset=utf-8", "ok", dict(_HTML_HEADERS))
        answer.episodes = len(room.recent_episodes)
        return answer

    def _fleet_page(self, now: datetime) -> _Answer:
        from gridhook.report.fleet_room import build_fleet_room
        from gridhook.report.render import render_fleet_room

        room = build_fleet_room(
            self.store(),
            self.settings.sites.sites,
            now=now,
            ramp_deadline=self.ramp_deadline,
            delivery=self.delivery(),
            cache=self.settled_cache(),
        )
        html = render_fleet_room(room)
        return _Answer(200, html, "text/html; charset=utf-8", "ok", dict(_HTML_HEADERS))

    def _report(self, params: dict[str, str | tuple[str, ...]], now: datetime) -> _Answer:
        from gridhook.report import render as renderers
        from gridhook.report.fleet import build_fleet_report

        query = report_params(params, now=now, sites=self.settings.sites)
        report = build_fleet_report(
            self.store(),
            query.sites,
            since=query.since,
            until=query.until,
            feed_tag=query.feed_tag,
            now=now,
            ramp_deadline=self.ramp_deadline,
            several=self.settings.sites.several,
            delivery=self.delivery(query.method, query.source),
        )
        if query.format == "json":
            answer = _Answer(200, renderers.render_json(report), _JSON, "ok")
        elif query.format == "csv":
            name = f"gridhook-report-{query.since:%Y%m%dT%H%M}-{query.until:%Y%m%dT%H%M}.csv"
            answer = _Answer(200, renderers.render_csv(report), "text/csv; charset=utf-8", "ok")
            answer.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        else:
            answer = _Answer(
                200,
                renderers.render_html(report),
                "text/html; charset=utf-8",
                "ok",
                dict(_HTML_HEADERS),
            )
        answer.episodes = len(report.episodes)
        return answer

    def _episodes(self, params: dict[str, str | tuple[str, ...]], now: datetime) -> _Answer:
        from gridhook.episodes.load import load_episodes
        from gridhook.report.render import render_episodes_json

        query = episode_params(params, now=now, sites=self.settings.sites)
        episodes = [  # by site, in the deployment's order; each site's oldest first
            episode
            for site in query.sites
            for episode in load_episodes(
                self.store(),
                since=query.since,
                until=query.until,
                feed_tag=query.feed_tag,
                correlation_id=query.correlation_id,
                status=query.status,
                now=now,
                ramp_deadline=self.ramp_deadline,
                site=site.name,
            )
        ]
        body = render_episodes_json(
            episodes, since=query.since, until=query.until, generated_at=now
        )
        return _Answer(200, body, _JSON, "ok", episodes=len(episodes))

    def _settlement(self, params: dict[str, str | tuple[str, ...]], now: datetime) -> _Answer:
        from gridhook.intervals.settle import settle_range
        from gridhook.report import settlement as view

        query = settlement_params(params, now=now, sites=self.settings.sites)
        run = settle_range(
            self.store(),
            query.sites,
            since=query.since,
            until=query.until,
            now=now,
            feeds=None if query.feed_tag is None else [query.feed_tag],
            method=query.method or self.settings.baseline_method,
            source=query.source,
            resolution=query.interval,
            ramp_deadline=self.ramp_deadline,
            min_coverage=self.settings.interval_min_coverage,
        )
        if query.format == "json":
            answer = _Answer(200, view.render_json(run), _JSON, "ok")
        elif query.format == "csv":
            name = f"gridhook-settlement-{query.since:%Y%m%dT%H%M}-{query.until:%Y%m%dT%H%M}.csv"
            answer = _Answer(200, view.render_csv(run), "text/csv; charset=utf-8", "ok")
            answer.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        else:
            html = view.render_html(run, several=self.settings.sites.several)
            answer = _Answer(200, html, "text/html; charset=utf-8", "ok", dict(_HTML_HEADERS))
        answer.episodes = len(run.settlements)
        return answer

    def _log(self, request: flask.Request, answer: _Answer, started: float) -> None:
        log.log_request(
            _logger,
            request,
            message=f"report {answer.outcome}",
            status=answer.status,
            outcome=answer.outcome,
            started=started,
            path=request.path,
            **self._site_fields(request),
            episodes=answer.episodes,
            error=answer.detail,
        )

    def _site_fields(self, request: flask.Request) -> dict[str, str | list[str] | None]:
        """The site a request concerns, for its log lines (the log metrics' ``site`` label):
        the site of ``/sites/<site>``, the one ``site=`` names, or a one-site deployment's
        only site; ``sites`` when ``site=`` names several. A name is logged as asked for,
        known or not (cut to a site name's length), as the receiver does."""
        path = request.path.rstrip("/") or "/"
        if path.startswith(_SITE_PAGES):
            names = [path[len(_SITE_PAGES) :]]
        else:
            names = list(dict.fromkeys(request.args.getlist("site")))
        if not names and not self.settings.sites.several:
            names = list(self.settings.sites.names)
        names = [name[:63] for name in names]
        if len(names) > 1:
            return {"site": None, "sites": names}
        return {"site": names[0] if names else None, "sites": None}


def _response(answer: _Answer) -> flask.Response:
    return http.answer(
        answer.status, answer.body, content_type=answer.content_type, headers=answer.headers
    )


_service: ReportService | None = None
_service_lock = threading.Lock()
_started = False


def get_service() -> ReportService:
    """The process-wide service, built on first use from the environment settings."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                if not _started:
                    check_startup()
                _service = ReportService(get_settings())
    return _service


def check_startup() -> None:
    """Read and validate the settings at cold start (a bad one fails start-up, naming it)."""
    global _started
    settings = get_settings()
    log.configure(settings.log_level)
    clock.use(settings.dev_clock, _logger, "reports")
    _started = True


def handle(request: flask.Request) -> flask.Response:
    """Entry point body for ``power_report``."""
    return get_service().handle(request)
