"""The DPS NvGrid gRPC client: endpoint/credential config, channel, tokens, retries, errors.

Never imported by the webhook receiver (it loads grpc). Within this package only ``client``,
``channel``, ``auth``, ``retry`` and ``convert`` import grpc/protobuf; ``config``, ``models``
and ``errors`` do not, and the client names below are loaded on first use, so
``from gridhook.nvgrid import NvGridConfigError`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import (
    CallPolicy,
    Credentials,
    NvGridEndpoint,
    TlsMode,
    credentials_from_env,
    endpoint_from_env,
    make_endpoint,
)
from .errors import (
    NvGridAuthError,
    NvGridCallError,
    NvGridConfigError,
    NvGridError,
    NvGridRejected,
    NvGridTlsError,
    NvGridUnavailable,
)
from .models import (
    POWER_EVENTS,
    ActionResult,
    FeedCaps,
    FeedStatus,
    Load,
    LoadTarget,
    ResponseDetail,
    to_jsonable,
)

if TYPE_CHECKING:
    from .client import NvGridClient

__all__ = [
    "POWER_EVENTS",
    "ActionResult",
    "CallPolicy",
    "Credentials",
    "FeedCaps",
    "FeedStatus",
    "Load",
    "LoadTarget",
    "NvGridAuthError",
    "NvGridCallError",
    "NvGridClient",
    "NvGridConfigError",
    "NvGridEndpoint",
    "NvGridError",
    "NvGridRejected",
    "NvGridTlsError",
    "NvGridUnavailable",
    "ResponseDetail",
    "TlsMode",
    "credentials_from_env",
    "endpoint_from_env",
    "make_endpoint",
    "to_jsonable",
]


def __getattr__(name: str) -> Any:
    # Lazy: importing grpc costs ~100 ms, which the CLI's --help and config checks do not need.
    if name == "NvGridClient":
        from .client import NvGridClient

        return NvGridClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
