"""``NvGridClient``: the typed, retrying, self-authenticating way gridhook talks to DPS NvGrid.

    with NvGridClient(endpoint_from_env(), credentials_from_env()) as nvgrid:
        nvgrid.register_webhook("https://hooks.example/nvgrid/webhook", ["start_ramp_down"])
        for tag, status in nvgrid.get_status().items(): ...

Every call has a deadline, is retried on UNAVAILABLE / DEADLINE_EXCEEDED with backoff and
jitter, and carries a bearer token that is refreshed when it expires or is rejected. Results
are the dataclasses of ``models.py``; failures are the exceptions of ``errors.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import empty_pb2

from dpsapi.v1 import nvgrid_pb2, nvgrid_pb2_grpc

from . import convert
from .auth import TokenManager, bearer_metadata
from .channel import open_channel
from .config import CallPolicy, Credentials, NvGridEndpoint, credentials_from_env, endpoint_from_env
from .errors import NvGridRejected
from .models import ActionResult, FeedCaps, FeedStatus, Load, LoadTarget
from .retry import call_with_retry

__all__ = ["SERVER_NOW_METADATA_KEY", "NvGridClient", "server_now_from_metadata"]

log = logging.getLogger("gridhook.nvgrid")

# Initial metadata the gridhook simulator puts on every answer: its (scaled) clock, RFC 3339.
# A real DPS does not send it; then relative times are resolved against the local clock.
SERVER_NOW_METADATA_KEY = "x-gridhook-sim-now"


def server_now_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> datetime | None:
    """The server's clock from a call's initial metadata, or None if absent or unreadable."""
    for key, value in metadata or ():
        if key.lower() != SERVER_NOW_METADATA_KEY:
            continue
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            log.debug("ignoring unreadable %s metadata %r", SERVER_NOW_METADATA_KEY, text)
            return None
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NvGridClient:
    """A connection to one DPS NvGrid endpoint as one user. Thread-safe; close it when done."""

    def __init__(
        self,
        endpoint: NvGridEndpoint,
        credentials: Credentials,
        *,
        channel: grpc.Channel | None = None,
        sleep: Callable[[float], None] = time.sleep,
        local_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else open_channel(endpoint)
        self._sleep = sleep
        self._tokens = TokenManager(self._channel, credentials, endpoint, sleep=sleep)
        self._stub = nvgrid_pb2_grpc.NvGridStub(self._channel)
        self._local_clock = local_clock or _utc_now
        # server clock - local clock, from the last answer that carried the server's time.
        self._server_offset: timedelta | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, policy: CallPolicy | None = None
    ) -> NvGridClient:
        """A client for the endpoint and credentials in the ``NVGRID_*`` variables."""
        return cls(endpoint_from_env(environ, policy=policy), credentials_from_env(environ))

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> NvGridClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NvGridClient({self.endpoint.address}, tls={self.endpoint.tls.value})"

    # --- the server's clock ------------------------------------------------------------------

    @property
    def server_clock_offset(self) -> timedelta | None:
        """How far the server's clock is ahead of ours, as of the last answered call that told
        us (the simulator does, in ``x-gridhook-sim-now``); None if no answer has."""
        return self._server_offset

    def server_now(self) -> datetime:
        """The server's current time, estimated from the last offset seen; the local clock if
        the server never sent its time (a real DPS does not)."""
        offset = self._server_offset
        now = self._local_clock()
        return now + offset if offset is not None else now

    def sync_server_clock(self) -> datetime:
        """Make one cheap call (GetMetadata) to learn the server's clock, then ``server_now()``.

        Use it right before resolving relative times such as ``+5m``: a simulator running at
        ``--speed 60`` moves a minute per real second, so an old offset would be stale."""
        self._call("GetMetadata", empty_pb2.Empty())
        return self.server_now()

    # --- webhooks ----------------------------------------------------------------------------

    def register_webhook(self, url: str, events: Iterable[str] | None = None) -> ActionResult:
        """Subscribe ``url`` to ``events`` (payload spellings, e.g. ``start_ramp_down``; None or
        empty = all events). Raises :class:`NvGridRejected` (e.g. URL not whitelisted)."""
        request = convert.register_webhook_request(url, events)
        return self._checked("RegisterWebhook", request)

    def unregister_webhook(self, url: str) -> ActionResult:
        """Remove the registration of ``url``. Raises :class:`NvGridRejected` if DPS refuses."""
        return self._checked("UnregisterWebhook", nvgrid_pb2.UnregisterWebhookRequest(url=url))

    # --- load targets ------------------------------------------------------------------------

    def set_load_target(
        self,
        value: float | None,
        unit: str = "mw",
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        feed_tags: Sequence[str] = (),
        correlation_id: str = "",
        best_effort: bool = False,
    ) -> ActionResult:
        """Schedule one target from ``start_time`` (default: ``server_now()``) to ``end_time``
        (None = until replaced). ``value=None`` schedules the null target: back to the default
        constraint."""
        target = LoadTarget(
            start_time=start_time or self.server_now(),
            end_time=end_time,
            target_load=None if value is None else Load(float(value), convert.parse_unit(unit)),
            best_effort=best_effort,
            feed_tags=tuple(feed_tags),
            correlation_id=correlation_id,
        )
        return self.set_load_targets([target])

    def set_load_targets(self, targets: Sequence[LoadTarget]) -> ActionResult:
        """Schedule several targets in one request (DPS applies them in order)."""
        return self._checked("SetLoadTarget", convert.load_target_request(targets))

    def get_load_schedule(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        feed_tags: Sequence[str] = (),
    ) -> list[LoadTarget]:
        """The effective schedule in [start_time (None = now), end_time (None = open)]."""
        response = self._call(
            "GetLoadSchedule", convert.schedule_request(start_time, end_time, feed_tags)
        )
        return [convert.load_target_from_proto(target) for target in response.load_targets]

    def get_current_load_target(self) -> dict[str, LoadTarget]:
        """The target in effect now, keyed by feed tag (``target_load=None`` = default)."""
        return convert.target_map(
            self._call("GetCurrentLoadTarget", empty_pb2.Empty()).load_targets
        )

    def get_metadata(self) -> dict[str, FeedCaps]:
        """Every feed and its caps / default constraint, keyed by feed tag."""
        return convert.feed_caps_map(self._call("GetMetadata", empty_pb2.Empty()).metadata)

    def get_status(self) -> dict[str, FeedStatus]:
        """Current target and calculated (achieved) load, keyed by feed tag."""
        return convert.feed_status_map(self._call("GetStatus", empty_pb2.Empty()).statuses)

    # --- plumbing ----------------------------------------------------------------------------

    def _call(self, rpc: str, request: Any) -> Any:
        method = getattr(self._stub, rpc)
        last_token: list[str] = []

        def invoke(timeout: float) -> Any:
            token = self._tokens.access_token()
            last_token[:] = [token]
            response, call = method.with_call(
                request, timeout=timeout, metadata=bearer_metadata(token)
            )
            self._note_server_time(call)
            return response

        def on_unauthenticated() -> bool:
            return bool(last_token) and self._tokens.recover_from_rejection(last_token[0])

        return call_with_retry(
            invoke,
            endpoint=self.endpoint,
            rpc=f"NvGrid.{rpc}",
            on_unauthenticated=on_unauthenticated,
            sleep=self._sleep,
        )

    def _note_server_time(self, call: Any) -> None:
        try:
            metadata = call.initial_metadata()
        except Exception:  # the server's time is a hint: never fail an answered call over it
            return
        server_now = server_now_from_metadata(metadata)
        if server_now is not None:
            self._server_offset = server_now - self._local_clock()

    def _checked(self, rpc: str, request: Any) -> ActionResult:
        result = convert.action_result(self._call(rpc, request))
        if not result.ok:
            diag = result.diag_msg or f"DPS answered {result.code} without a message"
            raise NvGridRejected(
                f"NvGrid {rpc} at {self.endpoint} was rejected: {diag}",
                endpoint=self.endpoint.address,
                rpc=rpc,
                diag_msg=result.diag_msg,
                details=result.details,
            )
        return result
