"""A burst with redeliveries: 32 concurrent senders, thousands of events, a fifth of the
requests exact redeliveries (some byte-identical, some with other key order, spacing or
``10`` for ``10.0``), shuffled, some racing their original. Through the real
functions-framework server, on SQLite and on the Firestore emulator: no 5xx, every answer
names the right event, and the store ends with exactly the distinct events, each once.

Size: GRIDHOOK_RELIABILITY_REQUESTS (default 2500; ``make bench`` sizes go higher).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from typing import Any

import pytest

from gridhook.events import canonical_json, event_id
from gridhook.store import EventQuery, iter_events, open_store
from tests.bench.load import Request, bench_payload, send_all
from tests.harness import TEST_TOKEN, function_server

pytestmark = pytest.mark.slow

REQUESTS = int(os.environ.get("GRIDHOOK_RELIABILITY_REQUESTS", "2500"))
SENDERS = 32
EVENT_TYPES = ("start_ramp_down", "end_ramp_down", "start_ramp_up", "end_ramp_up")


def _payload(i: int, rng: random.Random) -> dict[str, Any]:
    payload = bench_payload("reliability", i)
    payload["event"] = rng.choice(EVENT_TYPES)
    payload["feed_tag"] = f"feed-{i % 7}"
    payload["target_load"] = {
        "value": rng.choice([6.5, 250, 1e3]),
        "unit": rng.choice(["mw", "KW"]),
    }
    return payload


def _shuffled_keys(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled_keys(v, rng) for k, v in items}
    return value


def _redelivery(payload: dict[str, Any], body: bytes, rng: random.Random) -> bytes:
    """The same event again, as DPS might resend it: same content, maybe other bytes."""
    style = rng.randrange(4)
    if style == 0:
        return body
    if style == 1:
        return json.dumps(dict(reversed(payload.items())), indent=2).encode()
    if style == 2:
        text = json.dumps(_shuffled_keys(payload, rng), separators=(" ,\n", " :\t"))
        return f"\n {text} \n".encode()
    # Integral floats written as integers are the same quantity (the id normalises them).
    same = json.loads(body)
    same["prev_target_load"]["value"] = int(same["prev_target_load"]["value"])
    return json.dumps(same, ensure_ascii=True).encode()


def workload(total: int, seed: int = 6) -> tuple[list[bytes], dict[str, dict[str, Any]]]:
    """Shuffled bodies (a fifth of them redeliveries) and the distinct events by id."""
    rng = random.Random(seed)
    redeliveries = total // 5
    distinct = total - redeliveries
    payloads = [_payload(i, rng) for i in range(distinct)]
    bodies = [json.dumps(p).encode() for p in payloads]
    groups = [[body] for body in bodies]
    loose: list[bytes] = []
    for i in rng.sample(range(distinct), redeliveries):
        again = _redelivery(payloads[i], bodies[i], rng)
        # Half race their original (sent right after it, so both are in flight at once);
        # the other half land anywhere, before or after it.
        (groups[i] if rng.random() < 0.5 else loose).append(again)
    rng.shuffle(groups)
    order = [body for group in groups for body in group]
    for body in loose:
        order.insert(rng.randrange(len(order) + 1), body)
    return order, {event_id(p): p for p in payloads}


def test_workload_is_what_it_claims() -> None:
    order, expected = workload(REQUESTS)
    assert len(order) == REQUESTS
    assert len(expected) == REQUESTS - REQUESTS // 5
    ids = Counter(event_id(json.loads(b)) for b in order)
    assert set(ids) == set(expected)
    assert sum(n - 1 for n in ids.values()) == REQUESTS // 5
    assert len(set(order)) > len(expected)  # some redeliveries differ in their bytes


def test_burst_with_redeliveries_stores_each_event_once(store_url: str, tmp_path) -> None:
    order, expected = workload(REQUESTS)
    env = {"GRIDHOOK_STORE": store_url, "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN}
    with function_server("receive_power_event", env, cwd=tmp_path) as server:
        replies = send_all("127.0.0.1", server.port, [Request(b) for b in order], SENDERS)
        assert server.returncode is None

    failures = [(r.status, r.error, r.body[:200]) for r in replies if r.status != 200]
    assert failures == []  # no 5xx, no dropped connection, nothing but 200
    answers = [r.json() for r in replies]
    # Every answer names the event its body carried.
    assert [a["event_id"] for a in answers] == [event_id(json.loads(b)) for b in order]
    outcomes = Counter(a["status"] for a in answers)
    accepted = Counter(a["event_id"] for a in answers if a["status"] == "accepted")
    assert set(accepted) == set(expected)  # every event was accepted at least once
    if store_url.startswith("dynamodb://"):
        # moto's server does not make a conditional put atomic against a concurrent one
        # (real DynamoDB does): a redelivery racing its original can also answer
        # "accepted". What the store keeps is still each event once (checked below).
        assert outcomes["accepted"] + outcomes["duplicate"] == REQUESTS
    else:
        assert outcomes == {"accepted": len(expected), "duplicate": REQUESTS // 5}
        # Exactly one "accepted" per event, even when the redelivery raced the original.
        assert set(accepted.values()) == {1}

    store = open_store(store_url, timeout_seconds=30)
    try:
        stored = list(iter_events(store, EventQuery(limit=1000)))
    finally:
        store.close()
    counts = Counter(e.event_id for e in stored)
    assert len(stored) == len(expected)
    assert set(counts) == set(expected) and set(counts.values()) == {1}
    for event in stored:
        assert canonical_json(event.payload) == canonical_json(expected[event.event_id])
