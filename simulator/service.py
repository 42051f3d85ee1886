"""gRPC servicers for nvidia.dcpower.v1.AuthService and NvGrid, and the interceptor that
enforces bearer tokens and injects UNAVAILABLE outages."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2, nvgrid_pb2_grpc
from simulator.auth import TokenAuthority
from simulator.clock import SimClock, rfc3339
from simulator.config import MAX_IDENTIFIER_LENGTH, FeedConfig
from simulator.engine import RampEngine
from simulator.faults import FaultKnobs
from simulator.schedule import Schedule, ScheduledTarget
from simulator.sitelog import site_logger
from simulator.units import WATTS_PER_UNIT, load_value, to_watts
from simulator.webhooks import WebhookRegistry, redact_url

log = logging.getLogger("simulator.rpc")

SUCCESS = nvgrid_pb2.LoadTargetResponse.STATUS_CODE_SUCCESS
ERROR = nvgrid_pb2.LoadTargetResponse.STATUS_CODE_ERROR
_MEGAWATT = nvgrid_pb2.LoadValue.UNIT_MEGAWATT
_PACKAGE_PREFIX = "/nvidia.dcpower.v1."
_AUTH_SERVICE_PREFIX = "/nvidia.dcpower.v1.AuthService/"
# Initial metadata on every answered call: the simulated clock, which runs `speed` times faster
# than the caller's, so clients can resolve relative times ("+10m"). A real DPS never sends it.
SIM_NOW_METADATA_KEY = "x-gridhook-sim-now"


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


class GuardInterceptor(grpc.ServerInterceptor):
    """UNAVAILABLE while an outage fault is active (every service of ours); UNAUTHENTICATED for
    NvGrid calls without a valid `authorization: Bearer <token>`. Reflection is left open so
    grpcurl can list services without a token."""

    def __init__(
        self, tokens: TokenAuthority, faults: FaultKnobs, clock: SimClock, site: str | None = None
    ):
        self._tokens = tokens
        self._faults = faults
        self._clock = clock
        self._log = site_logger(log, site)
        # Handlers run on several gRPC threads at once: the count is kept under a lock.
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()

    def rpc_counts(self) -> dict[str, int]:
        """Calls received per RPC name (including refused ones), e.g. {"GetStatus": 3}."""
        with self._counts_lock:
            return dict(self._counts)

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] = self._counts.get(name, 0) + 1

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(_PACKAGE_PREFIX):
            return handler
        needs_token = not method.startswith(_AUTH_SERVICE_PREFIX)
        inner = handler.unary_unary
        short_name = method.rsplit("/", 1)[-1]

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            self._count(short_name)
            if self._faults.take_rpc_outage():
                self._log.info("rpc failed (fault) method=%s code=UNAVAILABLE", short_name)
                context.abort(grpc.StatusCode.UNAVAILABLE, "simulated DPS outage")
            if needs_token:
                token = _bearer_token(context.invocation_metadata())
                if token is None:
                    context.abort(
                        grpc.StatusCode.UNAUTHENTICATED,
                        "missing 'authorization: Bearer <token>' metadata",
                    )
                if self._tokens.user_for(token) is None:
                    context.abort(
                        grpc.StatusCode.UNAUTHENTICATED,
                        "access token invalid or expired; refresh it or request a new one",
                    )
            context.send_initial_metadata(((SIM_NOW_METADATA_KEY, rfc3339(self._clock.now())),))
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, tokens: TokenAuthority, site: str | None = None) -> None:
        self._tokens = tokens
        self._log = site_logger(log, site)

    def Token(
        self, request: auth_pb2.TokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.TokenResponse:
        if request.WhichOneof("credential") != "password_credential":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "password_credential is required")
        credential = request.password_credential
        if not self._tokens.check_password(credential.username, credential.password):
            self._log.info("token refused user=%s", credential.username)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid username or password")
        access, refresh = self._tokens.issue(credential.username)
        return auth_pb2.TokenResponse(access_token=access, refresh_token=refresh)

    def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.TokenResponse:
        issued = self._tokens.refresh(request.refresh_token)
        if issued is None:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "refresh token invalid, expired or already used; request a new token",
            )
        access, refresh = issued
        return auth_pb2.TokenResponse(access_token=access, refresh_token=refresh)


class NvGridServicer(nvgrid_pb2_grpc.NvGridServicer):
    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        schedule: Schedule,
        clock: SimClock,
        engine: RampEngine,
        registry: WebhookRegistry,
        site: str | None = None,
    ) -> None:
        self._log = site_logger(log, site)
        self._feeds = {feed.tag: feed for feed in feeds}
        self._schedule = schedule
        self._clock = clock
        self._engine = engine
        self._registry = registry

    # --- schedule ---------------------------------------------------------------------------

    def SetLoadTarget(
        self, request: nvgrid_pb2.LoadTargetRequest, context: grpc.ServicerContext
    ) -> nvgrid_pb2.LoadTargetResponse:
        if not request.load_targets:
            return nvgrid_pb2.LoadTargetResponse(code=ERROR, diag_msg="no load targets given")
        now = self._clock.now()
        accepted: list[dict[str, Any]] = []
        details: list[nvgrid_pb2.LoadTargetResponse.Detail] = []
        for index, target in enumerate(request.load_targets):
            fields, problem = self._validate(target, now)
            ok = problem is None
            accepted.append(fields)
            details.append(
                nvgrid_pb2.LoadTargetResponse.Detail(
                    code=SUCCESS if ok else ERROR,
                    diag_msg="scheduled" if ok else f"load_targets[{index}]: {problem}",
                    feed_tag=",".join(target.feed_tags),
                    correlation_id=fields.get("correlation_id", target.correlation_id),
                )
            )
        failures = [d.diag_msg for d in details if d.code == ERROR]
        if failures:
            # All or nothing, so a half-applied request never leaves the schedule ambiguous.
            return nvgrid_pb2.LoadTargetResponse(
                code=ERROR, diag_msg="; ".join(failures), details=details
            )
        added = self._schedule.add(accepted)
        for scheduled in added:
            self._log.info(
                "load target scheduled feeds=%s start=%s end=%s value_w=%s correlation_id=%s",
                ",".join(scheduled.feed_tags) or "*",
                scheduled.start.isoformat(),
                scheduled.end.isoformat() if scheduled.end else "open",
                scheduled.value_watts,
                scheduled.correlation_id,
            )
        # Apply at once so a target starting now is reflected by the next GetStatus.
        self._engine.tick()
        return nvgrid_pb2.LoadTargetResponse(
            code=SUCCESS, diag_msg=f"{len(added)} load target(s) scheduled", details=details
        )

    def _validate(
        self, target: nvgrid_pb2.LoadTarget, now: datetime
    ) -> tuple[dict[str, Any], str | None]:
        """ScheduledTarget fields for `target`, and a problem description if it is invalid."""
        interval = target.interval
        start = _datetime(interval.start_time) if interval.HasField("start_time") else now
        end = _datetime(interval.end_time) if interval.HasField("end_time") else None
        correlation_id = target.correlation_id or f"sim-{uuid.uuid4().hex[:12]}"
        fields: dict[str, Any] = {
            "start": start,
            "end": end,
            "value_watts": None,
            "requested_value": None,
            "requested_unit": _MEGAWATT,
            "best_effort": target.strategy.best_effort,
            "feed_tags": tuple(dict.fromkeys(target.feed_tags)),
            "correlation_id": correlation_id,
        }
        if end is not None and end <= start:
            return fields, "end_time must be after start_time"
        if len(correlation_id) > MAX_IDENTIFIER_LENGTH:
            # Its events would carry it, and a webhook receiver validating the payload (ours
            # allows 256 characters, like feed tags) would reject them.
            return fields, f"correlation_id longer than {MAX_IDENTIFIER_LENGTH} characters"
        unknown = [tag for tag in target.feed_tags if tag not in self._feeds]
        if unknown:
            return fields, f"unknown feed tag(s): {', '.join(unknown)}"
        if not target.HasField("target_load"):
            return fields, None  # null target: back to the default
        value = target.target_load
        if value.value == 0:
            # DPS: "--value=0 with any unit also sets the default constraint", exactly as
            # a null target does (not a target of 0 W, which the caps would refuse).
            return fields, None
        if value.unit not in WATTS_PER_UNIT:
            return fields, "target_load.unit must be UNIT_WATT, UNIT_KILOWATT or UNIT_MEGAWATT"
        watts = to_watts(value.value, value.unit)
        fields.update(value_watts=watts, requested_value=value.value, requested_unit=value.unit)
        for tag in fields["feed_tags"] or self._feeds:
            feed = self._feeds[tag]
            if not feed.min_cap_watts <= watts <= feed.max_cap_watts:
                return fields, (
                    f"target {watts / 1e6:g} MW outside feed {tag} caps "
                    f"[{feed.min_cap_watts / 1e6:g}, {feed.max_cap_watts / 1e6:g}] MW"
                )
        return fields, None

    def GetLoadSchedule(
        self, request: nvgrid_pb2.GetLoadScheduleRequest, context: grpc.ServicerContext
    ) -> nvgrid_pb2.LoadSchedule:
        interval = request.interval
        start = (
            _datetime(interval.start_time) if interval.HasField("start_time") else self._clock.now()
        )
        end = _datetime(interval.end_time) if interval.HasField("end_time") else None
        if end is not None and end <= start:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "interval end_time must be after start_time"
            )
        unknown = [tag for tag in request.feed_tags if tag not in self._feeds]
        if unknown:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"unknown feed tag(s): {', '.join(unknown)}"
            )
        schedule = nvgrid_pb2.LoadSchedule()
        for tag in request.feed_tags or self._feeds:
            for segment in self._schedule.segments(tag, start, end):
                schedule.load_targets.append(
                    _load_target(segment.target, tag, segment.start, segment.end)
                )
        return schedule

    def GetCurrentLoadTarget(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> nvgrid_pb2.GetCurrentLoadTargetResponse:
        now = self._clock.now()
        response = nvgrid_pb2.GetCurrentLoadTargetResponse()
        for tag in self._feeds:
            response.load_targets[tag].CopyFrom(self._current_target(tag, now))
        return response

    def _current_target(self, tag: str, now: datetime) -> nvgrid_pb2.LoadTarget:
        winner = self._schedule.winner(tag, now)
        if winner is None:
            # Nothing scheduled: a target without target_load = the default applies.
            return nvgrid_pb2.LoadTarget(feed_tags=[tag])
        return _load_target(winner, tag, winner.start, winner.end)

    def GetMetadata(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> nvgrid_pb2.FeedMetadata:
        response = nvgrid_pb2.FeedMetadata()
        for tag, feed in self._feeds.items():
            entry = response.metadata[tag]
            entry.min_power_cap.CopyFrom(nvgrid_pb2.LoadValue(value=feed.min_cap, unit=feed.unit))
            entry.max_power_cap.CopyFrom(nvgrid_pb2.LoadValue(value=feed.max_cap, unit=feed.unit))
            entry.default_constraint.CopyFrom(
                nvgrid_pb2.LoadValue(value=feed.default_constraint, unit=feed.unit)
            )
        return response

    def GetStatus(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> nvgrid_pb2.LoadTargetStatus:
        now = self._clock.now()
        response = nvgrid_pb2.LoadTargetStatus()
        for tag in self._feeds:
            status = response.statuses[tag]
            status.current_target.CopyFrom(self._current_target(tag, now))
            status.calculated_load.CopyFrom(
                load_value(self._engine.calculated_watts(tag), _MEGAWATT)
            )
        return response

    # --- webhooks ---------------------------------------------------------------------------

    def RegisterWebhook(
        self, request: nvgrid_pb2.RegisterWebhookRequest, context: grpc.ServicerContext
    ) -> nvgrid_pb2.LoadTargetResponse:
        problem = self._registry.register(request.url, list(request.for_events))
        self._log.info(
            "webhook %s url=%s events=%s%s",
            "registered" if problem is None else "refused",
            redact_url(request.url),
            list(request.for_events) or "all",
            f" reason={problem!r}" if problem else "",
        )
        if problem is not None:
            return nvgrid_pb2.LoadTargetResponse(code=ERROR, diag_msg=problem)
        return nvgrid_pb2.LoadTargetResponse(code=SUCCESS, diag_msg="webhook registered")

    def UnregisterWebhook(
        self, request: nvgrid_pb2.UnregisterWebhookRequest, context: grpc.ServicerContext
    ) -> nvgrid_pb2.LoadTargetResponse:
        removed = self._registry.unregister(request.url)
        self._log.info(
            "webhook %s url=%s",
            "unregistered" if removed else "not registered",
            redact_url(request.url),
        )
        if not removed:
            return nvgrid_pb2.LoadTargetResponse(code=ERROR, diag_msg="webhook URL not registered")
        return nvgrid_pb2.LoadTargetResponse(code=SUCCESS, diag_msg="webhook unregistered")


def _load_target(
    target: ScheduledTarget, feed_tag: str, start: datetime, end: datetime | None
) -> nvgrid_pb2.LoadTarget:
    message = nvgrid_pb2.LoadTarget(
        feed_tags=[feed_tag],
        correlation_id=target.correlation_id,
        strategy=nvgrid_pb2.LoadTargetStrategy(best_effort=target.best_effort),
    )
    message.interval.start_time.CopyFrom(_timestamp(start))
    if end is not None:
        message.interval.end_time.CopyFrom(_timestamp(end))
    if target.requested_value is not None:
        message.target_load.CopyFrom(
            nvgrid_pb2.LoadValue(value=target.requested_value, unit=target.requested_unit)
        )
    return message
