"""The validator's fast path (gridhook.schema._fast_check) must agree with jsonschema.

It only ever answers "valid?"; a "no" is handed to jsonschema for the violations. So the
one thing that matters is that it never calls valid what jsonschema rejects, nor the
reverse (which would send a valid payload down the slow path, and is checked too).
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from gridhook import schema
from tests.harness import SEED_PAYLOAD

anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
UNITS = ["w", "kw", "mw", "MW", "watt", "Kilowatt", "megawatt", "gw", "GigaWatt", "tw", "mw ", ""]
EVENTS = ["start_ramp_down", "END_RAMP_UP", "start_ramp_sideways", "", "start_ramp_up\n"]
TIMES = [
    "2025-10-24T17:00:00Z",
    "2025-10-24t17:00:00.123456789+02:00",
    "2025-10-24 17:00:00-05:30",
    "2025-13-45T99:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-10-24T17:00:00",
    "2025-10-24",
]


def near(good: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(good, good, anything)


loads = st.none() | st.fixed_dictionaries(
    {
        "value": near(
            st.sampled_from([0, 0.0, -0.0, -1, 1e12, 1e12 + 1, 10**12, 10**12 + 1, True, 6.5])
        ),
        "unit": near(st.sampled_from(UNITS)),
    },
    optional={"extra": anything},
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "event": near(st.sampled_from(EVENTS)),
        "feed_tag": near(st.text(max_size=3) | st.just("f" * 256) | st.just("f" * 257)),
        "correlation_id": near(st.text(max_size=3)),
        "strategy": near(st.just("best_effort")),
        "start_time": near(st.sampled_from(TIMES)),
        "end_time": near(st.sampled_from([*TIMES, None])),
        "target_load": near(loads),
        "prev_target_load": near(loads),
        "calculated_load": near(loads),
        "compliant": near(st.booleans()),
        "unknown": anything,
    },
)


def test_fast_path_accepts_the_seed() -> None:
    assert schema.is_valid(copy.deepcopy(SEED_PAYLOAD))
    assert schema.violations(copy.deepcopy(SEED_PAYLOAD)) == []


@settings(max_examples=500)
@given(st.one_of(payloads, anything))
def test_fast_path_agrees_with_jsonschema(payload) -> None:
    assert schema.is_valid(payload) == schema.validator().is_valid(payload)
