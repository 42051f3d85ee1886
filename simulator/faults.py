"""Fault knobs: ways the simulated DPS misbehaves, for testing receivers and clients.

All attributes may be changed at any time (e.g. `sim.faults.drop_next = 2`) from any thread;
counters that are consumed ("the next N") are decremented under a lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

POWER_EVENT_NAMES = ("start_ramp_up", "end_ramp_up", "start_ramp_down", "end_ramp_down")

_T = TypeVar("_T")


@dataclass(frozen=True)
class DropRule:
    """Drop every delivery of `event` (None = any event) for `correlation_id` (None = any).

    Written `EVENT[:CORRELATION_ID]` or `:CORRELATION_ID` (see `parse`), e.g.
    `end_ramp_up:curtail-7` drops that curtailment's end of ramp-up only.
    """

    event: str | None = None
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        if self.event is None and self.correlation_id is None:
            raise ValueError("a drop rule needs an event, a correlation id, or both")
        if self.event is not None and self.event not in POWER_EVENT_NAMES:
            expected = ", ".join(POWER_EVENT_NAMES)
            raise ValueError(f"unknown power event {self.event!r}; expected one of {expected}")

    @classmethod
    def parse(cls, text: str) -> DropRule:
        """`end_ramp_up`, `end_ramp_up:CORRELATION_ID` or `:CORRELATION_ID` (the id may itself
        contain colons: only the first one separates)."""
        event, _, correlation_id = text.strip().partition(":")
        return cls(event or None, correlation_id or None)

    def matches(self, payload: Mapping[str, Any]) -> bool:
        return (self.event is None or payload.get("event") == self.event) and (
            self.correlation_id is None or payload.get("correlation_id") == self.correlation_id
        )

    def __str__(self) -> str:
        return f"{self.event or ''}{':' + self.correlation_id if self.correlation_id else ''}"


@dataclass
class FaultKnobs:
    # Duplicates: send every Nth delivery twice (0 = off), and/or each with a probability.
    duplicate_every: int = 0
    duplicate_probability: float = 0.0
    # Drops: silently drop the next N deliveries, and/or each with a probability, and every
    # delivery a rule matches (by event type and/or correlation id; rules are never consumed).
    drop_next: int = 0
    drop_probability: float = 0.0
    drop_events: list[DropRule] = field(default_factory=list)
    # Reordering: hold deliveries until `reorder_batch` are queued (or `reorder_hold` real
    # seconds passed since the first), then send them in a shuffled order (never the original
    # order when the batch has two or more). 0 = off.
    reorder_batch: int = 0
    reorder_hold: float = 2.0
    # Retries on non-200 / connection errors: off by default (DPS documents none).
    retry_on_failure: bool = False
    retry_max_attempts: int = 3  # total attempts, including the first
    retry_backoff: float = 0.2  # real seconds before the 2nd attempt; doubles each time
    # gRPC outage: every RPC (NvGrid and AuthService) fails UNAVAILABLE for the next N calls
    # and/or until the monotonic time `unavailable_until` (see fail_rpcs_for).
    unavailable_calls: int = 0
    unavailable_until: float = 0.0
    # Seed for the probabilistic knobs and the shuffle; None = unpredictable.
    seed: int | None = None

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random | None = field(default=None, repr=False, compare=False)
    _delivery_count: int = field(default=0, repr=False, compare=False)

    def fail_rpcs_for(self, seconds: float) -> None:
        """Make every RPC fail UNAVAILABLE for the next `seconds` real seconds."""
        self.unavailable_until = time.monotonic() + seconds

    def copy(self) -> FaultKnobs:
        """The same settings with counters and random state of its own (for another site)."""
        return FaultKnobs(
            duplicate_every=self.duplicate_every,
            duplicate_probability=self.duplicate_probability,
            drop_next=self.drop_next,
            drop_probability=self.drop_probability,
            drop_events=list(self.drop_events),
            reorder_batch=self.reorder_batch,
            reorder_hold=self.reorder_hold,
            retry_on_failure=self.retry_on_failure,
            retry_max_attempts=self.retry_max_attempts,
            retry_backoff=self.retry_backoff,
            unavailable_calls=self.unavailable_calls,
            unavailable_until=self.unavailable_until,
            seed=self.seed,
        )

    def reset(self) -> None:
        """Turn every fault off."""
        defaults = FaultKnobs()
        with self._lock:
            for name in (
                "duplicate_every",
                "duplicate_probability",
                "drop_next",
                "drop_probability",
                "reorder_batch",
                "reorder_hold",
                "retry_on_failure",
                "retry_max_attempts",
                "retry_backoff",
                "unavailable_calls",
                "unavailable_until",
            ):
                setattr(self, name, getattr(defaults, name))
            self.drop_events = []

    # --- used by the simulator -------------------------------------------------------------

    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security
        return self._rng

    def take_rpc_outage(self) -> bool:
        """True if this RPC must fail UNAVAILABLE (consumes one of `unavailable_calls`)."""
        with self._lock:
            if self.unavailable_calls > 0:
                self.unavailable_calls -= 1
                return True
        return time.monotonic() < self.unavailable_until

    def drop_rule_for(self, payload: Mapping[str, Any]) -> DropRule | None:
        """The first drop rule matching this payload, if any."""
        for rule in tuple(self.drop_events):  # a snapshot: tests may edit the list meanwhile
            if rule.matches(payload):
                return rule
        return None

    def take_drop(self) -> bool:
        with self._lock:
            if self.drop_next > 0:
                self.drop_next -= 1
                return True
            return self.drop_probability > 0 and self.rng().random() < self.drop_probability

    def take_duplicate(self) -> bool:
        with self._lock:
            self._delivery_count += 1
            if self.duplicate_every > 0 and self._delivery_count % self.duplicate_every == 0:
                return True
            return (
                self.duplicate_probability > 0 and self.rng().random() < self.duplicate_probability
            )

    def shuffled(self, items: list[_T]) -> list[_T]:
        """A permutation of items that differs from the original order whenever possible."""
        with self._lock:
            result = list(items)
            self.rng().shuffle(result)
        if len(result) > 1 and result == items:
            result.reverse()
        return result
