"""A store outage under load: the Firestore emulator is stopped while 32 senders deliver,
then started again on the same port.

The emulator keeps its data in memory, so a restart loses everything: "is every event
answered 200 in the store?" can only be asked while the instance that took the write is
up. So each 200 is checked against the store the moment it arrives, and the emulator is
stopped and restarted only between requests: the senders pass a gate that the outage
controller closes, waiting (a few ms) until every request in flight has been answered and
checked. Load continues on both sides of the stop and the restart.

What is verified, with a real receiver and a real Firestore client:
- before the outage: every event answered 200, checked in the store before the stop;
- while the store is down: every answer is 503 with Retry-After and a JSON error (never
  200, never 500, no dropped connection);
- after the restart: every event answered 200 is in the (new) store when checked;
- resending every event that got no 200 completes the set: afterwards the restarted store
  holds exactly the events acknowledged after the restart plus the resent ones;
- the receiver process survives and still accepts events.
The receiver's own gRPC channel reconnects with backoff after the restart, so resends
may meet a few more 503s first: they are retried (as DPS would) until each gets 200.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from gridhook.store import EventQuery, EventStore, iter_events, open_store
from tests.bench.load import Client, Reply, Request, bench_bodies, send_all
from tests.harness import TEST_TOKEN, FirestoreEmulator, function_server

pytestmark = [pytest.mark.firestore, pytest.mark.slow]

SENDERS = 32
# Events delivered while the store goes down and comes back (make bench runs more).
DURING = int(os.environ.get("GRIDHOOK_RELIABILITY_OUTAGE_REQUESTS", "600"))
BEFORE = DURING // 2  # events delivered and checked before the outage
STOP_AFTER = 150  # answers of the second batch before the emulator is stopped
# Answers during the outage before it is started again: more than one per sender. Each
# holds one of the server's threads (4 per CPU) for the store timeout (1 s), so this sets
# the outage's length (about 5 s on 2 CPUs), the larger part of the test's.
RESTART_AFTER = 40
RESEND_DEADLINE_S = 120  # a bound so that a broken receiver fails the test, not hangs it


class Gate:
    """Senders pass together; the controller passes alone, once they have all left."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._closed = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._inside += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._inside == 0)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


@dataclass
class Ledger:
    """What happened to each event, recorded by the senders under the gate."""

    phase: str = "up"  # "up" → "down" → "restarted"
    answered: int = 0
    store: EventStore | None = None  # a reader on the emulator instance that is up
    acked: dict[str, str] = field(default_factory=dict)  # event id → phase it got 200 in
    missing_after_200: list[str] = field(default_factory=list)
    refused: set[bytes] = field(default_factory=set)  # bodies not (yet) acknowledged
    non_200: list[Reply] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def assert_store_unavailable(reply: Reply) -> None:
    assert reply.status == 503, (reply.status, reply.error, reply.body[:300])
    assert int(reply.headers["Retry-After"]) > 0
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"]["code"] == "store_unavailable"


@pytest.fixture
def emulator() -> Iterator[FirestoreEmulator]:
    # Its own emulator: this test stops it, which must not disturb the session's.
    emulator = FirestoreEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


def test_outage_mid_load_never_acknowledges_an_unstored_event(
    emulator: FirestoreEmulator, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    store_url = f"firestore://outage-{uuid.uuid4().hex[:10]}/gridhook"
    env = {
        "GRIDHOOK_STORE": store_url,
        "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN,
        "GRIDHOOK_STORE_TIMEOUT_SECONDS": "1",
        "FIRESTORE_EMULATOR_HOST": emulator.host,
    }
    ledger = Ledger(store=open_store(store_url, timeout_seconds=10))
    with function_server("receive_power_event", env, cwd=tmp_path) as server:
        # 1. Store up: everything is acknowledged and, checked before the stop, stored.
        first = send_all("127.0.0.1", server.port, [Request(b) for b in bench_bodies("a", BEFORE)])
        assert [r.status for r in first] == [200] * BEFORE
        stored = {e.event_id for e in iter_events(ledger.store, EventQuery(limit=1000))}
        assert {r.json()["event_id"] for r in first} == stored

        # 2. The outage, with 32 senders delivering throughout.
        gate = Gate()
        outage_seen = threading.Event()
        restarted = threading.Event()
        sent = threading.Event()  # the second batch is over: the controller stops waiting

        def send(client: Client, request: Request) -> Reply:
            with gate.shared():
                reply = client.send(request)
                with ledger.lock:
                    ledger.answered += 1
                    phase = ledger.phase
                if reply.status == 200:
                    eid = reply.json()["event_id"]
                    # Checked now, while the instance that took the write is still up.
                    if phase == "down" or ledger.store.get_event(eid) is None:
                        ledger.missing_after_200.append(eid)
                    ledger.acked[eid] = phase
                else:
                    ledger.non_200.append(reply)  # checked below, outside the sender threads
                    ledger.refused.add(request.body)
                    if phase == "down":
                        outage_seen.set()
            return reply

        def controller() -> None:
            wait_for(lambda: ledger.answered >= STOP_AFTER, sent)
            with gate.exclusive():  # nothing in flight: every 200 so far has been checked
                ledger.store.close()
                emulator.stop()
                ledger.phase = "down"
                start = ledger.answered
            wait_for(lambda: ledger.answered >= start + RESTART_AFTER, sent)
            with gate.exclusive():
                emulator.start()  # the same port; an empty, in-memory instance
                ledger.store = open_store(store_url, timeout_seconds=10)
                ledger.phase = "restarted"
            restarted.set()

        control = threading.Thread(target=controller, daemon=True)
        control.start()
        second = bench_bodies("b", DURING)
        try:
            replies = send_all("127.0.0.1", server.port, [Request(b) for b in second], send=send)
        finally:
            sent.set()
            control.join(60)
        assert restarted.is_set() and outage_seen.is_set()
        assert len(replies) == DURING

        # 3. Resend what was not acknowledged until each gets its 200 (DPS's retries).
        pending = sorted(ledger.refused)
        resent = set(pending)
        deadline = time.monotonic() + RESEND_DEADLINE_S
        while pending and time.monotonic() < deadline:
            again = send_all("127.0.0.1", server.port, [Request(b) for b in pending], send=send)
            pending = [r for r, reply in zip(pending, again, strict=True) if reply.status != 200]
            if pending:
                time.sleep(0.5)
        assert pending == []

        # 4. The receiver lived through it and still takes events.
        assert server.returncode is None
        final = server.post(
            data=bench_bodies("c", 1)[0],
            headers={"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"},
        )
        assert final.status_code == 200 and final.json()["status"] == "accepted"

    # Every refusal was a 503 with Retry-After and a JSON error: no 500, no lost connection.
    for reply in ledger.non_200:
        assert_store_unavailable(reply)
    # Never a 200 for an event the store did not have when asked, never one while down.
    assert ledger.missing_after_200 == []
    assert "down" not in ledger.acked.values()
    assert any(p == "up" for p in ledger.acked.values())  # the outage hit mid-load

    # The restarted store holds exactly what was acknowledged after the restart plus the
    # resent events: the set is complete, and nothing is stored twice.
    ids_resent = {json.loads(b)["correlation_id"] for b in resent}
    after = list(iter_events(ledger.store, EventQuery(limit=1000)))
    ledger.store.close()
    acked_after = {eid for eid, phase in ledger.acked.items() if phase == "restarted"}
    assert len(after) == len({e.event_id for e in after})
    assert {e.event_id for e in after} == acked_after | {final.json()["event_id"]}
    assert ids_resent <= {e.correlation_id for e in after}


def wait_for(condition, sent: threading.Event, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if sent.is_set() or time.monotonic() > deadline:
            raise TimeoutError("the load ended or stalled before the outage step")
        time.sleep(0.005)
