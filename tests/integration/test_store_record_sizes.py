"""Quarantine records stay within what Firestore and DynamoDB can hold.

The contract suite checks that an oversized body is kept as a flagged prefix; here the
stored record itself is read back raw and measured by each service's documented size
rules, independently of how the store decided where to cut. (moto also refuses items
over about 405,000 bytes; the Firestore emulator has no size limit, so the rules are
the only check there.)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridhook.store import AddOutcome, QuarantinedPayload, open_store

#: 10 MiB, the largest body the receiver accepts (GRIDHOOK_MAX_BODY_BYTES).
LARGEST_BODY = '{"pad":"' + "€" * (10 * 1024 * 1024 // 3)
#: Violations the validator could never produce (its messages are at most 300
#: characters), each with a 100 KB path: the errors alone would overflow a record.
HUGE_ERRORS = [{"path": "/" + "k" * 100_000 + str(i), "message": "bad"} for i in range(50)]


def _item(body: str, errors: list[dict[str, str]]) -> QuarantinedPayload:
    raw = body.encode("utf-8")
    now = datetime.now(UTC)
    return QuarantinedPayload(
        quarantine_id=hashlib.sha256(raw).hexdigest()[:32],
        received_at=now,
        expires_at=now + timedelta(days=7),
        reason="schema_violation",
        errors=errors,
        body=body,
        body_bytes=len(raw),
        body_sha256=hashlib.sha256(raw).hexdigest(),
    )


CASES = [
    pytest.param(LARGEST_BODY, [{"path": "/event", "message": "'event' is required"}], id="body"),
    pytest.param('{"event": 1}', HUGE_ERRORS, id="errors"),
    pytest.param(LARGEST_BODY, HUGE_ERRORS, id="both"),
]


def _string_size(text: str) -> int:
    return len(text.encode("utf-8")) + 1


def firestore_value_size(value: Any) -> int:
    """https://firebase.google.com/docs/firestore/storage-size (field values)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | datetime):
        return 8
    if isinstance(value, str):
        return _string_size(value)
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, list):
        return sum(firestore_value_size(v) for v in value)
    if isinstance(value, dict):
        return sum(_string_size(k) + firestore_value_size(v) for k, v in value.items())
    raise TypeError(f"no size rule for {type(value).__name__}")


def firestore_document_size(path: str, data: dict[str, Any]) -> int:
    """Document name + fields + 32 bytes, by the documented rules."""
    name = sum(_string_size(segment) for segment in path.split("/")) + 16
    return name + firestore_value_size(data) + 32


def dynamodb_item_size(item: dict[str, dict[str, Any]]) -> int:
    """Attribute names and values (strings and number strings, as stored: an upper bound)."""
    size = 0
    for name, value in item.items():
        ((kind, raw),) = value.items()
        size += len(name.encode("utf-8"))
        size += 1 if kind in {"BOOL", "NULL"} else len(str(raw).encode("utf-8"))
    return size


def _check_kept(got: QuarantinedPayload, item: QuarantinedPayload) -> None:
    """A prefix of the body (flagged when cut) and of the errors; real errors whole."""
    assert got.truncated is (got.body != item.body)
    assert item.body.startswith(got.body) and got.body_bytes == item.body_bytes
    assert got.errors == item.errors[: len(got.errors)]
    if item.errors is not HUGE_ERRORS:
        assert got.errors == item.errors


@pytest.mark.firestore
@pytest.mark.parametrize(("body", "errors"), CASES)
def test_firestore_quarantine_documents_stay_within_1_mib(
    firestore_env: dict[str, str], body: str, errors: list[dict[str, str]]
) -> None:
    from google.cloud import firestore

    from gridhook.store.firestore import COLLECTIONS

    store = open_store(firestore_env["GRIDHOOK_STORE"])
    item = _item(body, errors)
    assert store.quarantine(item) is AddOutcome.ACCEPTED
    got = store.get_quarantined(item.quarantine_id)
    store.close()
    _check_kept(got, item)
    project, database = firestore_env["GRIDHOOK_STORE"].removeprefix("firestore://").split("/")
    client = firestore.Client(project=project, database=database)
    path = f"{COLLECTIONS['quarantine']}/{item.quarantine_id}"
    raw = client.document(path).get().to_dict()
    client.close()
    assert raw["body"] == got.body
    assert firestore_document_size(path, raw) <= 1_048_576


@pytest.mark.dynamodb
@pytest.mark.parametrize(("body", "errors"), CASES)
def test_dynamodb_quarantine_items_stay_within_400_kb(
    dynamodb_env: dict[str, str], body: str, errors: list[dict[str, str]]
) -> None:
    store = open_store(dynamodb_env["GRIDHOOK_STORE"])
    item = _item(body, errors)
    assert store.quarantine(item) is AddOutcome.ACCEPTED
    got = store.get_quarantined(item.quarantine_id)
    _check_kept(got, item)
    raw = store.client.get_item(
        TableName=store.table,
        Key={"pk": {"S": f"QUARANTINE#{item.quarantine_id}"}, "sk": {"S": "QUARANTINE"}},
    )["Item"]
    store.close()
    assert raw["body"]["S"] == got.body
    assert dynamodb_item_size(raw) <= 400 * 1024
