"""Table administration: the indexes gridhook needs, creating the table, adding what an
older table lacks, and TTL. Not on any request path: for local use, tests and upgrades."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gridhook.store.base import StoreUnavailable
from gridhook.store.dynamodb.errors import Requests

__all__ = ["INDEXES", "TTL_ATTRIBUTE", "create_table", "delete_table"]

#: Global secondary indexes: name -> (partition key attribute, sort key attribute, projection).
INDEXES: dict[str, tuple[str, str, str]] = {
    "by_kind": ("kind", "sort_key", "ALL"),
    "by_feed": ("feed_tag", "sort_key", "ALL"),
    "by_correlation": ("correlation_id", "sort_key", "ALL"),
    "feed_tags": ("kind", "feed_tag", "KEYS_ONLY"),
    "samples_by_feed": ("sample_feed", "sort_key", "ALL"),
    "by_stored": ("kind", "stored_key", "ALL"),
}
#: The expiry of quarantine records and samples in epoch seconds: DynamoDB TTL deletes by it.
TTL_ATTRIBUTE = "expires_at_epoch"


def create_table(requests: Requests, *, wait_seconds: float = 60.0) -> None:
    """Create the table with its indexes (on-demand billing) and enable TTL; add to a
    table that exists already the indexes it lacks, one at a time."""
    try:
        requests(
            "create table",
            "create_table",
            expected="ResourceInUseException",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=_attribute_definitions(),
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[_index_spec(name) for name in INDEXES],
        )
    except ClientError:
        _add_missing_indexes(requests, wait_seconds)  # the table exists already
    else:
        try:
            requests.client.get_waiter("table_exists").wait(
                TableName=requests.table,
                WaiterConfig={"Delay": 1, "MaxAttempts": max(1, int(wait_seconds))},
            )
        except BotoCoreError as exc:  # WaiterError
            raise StoreUnavailable(f"{requests.where()} did not become active: {exc}") from exc
    _enable_ttl(requests)


def delete_table(requests: Requests) -> None:
    requests("delete table", "delete_table")


def _index_states(requests: Requests) -> dict[str, str]:
    table = requests("describe table", "describe_table")["Table"]
    return {
        index["IndexName"]: index.get("IndexStatus", "ACTIVE")
        for index in table.get("GlobalSecondaryIndexes", [])
    }


def _add_missing_indexes(requests: Requests, wait_seconds: float) -> None:
    # DynamoDB builds one new index per UpdateTable at a time: add each, wait for it.
    for name in INDEXES:
        if name in _index_states(requests):
            continue
        requests(
            f"add index {name}",
            "update_table",
            AttributeDefinitions=_attribute_definitions(),
            GlobalSecondaryIndexUpdates=[{"Create": _index_spec(name)}],
        )
        deadline = time.monotonic() + wait_seconds
        while _index_states(requests).get(name) != "ACTIVE":
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"{requests.where()}: index {name} is still being built after "
                    f"{wait_seconds:g} s; run create_table() again once it is ACTIVE"
                )
            time.sleep(1.0)


def _enable_ttl(requests: Requests) -> None:
    ttl = requests("describe TTL", "describe_time_to_live").get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        if ttl.get("AttributeName") != TTL_ATTRIBUTE:
            raise StoreUnavailable(
                f"{requests.where()} expires items by {ttl.get('AttributeName')!r}, but "
                f"gridhook writes {TTL_ATTRIBUTE!r}: change the table's TTL attribute"
            )
        return
    requests(
        "enable TTL",
        "update_time_to_live",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def _attribute_definitions() -> list[dict[str, str]]:
    keys = sorted({"pk", "sk", *(a for h, r, _ in INDEXES.values() for a in (h, r))})
    return [{"AttributeName": a, "AttributeType": "S"} for a in keys]


def _index_spec(name: str) -> dict[str, Any]:
    hash_key, range_key, projection = INDEXES[name]
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": projection},
    }
