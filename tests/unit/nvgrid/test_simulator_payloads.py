"""Every power event the simulator can produce passes ``schemas/power-event.schema.json``.

The simulator is what the client and the receiver are tested against, so a payload it sends
that the receiver's schema refuses (422) would make an end-to-end test fail for the wrong
reason. Targets go through the NvGrid servicer (its validation and correlation-id defaults
included) into the real schedule and ramp model on a clock the test moves; the payloads are
checked as the dispatcher would send them (JSON without NaN/Infinity).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dpsapi.v1 import nvgrid_pb2
from gridhook.schema import violations
from simulator.clock import SimClock, rfc3339
from simulator.config import MAX_IDENTIFIER_LENGTH, default_feeds, parse_feeds
from simulator.engine import RampEngine
from simulator.schedule import Schedule
from simulator.service import SUCCESS, NvGridServicer
from simulator.webhooks import WebhookRegistry

ORIGIN = datetime(2025, 10, 24, 17, tzinfo=UTC)
UNITS = {
    "w": nvgrid_pb2.LoadValue.UNIT_WATT,
    "kw": nvgrid_pb2.LoadValue.UNIT_KILOWATT,
    "mw": nvgrid_pb2.LoadValue.UNIT_MEGAWATT,
}


class Model:
    """The simulator's schedule + ramp model + NvGrid servicer, without gRPC or threads."""

    def __init__(self, feeds: Any = None, ramp_rate: float = 1.0) -> None:
        # A crawling clock: time moves when the test says so (plus a few real microseconds,
        # which give some payloads millisecond fractions).
        self.clock = SimClock(speed=1.0, start=ORIGIN)
        self.feeds = feeds or default_feeds()
        self.published: list[dict[str, Any]] = []
        self.engine = RampEngine(
            self.feeds,
            Schedule(),
            self.clock,
            ramp_rate,
            lambda event, payload: self.published.append(payload),
        )
        self.nvgrid = NvGridServicer(
            self.feeds, self.engine._schedule, self.clock, self.engine, WebhookRegistry()
        )

    def set(self, *targets: nvgrid_pb2.LoadTarget) -> Any:
        request = nvgrid_pb2.LoadTargetRequest(load_targets=list(targets))
        return self.nvgrid.SetLoadTarget(request, context=None)

    def run(self, minutes: float, step_minutes: float = 0.5) -> None:
        """Advance the clock in steps, ticking the model after each (as its thread does)."""
        remaining = minutes
        while remaining > 0:
            step = min(step_minutes, remaining)
            self.clock.advance(timedelta(minutes=step))
            self.engine.tick()
            remaining -= step


def target(
    value: float | None,
    unit: str = "mw",
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    feed_tags: tuple[str, ...] = (),
    correlation_id: str = "",
    best_effort: bool = False,
) -> nvgrid_pb2.LoadTarget:
    message = nvgrid_pb2.LoadTarget(feed_tags=list(feed_tags), correlation_id=correlation_id)
    if start is not None:
        message.interval.start_time.FromDatetime(start)
    if end is not None:
        message.interval.end_time.FromDatetime(end)
    if value is not None:
        message.target_load.value = value
        message.target_load.unit = UNITS[unit]
    if best_effort:
        message.strategy.best_effort = True
    return message


def assert_all_valid(payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        body = json.dumps(payload, allow_nan=False)  # what the dispatcher can send
        assert violations(json.loads(body)) == [], payload
        assert isinstance(payload["start_time"], str), payload  # never null


def test_a_curtailment_and_its_recovery_are_valid() -> None:
    model = Model()
    now = model.clock.now()
    answer = model.set(
        target(6.5, start=now, end=now + timedelta(minutes=30), feed_tags=("main_power_feed",))
    )
    assert answer.code == SUCCESS
    model.run(60)
    assert [p["event"] for p in model.published] == [
        "start_ramp_down",
        "end_ramp_down",
        "start_ramp_up",
        "end_ramp_up",
    ]
    assert all(p["correlation_id"].startswith("sim-") for p in model.published)
    assert_all_valid(model.published)


def test_every_kind_of_target_gives_valid_payloads() -> None:
    model = Model(ramp_rate=2.0)
    now = model.clock.now()
    cases = [
        # up, best effort, open-ended, in watts, every feed
        target(9_500_000, "w", best_effort=True),
        # kilowatts, one feed, with a millisecond start
        target(
            4000,
            "kw",
            start=now + timedelta(minutes=5, milliseconds=250),
            feed_tags=("backup_power_feed",),
        ),
        # the null target: back to the default, replacing the others
        target(None, start=now + timedelta(minutes=20)),
        # longest correlation id the schema allows; replaces a ramp mid-way
        target(
            2,
            start=now + timedelta(minutes=40),
            end=now + timedelta(minutes=41),
            correlation_id="c" * MAX_IDENTIFIER_LENGTH,
        ),
        target(12, start=now + timedelta(minutes=42), feed_tags=("main_power_feed",)),
    ]
    for case in cases:
        assert model.set(case).code == SUCCESS
    model.run(120, step_minutes=0.37)
    events = {p["event"] for p in model.published}
    assert events == {"start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up"}
    assert any(p["strategy"] == "best_effort" for p in model.published)
    assert any(p["end_time"] is None for p in model.published)
    assert_all_valid(model.published)


def test_a_target_from_the_earliest_timestamp_is_still_rfc_3339() -> None:
    # strftime("%Y") would print year 1 as "1"; the schema needs four digits.
    assert rfc3339(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    model = Model()
    start = datetime(1, 1, 1, tzinfo=UTC)
    assert model.set(target(5, start=start, end=ORIGIN + timedelta(minutes=10))).code == SUCCESS
    model.run(30)
    assert model.published[0]["start_time"] == "0001-01-01T00:00:00Z"
    assert_all_valid(model.published)


def test_a_correlation_id_the_schema_would_refuse_is_refused_at_scheduling() -> None:
    model = Model()
    answer = model.set(target(6, correlation_id="c" * (MAX_IDENTIFIER_LENGTH + 1)))
    assert answer.code != SUCCESS
    assert "correlation_id longer than 256 characters" in answer.diag_msg
    assert model.engine._schedule.targets() == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"tag": "t" * 257, "min_cap": 1, "max_cap": 2, "default_constraint": 1}, "tag must be"),
        ({"tag": "", "min_cap": 1, "max_cap": 2, "default_constraint": 1}, "tag must be"),
        (
            {"tag": "f", "min_cap": 1, "max_cap": float("inf"), "default_constraint": 1},
            "finite",
        ),
        ({"tag": "f", "min_cap": 1, "max_cap": 2e12, "default_constraint": 1}, "at most 1e12"),
        (
            {"tag": "f", "min_cap": 1, "max_cap": float("nan"), "default_constraint": 1},
            "min_cap <=",
        ),
    ],
)
def test_feeds_whose_payloads_the_schema_would_refuse_are_refused(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_feeds({"feeds": [entry]})


# --- any schedule at all ---------------------------------------------------------------------

FEED_TAGS = ("main_power_feed", "backup_power_feed")
identifiers = st.text(max_size=MAX_IDENTIFIER_LENGTH + 20)  # longer ones are refused
targets = st.builds(
    lambda value, unit, start, length, tags, cid, best: {
        "value": value,
        "unit": unit,
        "start": start,
        "length": length,
        "feed_tags": tags,
        "correlation_id": cid,
        "best_effort": best,
    },
    value=st.none() | st.floats(min_value=0.5, max_value=12.5),  # MW; some outside the caps
    unit=st.sampled_from(["mw", "kw", "w"]),
    start=st.none() | st.floats(min_value=-600, max_value=600),  # minutes from "now"
    length=st.none() | st.floats(min_value=0.01, max_value=300),
    tags=st.lists(st.sampled_from(FEED_TAGS), max_size=2, unique=True).map(tuple),
    cid=identifiers,
    best=st.booleans(),
)
steps = st.lists(
    st.tuples(st.lists(targets, min_size=1, max_size=3), st.floats(min_value=0, max_value=90)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, ramp_rate=st.sampled_from([0.5, 1.0, 7.0]))
def test_any_schedule_gives_only_valid_payloads(
    steps: list[tuple[list[dict[str, Any]], float]], ramp_rate: float
) -> None:
    model = Model(ramp_rate=ramp_rate)
    for batch, minutes in steps:
        now = model.clock.now()
        messages = []
        for spec in batch:
            start = None if spec["start"] is None else now + timedelta(minutes=spec["start"])
            end = None
            if spec["length"] is not None:
                end = (start or now) + timedelta(minutes=spec["length"])
            value = spec["value"]
            if value is not None:
                value *= {"mw": 1, "kw": 1e3, "w": 1e6}[spec["unit"]]
            messages.append(
                target(
                    value,
                    spec["unit"],
                    start=start,
                    end=end,
                    feed_tags=spec["feed_tags"],
                    correlation_id=spec["correlation_id"],
                    best_effort=spec["best_effort"],
                )
            )
        model.set(*messages)  # refused requests (values outside caps, ...) change nothing
        model.run(minutes, step_minutes=1.7)
    event("some power events" if model.published else "no power events")
    assert_all_valid(model.published)
