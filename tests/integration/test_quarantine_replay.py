"""Quarantine replay on every backend: rejected by a real receiver under a stricter schema
(a server process, which loads that schema in place of today's), replayed with
`gridhook quarantine replay` under today's, stored once as its event."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridhook.cli import main
from gridhook.events import event_id, normalise
from gridhook.schema import load_schema
from gridhook.store import EventQuery, EventStore, QuarantinedPayload
from tests.harness import (
    REPO,
    SEED_PAYLOAD,
    TEST_TOKEN,
    FunctionServer,
    function_app,
    function_server,
)

SCHEMA_OVERRIDE_MAIN = REPO / "tests" / "schema_override_main.py"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}

# What a new DPS release might send: the proto's spelling of the unit, which an older
# schema that knew only w/kw/mw refused and today's schema accepts.
NEW_RELEASE_PAYLOAD = {
    **copy.deepcopy(SEED_PAYLOAD),
    "correlation_id": "curtailment-new-release",
    "target_load": {"value": 6.5, "unit": "megawatt"},
}


def stricter_schema() -> dict:
    """Today's schema, but load units only w, kw or mw (lower case)."""
    schema = copy.deepcopy(load_schema())
    unit = schema["$defs"]["nullableLoad"]["properties"]["unit"]
    unit["pattern"] = "^(w|kw|mw)$"
    unit["x-message"] = "unknown unit; expected w, kw or mw"
    return schema


def receiver_env(store_url: str, **extra: str) -> dict[str, str]:
    return {"GRIDHOOK_STORE": store_url, "GRIDHOOK_WEBHOOK_TOKENS": TEST_TOKEN, **extra}


@pytest.fixture
def strict_receiver(store_url: str, store: EventStore, tmp_path: Path) -> Iterator[FunctionServer]:
    """The real receiver under functions-framework, judging by the stricter schema."""
    schema_file = tmp_path / "stricter.schema.json"
    schema_file.write_text(json.dumps(stricter_schema()))
    env = receiver_env(store_url, GRIDHOOK_TEST_SCHEMA_FILE=str(schema_file))
    with function_server("receive_power_event", env, source=SCHEMA_OVERRIDE_MAIN) as server:
        yield server


def gridhook(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def all_events(store: EventStore) -> list:
    return store.events(EventQuery(limit=1000)).events


def test_rejected_then_replayed_is_stored_once_with_its_receipt_time(
    strict_receiver: FunctionServer, store: EventStore, store_url: str, capsys
) -> None:
    body = json.dumps(NEW_RELEASE_PAYLOAD, indent=1).encode()  # as sent: spacing and all
    rejected = strict_receiver.post(data=body, headers=AUTH)
    assert rejected.status_code == 422, rejected.text
    assert [d["path"] for d in rejected.json()["error"]["details"]] == ["/target_load/unit"]
    strict_receiver.stop()

    [item] = store.quarantined().items
    assert item.body.encode() == body and not item.truncated and item.replayed_at is None
    assert all_events(store) == []

    # Today's schema accepts the megawatt spelling: the replay stores the event.
    code, out, err = gridhook(
        capsys, "quarantine", "replay", item.quarantine_id, "--store", store_url
    )
    assert code == 0, err
    expected_id = event_id(NEW_RELEASE_PAYLOAD)
    assert out.split()[:4] == [item.quarantine_id, "replayed", "event", expected_id]
    [event] = all_events(store)
    assert event.event_id == expected_id
    assert event.received_at == item.received_at
    assert event.payload == NEW_RELEASE_PAYLOAD and event.target_w == 6.5e6
    marked = store.get_quarantined(item.quarantine_id)
    assert marked is not None and marked.replayed_event_id == expected_id
    assert marked.replayed_at is not None

    # A second replay changes nothing.
    code, out, _ = gridhook(
        capsys, "quarantine", "replay", item.quarantine_id, "--store", store_url
    )
    assert code == 0 and out.split()[1] == "already_replayed"
    assert [e.event_id for e in all_events(store)] == [expected_id]
    assert store.get_quarantined(item.quarantine_id) == marked

    # The same body delivered again, to a receiver on today's schema, is a duplicate.
    with function_app("receive_power_event", receiver_env(store_url)) as today:
        again = today.post(data=body, headers=AUTH)
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "duplicate", "event_id": expected_id}
    assert len(all_events(store)) == 1


def test_still_failing_payloads_say_why_per_violation(
    strict_receiver: FunctionServer, store: EventStore, store_url: str, capsys
) -> None:
    bad = {**NEW_RELEASE_PAYLOAD, "compliant": "yes", "calculated_load": {"value": -1}}
    assert strict_receiver.post(json=bad, headers=AUTH).status_code == 422
    [item] = store.quarantined().items

    code, out, err = gridhook(capsys, "quarantine", "replay", "--all", "--store", store_url)
    assert code == 1 and out == ""
    assert err.splitlines()[0] == f"{item.quarantine_id}  still rejected:"
    reasons = [line.strip() for line in err.splitlines()[1:-1]]
    assert [r.split(":")[0] for r in reasons] == [
        "/calculated_load/unit",
        "/calculated_load/value",
        "/compliant",
    ]
    assert "'unit' is required" in reasons[0] and "not of type 'boolean'" in reasons[2]
    assert err.splitlines()[-1] == "1 of 1 could not be replayed"
    assert all_events(store) == []
    assert store.get_quarantined(item.quarantine_id).replayed_at is None  # type: ignore[union-attr]


# -- the CLI on the store alone (records written as the receiver writes them) ----------------


def quarantined(body: str, *, received_at: datetime, kept: str | None = None) -> QuarantinedPayload:
    raw = body.encode()
    digest = hashlib.sha256(raw).hexdigest()
    return QuarantinedPayload(
        quarantine_id=digest[:32],
        received_at=received_at,
        expires_at=received_at + timedelta(days=7),
        reason="schema_violation",
        errors=[{"path": "/target_load/unit", "message": "unknown unit"}],
        body=raw.decode() if kept is None else kept,
        body_bytes=len(raw),
        body_sha256=digest,
    )


def test_list_show_and_dry_run(store: EventStore, store_url: str, capsys) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    bodies = [json.dumps({**NEW_RELEASE_PAYLOAD, "correlation_id": f"c-{i}"}) for i in range(3)]
    items = [
        quarantined(b, received_at=now - timedelta(minutes=3 - i)) for i, b in enumerate(bodies)
    ]
    for item in items:
        store.quarantine(item)
    ids = [i.quarantine_id for i in items]

    code, out, _ = gridhook(capsys, "quarantine", "list", "--store", store_url)
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["RECEIVED_AT", "QUARANTINE_ID", "STATE", "BYTES", "PROBLEM"]
    assert [r.split()[1] for r in rows[1:]] == ids[::-1]  # newest first
    assert all(r.split()[2] == "pending" for r in rows[1:])

    code, out, _ = gridhook(capsys, "quarantine", "list", "--reverse", "--limit", "2",
                            "--format", "json", "--store", store_url)  # fmt: skip
    assert [r["quarantine_id"] for r in json.loads(out)] == ids[:2]  # the oldest two

    code, out, _ = gridhook(capsys, "quarantine", "show", ids[1][:8], "--store", store_url)
    assert code == 0
    assert f"quarantine_id  {ids[1]}" in out and "/target_load/unit: unknown unit" in out
    assert json.loads(out[out.index("{") :]) == json.loads(bodies[1])

    code, out, _ = gridhook(capsys, "quarantine", "replay", "--all", "--dry-run",
                            "--store", store_url)  # fmt: skip
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [[i, "would_replay"] for i in ids]
    assert all_events(store) == []
    assert all(store.get_quarantined(i).replayed_at is None for i in ids)  # type: ignore[union-attr]

    code, out, _ = gridhook(capsys, "quarantine", "replay", "--all", "--format", "json",
                            "--store", store_url)  # fmt: skip
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert [(r["quarantine_id"], r["status"]) for r in results] == [(i, "replayed") for i in ids]
    assert sorted(e.event_id for e in all_events(store)) == sorted(r["event_id"] for r in results)

    code, out, err = gridhook(capsys, "quarantine", "replay", "--all", "--store", store_url)
    assert code == 0 and out == "" and "nothing to replay" in err

    code, out, _ = gridhook(capsys, "quarantine", "list", "--store", store_url)
    assert all(r.split()[2] == "replayed" for r in out.splitlines()[1:])


def test_truncated_unknown_and_ambiguous_ids_are_refused(
    store: EventStore, store_url: str, capsys
) -> None:
    now = datetime.now(UTC)
    body = json.dumps(NEW_RELEASE_PAYLOAD)
    truncated = quarantined(body, received_at=now, kept=body[:40])
    store.quarantine(truncated)

    code, out, err = gridhook(capsys, "quarantine", "replay", truncated.quarantine_id,
                              "--store", store_url)  # fmt: skip
    assert code == 1 and out == ""
    assert f"only the first 40 of {len(body)} bytes were kept" in err
    assert "not replayable" in err

    code, out, _ = gridhook(capsys, "quarantine", "list", "--store", store_url)
    assert out.splitlines()[1].split()[2] == "truncated"

    code, _, err = gridhook(capsys, "quarantine", "replay", "0" * 32, "--store", store_url)
    assert code == 1 and "no quarantined payload '0000" in err

    code, _, err = gridhook(capsys, "quarantine", "show", "0" * 32, "--store", store_url)
    assert code == 2 and "unknown, or expired" in err

    for suffix in ("1", "2"):  # two ids that share a prefix
        twin = quarantined(body + " " * int(suffix), received_at=now)
        store.quarantine(replace(twin, quarantine_id="abcdef" + suffix * 26))
    code, _, err = gridhook(capsys, "quarantine", "show", "abcdef", "--store", store_url)
    assert code == 2 and "'abcdef' matches 2 quarantined payloads" in err

    code, _, err = gridhook(capsys, "quarantine", "replay", "--store", store_url)
    assert code == 2 and "give the ids to replay, or --all" in err
    assert all_events(store) == []


def test_an_event_stored_meanwhile_is_not_stored_again(
    store: EventStore, store_url, capsys
) -> None:
    """Redelivered after the schema was relaxed, before the replay: the replay only marks."""
    rejected_at = datetime.now(UTC) - timedelta(hours=1)
    body = json.dumps(NEW_RELEASE_PAYLOAD)
    item = quarantined(body, received_at=rejected_at)
    store.quarantine(item)
    delivered = normalise(json.loads(body), datetime.now(UTC))
    store.add_event(delivered)

    code, out, _ = gridhook(capsys, "quarantine", "replay", item.quarantine_id,
                            "--store", store_url)  # fmt: skip
    assert code == 0 and out.split()[:4] == [
        item.quarantine_id, "already_stored", "event", delivered.event_id,
    ]  # fmt: skip
    [event] = all_events(store)
    assert event.received_at == delivered.received_at  # the delivery's, untouched
    assert store.get_quarantined(item.quarantine_id).replayed_event_id == delivered.event_id  # type: ignore[union-attr]
