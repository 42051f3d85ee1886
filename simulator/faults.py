"""Fault knobs: ways the simulated DPS misbehaves, for testing receivers and clients.

All attributes may be changed at any time (e.g. `sim.faults.drop_next = 2`) from any thread;
counters that are consumed ("the next N") are decremented under a lock.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class FaultKnobs:
    # Duplicates: send every Nth delivery twice (0 = off), and/or each with a probability.
    duplicate_every: int = 0
    duplicate_probability: float = 0.0
    # Drops: silently drop the next N deliveries, and/or each with a probability.
    drop_next: int = 0
    drop_probability: float = 0.0
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

    def shuffled(self, items: list) -> list:  # type: ignore[type-arg]
        """A permutation of items that differs from the original order whenever possible."""
        with self._lock:
            result = list(items)
            self.rng().shuffle(result)
        if len(result) > 1 and result == items:
            result.reverse()
        return result
