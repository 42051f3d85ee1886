"""The query engine: key ranges on the GSIs, filters, paging, conditional writes.

Expressions are built with ``boto3.dynamodb.conditions`` (Key for key conditions, Attr
for filters and write conditions) and its ConditionExpressionBuilder, which names every
attribute and value by placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder, Key
from botocore.exceptions import ClientError

from gridhook.store.base import AddOutcome, KeyBound
from gridhook.store.dynamodb.errors import CONDITION_FAILED, Requests
from gridhook.store.dynamodb.items import wire_values
from gridhook.store.dynamodb.table import INDEXES

__all__ = ["expressions", "insert", "list_range", "query_pages"]

# Filtered queries read at least this many items a request: DynamoDB's Limit counts
# items before the filter, so asking for exactly what is missing would crawl.
_FILTERED_BATCH = 100


def expressions(
    *,
    key: ConditionBase | None = None,
    condition: ConditionBase | None = None,
    where: ConditionBase | None = None,
) -> dict[str, Any]:
    """The request parameters of a key condition, a write condition and a filter
    (``where``)."""
    builder = ConditionExpressionBuilder()  # one builder: placeholders never collide
    params: dict[str, Any] = {}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for parameter, expression, is_key in (
        ("KeyConditionExpression", key, True),
        ("ConditionExpression", condition, False),
        ("FilterExpression", where, False),
    ):
        if expression is None:
            continue
        built = builder.build_expression(expression, is_key_condition=is_key)
        params[parameter] = built.condition_expression
        names |= built.attribute_name_placeholders
        values |= built.attribute_value_placeholders
    if names:
        params["ExpressionAttributeNames"] = names
    if values:
        params["ExpressionAttributeValues"] = wire_values(values)
    return params


def insert(
    requests: Requests, what: str, item: dict[str, Any], condition: ConditionBase
) -> AddOutcome:
    """A conditional PutItem: DUPLICATE when the condition fails. A retried PutItem whose
    first attempt did land answers the condition failure too: still stored once."""
    try:
        requests(
            what,
            "put_item",
            expected=CONDITION_FAILED,
            Item=item,
            **expressions(condition=condition),
        )
    except ClientError:
        return AddOutcome.DUPLICATE
    return AddOutcome.ACCEPTED


def _key_range(name: str, lower: KeyBound | None, upper: KeyBound | None) -> ConditionBase | None:
    """A key range; with both bounds, BETWEEN (inclusive: the caller skips exclusive ends)."""
    if lower is not None and upper is not None:
        return Key(name).between(lower[0], upper[0])
    if lower is not None:
        return Key(name).gte(lower[0]) if lower[1] else Key(name).gt(lower[0])
    if upper is not None:
        return Key(name).lte(upper[0]) if upper[1] else Key(name).lt(upper[0])
    return None


def list_range(
    requests: Requests,
    what: str,
    index: str,
    partition: str,
    *,
    lower: KeyBound | None,
    upper: KeyBound | None,
    descending: bool,
    want: int,
    where: ConditionBase | None = None,
) -> list[dict[str, Any]]:
    """Up to ``want`` items of one index partition in a range of its sort key, in order.

    ``where`` (a filter) holds conditions that are not the key (a feed within an episode, the
    expiry): DynamoDB applies them after reading, so filtered queries read in larger
    batches.
    """
    if lower is not None and upper is not None and lower[0] > upper[0]:
        return []  # an empty range (DynamoDB rejects BETWEEN with lo > hi)
    hash_key, range_key, _ = INDEXES[index]
    key: ConditionBase = Key(hash_key).eq(partition)
    ranged = _key_range(range_key, lower, upper)
    if ranged is not None:
        key &= ranged
    # Exclusive bounds: BETWEEN includes them, so they are dropped from what comes back.
    skip: set[str] = set()
    if lower is not None and upper is not None:
        skip = {value for value, inclusive in (lower, upper) if not inclusive}
    kwargs: dict[str, Any] = {
        "IndexName": index,
        "ScanIndexForward": not descending,
        **expressions(key=key, where=where),
    }
    found: list[dict[str, Any]] = []

    def page_size() -> int:
        if where is not None:
            return max(want - len(found), _FILTERED_BATCH)
        return want - len(found) + len(skip)  # a skipped bound comes back too

    for batch in query_pages(requests, what, kwargs, page_size):
        found.extend(i for i in batch if i[range_key]["S"] not in skip)
        if len(found) >= want:
            break
    return found[:want]


def query_pages(
    requests: Requests,
    what: str,
    kwargs: dict[str, Any],
    limit: Callable[[], int] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Query pages until the caller stops or DynamoDB has no more (1 MB, Limit)."""
    request = dict(kwargs)
    while True:
        if limit is not None:
            request["Limit"] = limit()
        reply = requests(what, "query", **request)
        yield reply.get("Items", [])
        last = reply.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last
