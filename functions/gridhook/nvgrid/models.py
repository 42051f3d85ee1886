"""What the NvGrid client returns and accepts: plain dataclasses, no protobuf.

Callers depend on these names only; how they map onto the (reconstructed) proto lives in
``convert.py``. Loads carry the unit names of webhook payloads (gridhook's units table:
``w``, ``kw``, ``mw``, ``gw``…). Nothing here imports grpc or protobuf.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "POWER_EVENTS",
    "UNITS",
    "ActionResult",
    "FeedCaps",
    "FeedStatus",
    "Load",
    "LoadTarget",
    "ResponseDetail",
    "to_jsonable",
]

#: The power events a webhook can subscribe to, as webhook payloads spell them.
POWER_EVENTS: tuple[str, ...] = ("start_ramp_up", "end_ramp_up", "start_ramp_down", "end_ramp_down")

#: Short unit spelling -> proto enum value NAME (mapped by name, never by number).
UNITS: Mapping[str, str] = {"w": "UNIT_WATT", "kw": "UNIT_KILOWATT", "mw": "UNIT_MEGAWATT"}


@dataclass(frozen=True)
class Load:
    """A power value, e.g. ``Load(6.5, "mw")``."""

    value: float
    unit: str = "mw"


@dataclass(frozen=True)
class LoadTarget:
    """One scheduled (or effective) load target.

    ``target_load=None`` is the null target: back to the data-center default constraint.
    ``end_time=None`` means "until replaced"; empty ``feed_tags`` means all feeds.
    """

    start_time: datetime | None
    end_time: datetime | None = None
    target_load: Load | None = None
    best_effort: bool = False
    feed_tags: tuple[str, ...] = ()
    correlation_id: str = ""


@dataclass(frozen=True)
class FeedCaps:
    """A feed's limits as GetMetadata reports them."""

    min_power_cap: Load | None
    max_power_cap: Load | None
    default_constraint: Load | None


@dataclass(frozen=True)
class FeedStatus:
    """A feed's current target and achieved (calculated) load, as GetStatus reports them."""

    current_target: LoadTarget | None
    calculated_load: Load | None


@dataclass(frozen=True)
class ResponseDetail:
    """One per-item outcome attached to a LoadTargetResponse (e.g. per load target or feed)."""

    code: str  # enum value name, e.g. "STATUS_CODE_ERROR"
    diag_msg: str = ""
    feed_tag: str = ""
    correlation_id: str = ""


@dataclass(frozen=True)
class ActionResult:
    """The successful answer of SetLoadTarget / RegisterWebhook / UnregisterWebhook.

    (Failures, ``STATUS_CODE_ERROR``, are raised as ``NvGridRejected`` instead.)
    """

    code: str  # "STATUS_CODE_SUCCESS"
    diag_msg: str = ""
    details: tuple[ResponseDetail, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == "STATUS_CODE_SUCCESS"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, enums and containers -> JSON-ready values (for the CLI).

    Datetimes become RFC 3339 in UTC with a ``Z`` suffix, like webhook payloads.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, ActionResult):
            data["ok"] = value.ok
        return data
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
