"""The exceptions of the settlement core: one per failure a caller can meet."""

from __future__ import annotations

__all__ = ["MeterParseError", "SettlementError", "SettlementInputError"]


class SettlementError(ValueError):
    """Base of every settlement failure (a ValueError: bad input, never an outage)."""


class SettlementInputError(SettlementError):
    """A parameter or an input the core cannot work with (an unknown method or resolution,
    a naive datetime, a coverage outside (0, 1], a time zone off the 5-minute grid)."""


class MeterParseError(SettlementError):
    """A meter file that cannot be read: ``line`` is the 1-based line at fault.

    Parsing is all or nothing, so one error rejects the whole file.
    """

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
