"""Log lines that say which simulated site wrote them (`... site=phx1`), for a fleet of
simulators in one process."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["SiteLogger", "site_logger"]


class SiteLogger(logging.LoggerAdapter[logging.Logger]):
    """Appends ` site=NAME` to every message (nothing when the site is None)."""

    def __init__(self, logger: logging.Logger, site: str | None) -> None:
        super().__init__(logger, {})
        self.site = site

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        if self.site is None:
            return msg, kwargs
        return f"{msg} site={self.site}", kwargs


def site_logger(logger: logging.Logger, site: str | None) -> SiteLogger:
    return SiteLogger(logger, site)
