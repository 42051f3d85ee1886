"""Simulator configuration: feeds (from a JSON file or the built-in two) and server settings."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulator.faults import FaultKnobs
from simulator.load import LoadShape
from simulator.units import Unit, parse_unit, to_watts

if TYPE_CHECKING:
    from gridhook.clock import DevClock

# Bounds that keep every power-event payload inside schemas/power-event.schema.json.
MAX_IDENTIFIER_LENGTH = 256  # feed_tag, correlation_id
MAX_CAP_WATTS = 1e18  # 1e12 MW: the schema's largest load value in the payloads' unit (mw)
DEFAULT_SITE = "site-1"
# gridhook's rule for a site name (issue 14), so every simulated site can be one of its sites.
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_site_name(name: str) -> str:
    """`name` if it is a valid site name; ValueError saying the rule otherwise."""
    if not SITE_NAME.fullmatch(name):
        raise ValueError(
            f"site name {name!r} must be 1 to 63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return name


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (e.g. America/Phoenix); ValueError naming it if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name, e.g. America/Phoenix)"
        ) from None


@dataclass(frozen=True)
class FeedConfig:
    """One power feed. Caps, default constraint and floor are in `unit` (a LoadValue.Unit
    number).

    `min_achievable` is the lowest load the datacenter can really shed to (None = `min_cap`).
    DPS accepts any target within the caps, so a target below the floor is scheduled, but the
    ramp down stops at the floor and reports the target as not met (`compliant: false`).
    """

    tag: str
    min_cap: float
    max_cap: float
    default_constraint: float
    unit: Unit
    min_achievable: float | None = None
    # The shape of its natural load when the simulator runs the load model (`load_seed`).
    load_shape: LoadShape = field(default_factory=LoadShape)

    @property
    def min_cap_watts(self) -> float:
        return to_watts(self.min_cap, self.unit)

    @property
    def floor_watts(self) -> float:
        """The lowest calculated load a ramp down can reach (`min_achievable`, else min_cap)."""
        floor = self.min_cap if self.min_achievable is None else self.min_achievable
        return to_watts(floor, self.unit)

    @property
    def max_cap_watts(self) -> float:
        return to_watts(self.max_cap, self.unit)

    @property
    def default_watts(self) -> float:
        return to_watts(self.default_constraint, self.unit)


def default_feeds() -> list[FeedConfig]:
    """Two feeds. Both accept the seed's example target (6.5 MW, down from 10 MW on the main
    feed), so a target without feed tags (= all feeds) in that range is valid for both."""
    mw = parse_unit("mw")
    return [
        FeedConfig("main_power_feed", min_cap=2.0, max_cap=12.0, default_constraint=10.0, unit=mw),
        FeedConfig("backup_power_feed", min_cap=1.0, max_cap=10.0, default_constraint=8.0, unit=mw),
    ]


def parse_feeds(document: Any) -> list[FeedConfig]:
    """Feeds from `{"feeds": [{"tag", "min_cap", "max_cap", "default_constraint", "unit",
    "min_achievable", "load"}]}` (or the bare list; unit defaults to mw, min_achievable to
    min_cap, load — a `LoadShape` as an object — to the default shape).
    Raises ValueError naming the offending entry."""
    entries = document.get("feeds") if isinstance(document, Mapping) else document
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise ValueError('feeds config must be {"feeds": [...]} with at least one feed')
    feeds: list[FeedConfig] = []
    for index, entry in enumerate(entries):
        where = f"feeds[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: must be an object")
        try:
            feed = FeedConfig(
                tag=str(entry["tag"]),
                min_cap=float(entry["min_cap"]),
                max_cap=float(entry["max_cap"]),
                default_constraint=float(entry["default_constraint"]),
                unit=parse_unit(str(entry.get("unit", "mw"))),
                min_achievable=_optional_float(entry.get("min_achievable")),
                load_shape=_load_shape(entry.get("load")),
            )
        except KeyError as missing:
            raise ValueError(f"{where}: missing {missing}") from None
        except (TypeError, ValueError) as bad:
            raise ValueError(f"{where}: {bad}") from None
        # Limits of the power-event schema the payloads must pass: feed_tag 1-256 characters,
        # load values finite and at most 1e12 (in mw, the payloads' unit).
        if not 0 < len(feed.tag) <= MAX_IDENTIFIER_LENGTH:
            raise ValueError(f"{where}: tag must be 1 to {MAX_IDENTIFIER_LENGTH} characters")
        if not 0 <= feed.min_cap <= feed.default_constraint <= feed.max_cap:
            raise ValueError(f"{where}: need 0 <= min_cap <= default_constraint <= max_cap")
        if feed.min_achievable is not None and not (
            feed.min_cap <= feed.min_achievable <= feed.default_constraint
        ):
            raise ValueError(f"{where}: need min_cap <= min_achievable <= default_constraint")
        if not math.isfinite(feed.max_cap) or feed.max_cap_watts > MAX_CAP_WATTS:
            raise ValueError(f"{where}: max_cap must be finite and at most 1e12 MW")
        feeds.append(feed)
    tags = [feed.tag for feed in feeds]
    if len(set(tags)) != len(tags):
        raise ValueError("feeds config: feed tags must be unique")
    return feeds


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _load_shape(value: Any) -> LoadShape:
    if value is None:
        return LoadShape()
    if not isinstance(value, Mapping):
        raise ValueError("load must be an object")
    return LoadShape.parse(value)


def load_feeds(path: str | Path) -> list[FeedConfig]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read feeds config {path}: {error}") from None
    return parse_feeds(document)


@dataclass
class SimulatorConfig:
    """Everything `start_simulator` needs. Durations are real seconds unless named otherwise."""

    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port (see Simulator.port)
    insecure: bool = False  # plaintext gRPC instead of TLS
    tls_dir: str | Path | None = None  # where ca.pem/server.pem live; None = a temp dir
    tls_hostnames: Sequence[str] = ("localhost", "127.0.0.1")  # SANs of the server cert
    users: Mapping[str, str] = field(default_factory=lambda: {"admin": "password"})
    token_ttl: float = 3600.0  # access-token lifetime
    refresh_token_ttl: float = 86400.0
    feeds: Sequence[FeedConfig] | None = None  # None = default_feeds()
    speed: float = 1.0  # simulated seconds per real second
    # Run like GRIDHOOK_DEV_CLOCK instead (`gridhook.clock.parse_dev_clock`): its speed and
    # origin win over `speed`, so a receiver given the same string keeps the same time.
    clock: DevClock | None = None
    ramp_rate_mw_per_minute: float = 1.0  # simulated time
    whitelist: Sequence[str] = ()  # empty = every http(s) URL may register
    concurrency: int = 32  # parallel webhook deliveries (DPS default)
    call_timeout: float = 60.0  # per webhook POST (DPS default 1m)
    tick_interval: float = 0.02  # how often the ramp model advances
    faults: FaultKnobs = field(default_factory=FaultKnobs)
    grpc_workers: int = 8
    # Which DPS site this is (logs, thread names; `simulator.fleet` serves several) and its
    # IANA time zone (the load model's local day; the history files' local time).
    site: str = DEFAULT_SITE
    timezone: str = "UTC"
    # None: every feed draws exactly its cap (the default constraint, or the target once
    # ramped). A seed: every feed follows the load model (`simulator.load`), capped while
    # constrained.
    load_seed: int | None = None
