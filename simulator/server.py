"""Start, observe, fault and stop a simulator in-process (the API tests use)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from grpc_reflection.v1alpha import reflection

from dpsapi.v1 import auth_pb2, auth_pb2_grpc, nvgrid_pb2, nvgrid_pb2_grpc
from simulator.auth import TokenAuthority
from simulator.clock import SimClock, rfc3339
from simulator.config import (
    FeedConfig,
    SimulatorConfig,
    check_site_name,
    default_feeds,
    time_zone,
)
from simulator.engine import RampEngine
from simulator.faults import FaultKnobs
from simulator.load import LoadModel
from simulator.schedule import Schedule, ScheduledTarget
from simulator.service import AuthServicer, GuardInterceptor, NvGridServicer
from simulator.sitelog import site_logger
from simulator.tls import ensure_tls_files
from simulator.webhooks import Delivery, Dispatcher, Registration, WebhookRegistry

log = logging.getLogger("simulator")

SERVICE_NAMES = (
    nvgrid_pb2.DESCRIPTOR.services_by_name["NvGrid"].full_name,
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    reflection.SERVICE_NAME,
)


class Simulator:
    """A running simulator. Create it with `start_simulator`; always `stop()` it (or use it as
    a context manager)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.site = check_site_name(config.site)
        self.timezone = time_zone(config.timezone)
        self._log = site_logger(log, self.site)
        self.feeds: list[FeedConfig] = list(config.feeds or default_feeds())
        self.faults: FaultKnobs = config.faults
        self.clock = (
            SimClock.following(config.clock) if config.clock is not None else SimClock(config.speed)
        )
        self.load_model = load_model(self.feeds, self.site, self.timezone, config.load_seed)
        self.tokens = TokenAuthority(config.users, config.token_ttl, config.refresh_token_ttl)
        self.schedule = Schedule()
        self._registry = WebhookRegistry(config.whitelist)
        self._dispatcher = Dispatcher(
            self._registry, self.faults, config.concurrency, config.call_timeout, site=self.site
        )
        self._engine = RampEngine(
            self.feeds,
            self.schedule,
            self.clock,
            config.ramp_rate_mw_per_minute,
            self._dispatcher.publish,
            natural=self.load_model.watts if self.load_model is not None else None,
            site=self.site,
        )
        self._temp_tls_dir: str | None = None
        self.ca_cert_path: Path | None = None
        self._grpc_pool = ThreadPoolExecutor(
            max_workers=config.grpc_workers, thread_name_prefix=f"sim-{self.site}-grpc"
        )
        self._guard = GuardInterceptor(self.tokens, self.faults, self.clock, site=self.site)
        self._server = grpc.server(
            self._grpc_pool,
            interceptors=[self._guard],
            # Without this, gRPC sets SO_REUSEPORT and a second simulator on the same port
            # would silently share it instead of failing.
            options=[("grpc.so_reuseport", 0)],
        )
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(self.tokens, site=self.site), self._server
        )
        nvgrid_pb2_grpc.add_NvGridServicer_to_server(
            NvGridServicer(
                self.feeds, self.schedule, self.clock, self._engine, self._registry, site=self.site
            ),
            self._server,
        )
        reflection.enable_server_reflection(SERVICE_NAMES, self._server)
        try:
            self.port = self._bind()
        except BaseException:
            self._remove_temp_tls_dir()
            raise
        self.address = f"{config.host}:{self.port}"
        self._stop_ticking = threading.Event()
        self._ticker = threading.Thread(
            target=self._tick_loop, name=f"sim-{self.site}-clock", daemon=True
        )
        self._stopped = False

    def _bind(self) -> int:
        target = f"{self.config.host}:{self.config.port}"
        try:
            return self._add_port(target)
        except RuntimeError as error:  # grpc's "Failed to bind to address ..."
            raise OSError(f"cannot listen on {target}: port in use or address invalid") from error

    def _add_port(self, target: str) -> int:
        if self.config.insecure:
            port = self._server.add_insecure_port(target)
        else:
            tls_dir = self.config.tls_dir
            if tls_dir is None:
                tls_dir = self._temp_tls_dir = tempfile.mkdtemp(prefix="gridhook-sim-tls-")
            files = ensure_tls_files(tls_dir, list(self.config.tls_hostnames))
            self.ca_cert_path = files.ca_cert
            credentials = grpc.ssl_server_credentials([files.server_key_and_chain()])
            port = self._server.add_secure_port(target, credentials)
        if port == 0:
            raise OSError(f"cannot listen on {target} (port in use?)")
        return port

    def _start(self) -> None:
        self._server.start()
        self._ticker.start()
        self._log.info(
            "simulator started address=%s tls=%s ca=%s feeds=%s speed=%g now=%s whitelist=%s "
            "timezone=%s load=%s",
            self.address,
            not self.config.insecure,
            self.ca_cert_path,
            ",".join(f.tag for f in self.feeds),
            self.clock.speed,
            rfc3339(self.clock.now()),
            ",".join(self.config.whitelist) or "any",
            self.timezone.key,
            "flat" if self.config.load_seed is None else f"model(seed={self.config.load_seed})",
        )

    def _tick_loop(self) -> None:
        while not self._stop_ticking.wait(self.config.tick_interval):
            try:
                self._engine.tick()
                self._dispatcher.flush_held(force=False)
            except Exception:  # keep simulating; a bug in one tick must not kill the clock
                self._log.exception("simulator tick failed")

    # --- observing --------------------------------------------------------------------------

    def registrations(self) -> list[Registration]:
        return self._registry.registrations()

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempt so far (a snapshot), including dropped ones."""
        return self._dispatcher.deliveries()

    def wait_for_deliveries(
        self, predicate: Callable[[list[Delivery]], bool] | int, timeout: float = 10.0
    ) -> list[Delivery]:
        """Wait until `predicate(deliveries)` holds, or (given an int) until that many attempts
        have been logged. Raises TimeoutError describing what did arrive."""
        if isinstance(predicate, int):
            count = predicate
            predicate = lambda deliveries: len(deliveries) >= count  # noqa: E731
        return self._dispatcher.wait_for(predicate, timeout)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every power event generated (whether or not any webhook wanted it)."""
        return self._engine.events()

    def rpc_counts(self) -> dict[str, int]:
        """Calls received per RPC name (including refused ones), e.g. {"GetStatus": 3}."""
        return self._guard.rpc_counts()

    def calculated_load_mw(self, feed_tag: str) -> float:
        return self._engine.calculated_watts(feed_tag) / 1e6

    def cap_mw(self, feed_tag: str) -> float:
        """The power cap in force now (ramping toward the target, or at it)."""
        return self._engine.cap_watts(feed_tag) / 1e6

    def served_mean_watts(self, feed_tag: str, start: datetime, end: datetime) -> float:
        """The mean load the feed drew over [start, end): what its meter recorded."""
        return self._engine.mean_served_watts(feed_tag, start, end)

    def natural_load_mw(self, feed_tag: str, at: datetime | None = None) -> float:
        """What the feed would draw uncapped at `at` (default: now): the load model's value,
        or the default constraint with a flat load."""
        if self.load_model is None:
            return next(f.default_watts for f in self.feeds if f.tag == feed_tag) / 1e6
        return self.load_model.watts(feed_tag, at or self.clock.now()) / 1e6

    # --- acting -----------------------------------------------------------------------------

    def clear_registrations(self) -> None:
        """Forget every webhook registration, as a restarted DPS would."""
        self._registry.clear()
        self._log.info("webhook registrations cleared")

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired (refresh tokens keep working)."""
        self.tokens.expire_access_tokens()

    def revoke_tokens(self) -> None:
        """Forget every access and refresh token."""
        self.tokens.revoke_all()

    def advance(self, delta: timedelta | float) -> None:
        """Jump the simulated clock forward (seconds or a timedelta) and apply it at once."""
        self.clock.advance(delta if isinstance(delta, timedelta) else timedelta(seconds=delta))
        self._engine.tick()

    def schedule_targets(self) -> list[ScheduledTarget]:
        return self.schedule.targets()

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving and delivering; joins every thread the simulator started."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_ticking.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self._server.stop(grace).wait()
        self._grpc_pool.shutdown(wait=True, cancel_futures=True)
        self._dispatcher.stop()
        self._remove_temp_tls_dir()
        self._log.info("simulator stopped address=%s", self.address)

    def _remove_temp_tls_dir(self) -> None:
        if self._temp_tls_dir is not None:
            shutil.rmtree(self._temp_tls_dir, ignore_errors=True)
            self._temp_tls_dir = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"Simulator(site={self.site!r}, address={self.address!r}, "
            f"tls={not self.config.insecure})"
        )


def load_model(
    feeds: list[FeedConfig], site: str, timezone: ZoneInfo, seed: int | None
) -> LoadModel | None:
    """The site's load model for `seed` (None: no model, a flat load)."""
    if seed is None:
        return None
    return LoadModel(seed, site, timezone, [(f.tag, f.default_watts, f.load_shape) for f in feeds])


def start_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """Build, bind and start a simulator; returns once it accepts connections."""
    simulator = Simulator(config or SimulatorConfig())
    try:
        simulator._start()
    except BaseException:
        simulator.stop(grace=0)
        raise
    return simulator


__all__ = ["Simulator", "load_model", "start_simulator"]
