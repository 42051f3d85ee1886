"""`gridhook events` on every backend: newest first, --reverse, and --follow through a real
receiver (events posted while following are printed once each, in order; Ctrl-C exits 0)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.cli import main
from gridhook.cli.events import EventFollower
from gridhook.events import StoredEvent, normalise
from gridhook.quarantine import replay
from gridhook.store import EventStore, QuarantinedPayload
from tests.harness import (
    SEED_PAYLOAD,
    TEST_TOKEN,
    FunctionApp,
    function_app,
)

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
GRIDHOOK = str(Path(sys.executable).with_name("gridhook"))
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(n: int, at: datetime) -> StoredEvent:
    return normalise({**copy.deepcopy(SEED_PAYLOAD), "correlation_id": f"c-{n}"}, at)


def ids(events: list[StoredEvent]) -> list[str]:
    return [e.event_id for e in events]


def test_newest_first_by_default_latest_20_and_reverse(
    store: EventStore, store_url: str, capsys
) -> None:
    stored = [event(n, T0 + timedelta(seconds=n)) for n in range(25)]
    for e in stored:
        store.add_event(e)

    def listed(*argv: str) -> list[str]:
        assert main(["events", "--store", store_url, "--format", "json", *argv]) == 0
        return [e["event_id"] for e in json.loads(capsys.readouterr().out)]

    assert listed() == ids(stored[::-1][:20])  # the latest 20, newest first
    assert listed("--limit", "3") == ids(stored[::-1][:3])
    assert listed("--reverse", "--limit", "3") == ids(stored[:3])  # the oldest, oldest first
    assert listed("--reverse", "--since", (T0 + timedelta(seconds=22)).isoformat()) == ids(
        stored[22:]
    )
    assert listed("--limit", "600") == ids(stored[::-1])  # a limit above the count: every one


def test_follow_refuses_what_cannot_end_or_order(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/e.db"
    assert main(["events", "--store", url, "--follow", "--until", "1h"]) == 2
    assert "--until: cannot be combined with --follow" in capsys.readouterr().err
    assert main(["events", "--store", url, "--limit", "0"]) == 2
    assert "--limit: must be at least 1" in capsys.readouterr().err


def test_follower_prints_late_commits_once_and_forgets_old_ids(store: EventStore) -> None:
    backlog = [event(n, T0 + timedelta(seconds=n)) for n in range(30)]
    for e in backlog:
        store.add_event(e)
    follower = EventFollower(store, look_back=timedelta(minutes=2))
    # The latest 5, oldest first; the 25 older ones are not printed, now or later.
    assert ids(follower.start(5)) == ids(backlog[25:])
    assert follower.poll() == []

    later = event(100, T0 + timedelta(minutes=1))
    store.add_event(later)
    assert ids(follower.poll()) == [later.event_id]
    # Its write was stamped before `later`'s but committed after `later` was printed:
    # printed now, once.
    stored_later = store.get_event(later.event_id)
    assert stored_later is not None and stored_later.stored_at is not None
    late = replace(event(101, T0), stored_at=stored_later.stored_at - timedelta(seconds=30))
    store.add_event(late)
    assert ids(follower.poll()) == [late.event_id]
    assert follower.poll() == []

    # Written far ahead: ids that fell out of the look-back window are forgotten.
    remembered = follower.remembered
    ahead = replace(event(102, T0), stored_at=stored_later.stored_at + timedelta(hours=1))
    store.add_event(ahead)
    assert ids(follower.poll()) == [ahead.event_id]
    assert follower.remembered == 1 < remembered


def test_follower_prints_a_replayed_event_once_whatever_its_receipt_time(
    store: EventStore,
) -> None:
    """A payload quarantined a day ago and replayed while a follower runs is stored with
    its original receipt time, older than everything shown: printed once all the same."""
    shown = [event(n, T0 + timedelta(seconds=n)) for n in range(3)]
    for e in shown:
        store.add_event(e)
    follower = EventFollower(store)
    assert ids(follower.start(5)) == ids(shown)
    item = quarantined(event(7, T0 - timedelta(days=1)).payload, T0 - timedelta(days=1))
    store.quarantine(item)
    assert follower.poll() == []  # quarantined is not stored

    result = replay(store, item.quarantine_id)
    printed = follower.poll()
    assert ids(printed) == [result.event_id]
    assert printed[0].received_at == T0 - timedelta(days=1)  # its receipt time is kept
    assert follower.poll() == []
    # A redelivery of the replayed event is not a new write: nothing more to print.
    store.add_event(normalise(printed[0].payload, T0 + timedelta(minutes=5)))
    assert follower.poll() == []


def quarantined(payload: dict, received_at: datetime) -> QuarantinedPayload:
    """A payload kept as the receiver keeps one it rejects (say, under an older schema)."""
    body = json.dumps(payload)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return QuarantinedPayload(
        quarantine_id=digest[:32],
        received_at=received_at,
        expires_at=datetime.now(UTC) + timedelta(days=7),
        reason="schema_violation",
        errors=[{"path": "/unit", "message": "'gw' is not one of the units"}],
        body=body,
        body_bytes=len(body.encode("utf-8")),
        body_sha256=digest,
    )


def test_follower_with_no_backlog_prints_only_new_events(store: EventStore) -> None:
    old = event(1, T0)
    store.add_event(old)
    follower = EventFollower(store)
    assert follower.start(0) == []
    new = event(2, T0 + timedelta(seconds=1))
    store.add_event(new)
    assert ids(follower.poll()) == [new.event_id]


# -- --follow through the real receiver -------------------------------------------------------


class Lines:
    """Lines of a pipe, read by a thread, so the test can wait for them with a timeout."""

    def __init__(self, pipe) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float = 60.0) -> list[str]:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while not predicate(self.lines):
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                raise TimeoutError(f"waited {timeout}s; got {self.lines}")
            try:
                self.lines.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                continue
        return self.lines


@pytest.fixture
def receiver(store_url: str, store: EventStore) -> Iterator[FunctionApp]:
    """The real receiver, in-process: the process under test here is the follower."""
    env = {"GRIDHOOK_STORE": store_url, "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN}
    with function_app("receive_power_event", env) as app:
        yield app


def post(server: FunctionApp, n: int) -> str:
    payload = {**copy.deepcopy(SEED_PAYLOAD), "correlation_id": f"follow-{n}"}
    response = server.post(json=payload, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["event_id"]


def test_follow_prints_each_posted_event_once_in_order_then_ctrl_c_exits_0(
    receiver: FunctionApp, store_url: str
) -> None:
    before = [post(receiver, n) for n in range(3)]
    follow = subprocess.Popen(
        [GRIDHOOK, "events", "--follow", "--limit", "2",
         "--format", "json", "--interval", "0.2", "--store", store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        out, err = Lines(follow.stdout), Lines(follow.stderr)
        err.wait_for(lambda lines: any("following new events" in line for line in lines))
        posted = [post(receiver, n) for n in range(3, 8)]
        # A last event after them: had a poll printed anything twice, it would show before it.
        sentinel = post(receiver, 99)
        printed = out.wait_for(lambda lines: any(sentinel in line for line in lines))
        follow.send_signal(signal.SIGINT)
        assert follow.wait(30) == 0, err.lines
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert [json.loads(line)["event_id"] for line in printed] == before[1:] + posted + [sentinel]


def test_follow_prints_what_a_replay_stores_once(store: EventStore, store_url: str) -> None:
    """`gridhook events -f` running while `gridhook quarantine replay` stores an event
    received a day ago: the tail prints it once."""
    before = event(1, datetime.now(UTC))
    store.add_event(before)
    item = quarantined(event(2, T0).payload, datetime.now(UTC) - timedelta(days=1))
    store.quarantine(item)
    follow = subprocess.Popen(
        [GRIDHOOK, "events", "--follow", "--limit", "5",
         "--format", "json", "--interval", "0.2", "--store", store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        out, err = Lines(follow.stdout), Lines(follow.stderr)
        err.wait_for(lambda lines: any("following new events" in line for line in lines))
        assert main(["quarantine", "replay", item.quarantine_id, "--store", store_url]) == 0
        replayed = store.get_quarantined(item.quarantine_id).replayed_event_id
        # A last event after it: had a poll printed the replay twice, it would show before.
        sentinel = event(3, datetime.now(UTC))
        store.add_event(sentinel)
        printed = out.wait_for(lambda lines: any(sentinel.event_id in line for line in lines))
        follow.send_signal(signal.SIGINT)
        assert follow.wait(30) == 0, err.lines
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert [json.loads(line)["event_id"] for line in printed] == [
        before.event_id,
        replayed,
        sentinel.event_id,
    ]
