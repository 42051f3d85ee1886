"""The ramp model: per feed, the power cap moves toward the winning target at a fixed rate,
and power events are published when a ramp starts and when it reaches the target.

The calculated load is the cap itself (a flat load, no `natural` model), or the feed's
natural load (`simulator.load`) held under the cap: min(natural, cap). A ramp down starts
from the load actually drawn, not from the old cap, so it ends as soon as the load is at
the target. A ramp down stops at the feed's floor (`FeedConfig.min_achievable`): a target
below it ends with `end_ramp_down` at the floor and `compliant: false`, the target not met.

The engine keeps every cap it held (`CapHistory`, one entry per change), so the load it
served over any past range can be read afterwards: what the site's revenue meter recorded
(`served_watts`, `--meter-out`)."""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dpsapi.v1 import nvgrid_pb2
from simulator.clock import SimClock, rfc3339
from simulator.config import FeedConfig
from simulator.load import mean_over
from simulator.schedule import Schedule, ScheduledTarget
from simulator.sitelog import site_logger
from simulator.units import payload_load
from simulator.webhooks import EVENT_NAMES

log = logging.getLogger("simulator.engine")

_Event = nvgrid_pb2.RegisterWebhookRequest
_EPSILON_WATTS = 1e-3


#: The natural load of a feed at an instant (watts), e.g. `LoadModel.watts`.
NaturalLoad = Callable[[str, datetime], float]


@dataclass
class CapHistory:
    """The caps a feed held: `caps[i]` from `since[i]` until `since[i + 1]` (the last one
    until now); before the first entry, `before` (the default constraint)."""

    before: float
    since: list[datetime] = field(default_factory=list)
    caps: list[float] = field(default_factory=list)

    def record(self, moment: datetime, cap_watts: float) -> None:
        """The cap from `moment` on; kept only if it differs from the last one (a steady
        feed adds nothing, a ramp an entry per tick)."""
        last = self.caps[-1] if self.caps else self.before
        if not self.caps or abs(cap_watts - last) > _EPSILON_WATTS:
            self.since.append(moment)
            self.caps.append(cap_watts)

    def at(self, moment: datetime) -> float:
        index = bisect.bisect_right(self.since, moment) - 1
        return self.caps[index] if index >= 0 else self.before


@dataclass
class FeedState:
    feed: FeedConfig
    cap_watts: float  # the ramping power cap; the calculated load never exceeds it
    target_watts: float  # the cap in force (the default when no target wins)
    prev_target_watts: float
    winner: ScheduledTarget | None
    # What the events of the current episode report (carried over to the ramp back to the
    # default, so one correlation id links a curtailment's down- and up-ramps).
    correlation_id: str
    start_time: datetime  # never None: payloads always carry an RFC 3339 start_time (schema)
    end_time: datetime | None
    strategy: str
    ramping: int | None = None  # the END_RAMP_* event to send on arrival, None = steady


class RampEngine:
    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        schedule: Schedule,
        clock: SimClock,
        ramp_rate_mw_per_minute: float,
        publish: Callable[[int, dict[str, Any]], None],
        natural: NaturalLoad | None = None,
        site: str | None = None,
    ) -> None:
        if ramp_rate_mw_per_minute <= 0:
            raise ValueError("ramp rate must be positive")
        self._schedule = schedule
        self._clock = clock
        self._watts_per_second = ramp_rate_mw_per_minute * 1e6 / 60.0
        self._publish = publish
        self._natural = natural
        self._log = site_logger(log, site)
        self._lock = threading.Lock()  # guards feed state for readers
        # Ticks come from the clock thread and from RPCs (SetLoadTarget, advance); one at a
        # time, publishing included, so a start_* is always handed over before its end_*.
        self._tick_lock = threading.Lock()
        self._last_tick = clock.now()
        # Before any target the feed is on its default constraint "since the simulator started".
        started = self._last_tick
        self._states = {
            f.tag: FeedState(
                feed=f,
                cap_watts=f.default_watts,
                target_watts=f.default_watts,
                prev_target_watts=f.default_watts,
                winner=None,
                correlation_id="",
                start_time=started,
                end_time=None,
                strategy="best_effort",
            )
            for f in feeds
        }
        self._events: list[dict[str, Any]] = []
        self._caps = {f.tag: CapHistory(before=f.default_watts) for f in feeds}
        for tag, state in self._states.items():
            self._caps[tag].record(started, state.cap_watts)

    def tick(self) -> None:
        """Advance every feed to the clock's current time and publish the resulting events."""
        with self._tick_lock:
            self._tick()

    def _tick(self) -> None:
        outbox: list[tuple[int, dict[str, Any]]] = []
        with self._lock:
            now = self._clock.now()
            elapsed = max(0.0, (now - self._last_tick).total_seconds())
            self._last_tick = now
            for state in self._states.values():
                self._follow_schedule(state, now, outbox)
                self._ramp(state, now, elapsed, outbox)
                self._caps[state.feed.tag].record(now, state.cap_watts)
            self._events.extend(payload for _, payload in outbox)
        for event, payload in outbox:
            self._log.info(
                "power event event=%s feed=%s correlation_id=%s",
                payload["event"],
                payload["feed_tag"],
                payload["correlation_id"],
            )
            self._publish(event, payload)

    def _follow_schedule(
        self, state: FeedState, now: datetime, outbox: list[tuple[int, dict[str, Any]]]
    ) -> None:
        winner = self._schedule.winner(state.feed.tag, now)
        if winner is state.winner:
            return
        ended = state.winner
        state.winner = winner
        state.prev_target_watts = state.target_watts
        if winner is not None:
            state.target_watts = (
                winner.value_watts if winner.value_watts is not None else state.feed.default_watts
            )
            state.correlation_id = winner.correlation_id
            state.start_time, state.end_time = winner.start, winner.end
            state.strategy = "best_effort" if winner.best_effort else "default"
        else:
            # Back to the default: the episode of the target that just ended continues.
            state.target_watts = state.feed.default_watts
            state.start_time = ended.end if ended is not None and ended.end else now
            state.end_time = None
        load = self._load(state, now)
        if state.target_watts < state.cap_watts - _EPSILON_WATTS:
            state.ramping = _Event.POWER_EVENT_END_RAMP_DOWN
            outbox.append(self._event(_Event.POWER_EVENT_START_RAMP_DOWN, state, load))
            # The cap comes down from what is drawn (never below where the ramp ends): a
            # load already under the new target is there at once.
            state.cap_watts = max(_destination(state), min(state.cap_watts, load))
        elif state.target_watts > state.cap_watts + _EPSILON_WATTS:
            state.ramping = _Event.POWER_EVENT_END_RAMP_UP
            outbox.append(self._event(_Event.POWER_EVENT_START_RAMP_UP, state, load))
        else:
            state.ramping = None  # already there: nothing moves, nothing to report

    def _ramp(
        self,
        state: FeedState,
        now: datetime,
        elapsed: float,
        outbox: list[tuple[int, dict[str, Any]]],
    ) -> None:
        if state.ramping is None:
            return
        destination = _destination(state)
        gap = destination - state.cap_watts
        step = self._watts_per_second * elapsed
        if abs(gap) <= step + _EPSILON_WATTS:
            state.cap_watts = destination
            outbox.append(self._event(state.ramping, state, self._load(state, now)))
            state.ramping = None
        else:
            state.cap_watts += step if gap > 0 else -step

    def _load(self, state: FeedState, now: datetime) -> float:
        """The calculated load: the cap, or the natural load held under it."""
        if self._natural is None:
            return state.cap_watts
        return min(self._natural(state.feed.tag, now), state.cap_watts)

    @staticmethod
    def _event(event: int, state: FeedState, load_watts: float) -> tuple[int, dict[str, Any]]:
        # Exactly the seed's payload shape and key order.
        payload: dict[str, Any] = {
            "event": EVENT_NAMES[event],
            "feed_tag": state.feed.tag,
            "start_time": rfc3339(state.start_time),
            "end_time": rfc3339(state.end_time) if state.end_time else None,
            "strategy": state.strategy,
            "target_load": payload_load(state.target_watts),
            "prev_target_load": payload_load(state.prev_target_watts),
            "calculated_load": payload_load(load_watts),
            "compliant": load_watts <= state.target_watts + _EPSILON_WATTS,
            "correlation_id": state.correlation_id,
        }
        return event, payload

    # --- observing --------------------------------------------------------------------------

    def calculated_watts(self, feed_tag: str) -> float:
        """The feed's calculated load now (between ticks the natural load still moves)."""
        now = self._clock.now()
        with self._lock:
            return self._load(self._states[feed_tag], now)

    def cap_watts(self, feed_tag: str) -> float:
        """The power cap in force (ramping toward the target, or at it)."""
        with self._lock:
            return self._states[feed_tag].cap_watts

    def events(self) -> list[dict[str, Any]]:
        """Every power event generated so far, whether or not anyone was subscribed."""
        with self._lock:
            return list(self._events)

    def served_watts(self, feed_tag: str, moment: datetime) -> float:
        """The load the feed drew at `moment` (past, or now): the natural load held under the
        cap in force then (the default constraint before the engine started)."""
        with self._lock:
            cap = self._caps[feed_tag].at(moment)
        if self._natural is None:
            return cap
        return min(self._natural(feed_tag, moment), cap)

    def mean_served_watts(
        self, feed_tag: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)
    ) -> float:
        """The mean load drawn over [start, end), as a meter measures it (see `mean_over`)."""
        return mean_over(lambda moment: self.served_watts(feed_tag, moment), start, end, step)


def _destination(state: FeedState) -> float:
    """Where the cap can actually get to: the target, or the floor if the target is lower."""
    return max(state.target_watts, state.feed.floor_watts)
