"""Units end to end, on every backend: the real receiver (functions-framework's app, in
process) accepts gigawatts; a unit a user's schema admits but the units table lacks is a
422 with a quarantine record, never a 503; `gridhook quarantine replay --all` reports such
a record and goes on with the batch, and replays it once the table has the unit."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from gridhook import receiver, schema, units
from gridhook.cli import main
from gridhook.settings import get_settings
from gridhook.store import EventQuery, EventStore, QuarantinedPayload
from tests.harness import FUNCTIONS, SEED_PAYLOAD, TEST_TOKEN

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
PATTERN_END = ")$"


def payload(corr: str, unit: str, value: float = 1.2, **changes: Any) -> dict[str, Any]:
    return {
        **copy.deepcopy(SEED_PAYLOAD),
        "correlation_id": corr,
        "target_load": {"value": value, "unit": unit},
        **changes,
    }


def schema_admitting(extra_unit: str, watts: float | None = None) -> dict[str, Any]:
    """Today's schema with one more unit in its pattern: a user's edit. With ``watts``, the
    user added it to the units table too; without, only to the pattern."""
    doc = copy.deepcopy(schema.load_schema())
    unit = doc["$defs"]["nullableLoad"]["properties"]["unit"]
    any_case = "".join(f"[{c}{c.upper()}]" for c in extra_unit)
    assert unit["pattern"].endswith(PATTERN_END)
    unit["pattern"] = unit["pattern"][: -len(PATTERN_END)] + f"|{any_case}{PATTERN_END}"
    if watts is not None:
        unit[units.TABLE_KEYWORD][extra_unit] = watts
    return doc


def _forget_the_schema() -> None:
    # It is read and compiled once per process; these caches hold it.
    for cached in (schema.load_schema, schema.fast_validator, schema.validator):
        cached.cache_clear()
    units.watts_per_unit.cache_clear()


@pytest.fixture
def judged_by(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Make this process judge payloads by another schema document, as a deployment with an
    edited schema file would (tests/schema_override_main.py does this for a server)."""
    with pytest.MonkeyPatch.context() as mp:

        def use(doc: dict[str, Any]) -> None:
            path = tmp_path / f"schema-{len(list(tmp_path.glob('schema-*')))}.json"
            path.write_text(json.dumps(doc))
            mp.setattr(schema, "SCHEMA_PATH", path)
            _forget_the_schema()

        yield use
    _forget_the_schema()


@pytest.fixture
def client(store_url: str) -> Iterator[FlaskClient]:
    """The real receiver: functions-framework's app for main.py, on this store."""
    from functions_framework import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDHOOK_STORE", store_url)
        mp.setenv("GRIDHOOK_WEBHOOK_TOKENS", TEST_TOKEN)
        mp.delenv("GRIDHOOK_WEBHOOK_TOKENS_FILE", raising=False)
        mp.delenv("FUNCTION_TARGET", raising=False)
        get_settings.cache_clear()  # settings and the receiver are process-wide singletons
        mp.setattr(receiver, "_receiver", None)
        yield create_app("receive_power_event", str(FUNCTIONS / "main.py")).test_client()
        if receiver._receiver is not None:
            receiver._receiver.store().close()
    get_settings.cache_clear()


def test_a_schema_without_the_units_table_fails_start_up(
    tmp_path: Path, judged_by: Callable[[dict[str, Any]], None]
) -> None:
    from functions_framework import create_app

    doc = copy.deepcopy(schema.load_schema())
    del doc["$defs"]["nullableLoad"]["properties"]["unit"][units.TABLE_KEYWORD]
    judged_by(doc)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDHOOK_STORE", f"sqlite:///{tmp_path}/events.db")
        mp.setenv("GRIDHOOK_WEBHOOK_TOKENS", TEST_TOKEN)
        mp.delenv("FUNCTION_TARGET", raising=False)
        get_settings.cache_clear()
        with pytest.raises(ValueError, match=rf"schema-0\.json: .* no {units.TABLE_KEYWORD}"):
            create_app("receive_power_event", str(FUNCTIONS / "main.py"))
    get_settings.cache_clear()


def events(store: EventStore) -> list:
    return store.events(EventQuery(limit=100)).events


def test_gigawatts_are_accepted_and_stored_in_watts(client: FlaskClient, store: EventStore) -> None:
    sent = payload(
        "big-site", "GW", calculated_load={"value": 1500, "unit": "mw"}, prev_target_load=None
    )
    reply = client.post("/nvgrid/webhook", data=json.dumps(sent), headers=AUTH)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["status"] == "accepted"
    [event] = events(store)
    assert event.target_w == 1.2e9 and event.calculated_w == 1.5e9
    assert event.payload["target_load"] == {"value": 1.2, "unit": "GW"}  # kept as received


def test_a_unit_the_table_lacks_is_422_and_quarantined_never_503(
    client: FlaskClient, store: EventStore, judged_by: Callable[[dict[str, Any]], None]
) -> None:
    judged_by(schema_admitting("tw"))  # the pattern admits tw; the table has no size for it
    raw = json.dumps(payload("tera", "tw")).encode()

    for _ in range(2):  # a redelivery is answered the same way: never a 503 loop
        reply = client.post("/nvgrid/webhook", data=raw, headers=AUTH)
        assert reply.status_code == 422, reply.get_data(as_text=True)
        assert reply.headers["Cache-Control"] == "no-store"
        error = reply.get_json()["error"]
        assert error["code"] == "cannot_normalise"
        [detail] = error["details"]
        assert detail["path"] == "/target_load/unit"
        assert "'tw'" in detail["message"] and units.TABLE_KEYWORD in detail["message"]
        assert error["quarantine_id"] == hashlib.sha256(raw).hexdigest()[:32]

    [kept] = store.quarantined().items
    assert kept.quarantine_id == error["quarantine_id"]
    assert kept.reason == "cannot_normalise" and kept.body.encode() == raw
    assert kept.errors == [detail]
    assert events(store) == []


def quarantined(body: dict[str, Any], received_at: datetime) -> QuarantinedPayload:
    """A record as the receiver writes it (the reason does not matter to a replay)."""
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(raw).hexdigest()
    return QuarantinedPayload(
        quarantine_id=digest[:32],
        received_at=received_at,
        expires_at=received_at + timedelta(days=7),
        reason="schema_violation",
        errors=[{"path": "/target_load/unit", "message": "unknown unit"}],
        body=raw.decode(),
        body_bytes=len(raw),
        body_sha256=digest,
    )


def test_replay_all_reports_what_cannot_be_normalised_and_goes_on(
    store: EventStore,
    store_url: str,
    judged_by: Callable[[dict[str, Any]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    judged_by(schema_admitting("tw"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    tera, still_bad, giga = (
        quarantined(payload("tera", "tw"), start),  # oldest first: replayed first
        quarantined(payload("bad", "mw", compliant="yes"), start + timedelta(minutes=1)),
        quarantined(payload("giga", "gigawatt"), start + timedelta(minutes=2)),  # from before gw
    )
    for item in (tera, still_bad, giga):
        store.quarantine(item)

    code = main(["quarantine", "replay", "--all", "--store", store_url])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.split()[:4] == [giga.quarantine_id, "replayed", "event", events(store)[0].event_id]
    lines = err.splitlines()
    assert lines[0] == f"{tera.quarantine_id}  still rejected:"
    assert lines[1].startswith("  /target_load/unit: 'tw' has no size")
    assert lines[2] == f"{still_bad.quarantine_id}  still rejected:"
    assert lines[3].startswith("  /compliant:")
    assert lines[-1] == "2 of 3 could not be replayed"
    [event] = events(store)
    assert event.correlation_id == "giga" and event.target_w == 1.2e9
    assert event.received_at == giga.received_at

    # The user adds tw to the table too: the next replay stores it, and only it.
    judged_by(schema_admitting("tw", watts=1e12))
    code = main(["quarantine", "replay", "--all", "--store", store_url, "--format", "json"])
    out, _ = capsys.readouterr()
    results = {r["quarantine_id"]: r for r in map(json.loads, out.splitlines())}
    assert results[tera.quarantine_id]["status"] == "replayed"
    assert results[still_bad.quarantine_id]["status"] == "still_rejected"
    assert code == 1 and giga.quarantine_id not in results  # replayed before: not again
    assert sorted((e.correlation_id, e.target_w) for e in events(store)) == [
        ("giga", 1.2e9),
        ("tera", 1.2e12),
    ]
