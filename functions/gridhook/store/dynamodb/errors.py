"""The DynamoDB client, its retry policy, and what its failures mean.

Every request goes through :class:`Requests`, which answers a failure the caller did not
expect (a duplicate is expected; an outage is not) with StoreUnavailable saying what to
do: create the table, add its indexes, raise its capacity, fix the credentials.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from gridhook.store.base import StoreUnavailable

__all__ = ["CONDITION_FAILED", "MAX_ATTEMPTS", "Requests", "make_client"]

#: Attempts per request (the first included), sharing the store's timeout.
MAX_ATTEMPTS = 3
#: The error code of a failed condition: the answer "it exists already".
CONDITION_FAILED = "ConditionalCheckFailedException"
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}


def make_client(
    table: str, region: str | None, endpoint_url: str | None, timeout_seconds: float
) -> Any:
    """A DynamoDB client whose attempts together answer in about ``timeout_seconds``."""
    # The attempts share the timeout (plus the SDK's jittered backoff, <= 3 s), so an
    # unreachable endpoint answers StoreUnavailable in about timeout_seconds.
    # total_max_attempts counts the first attempt; botocore's "max_attempts" counts only
    # the retries after it (3 would be 4 attempts).
    per_attempt = timeout_seconds / MAX_ATTEMPTS
    config = Config(
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=32,  # one per server thread, with room to spare
    )
    # boto3 itself honours AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL and
    # AWS_DEFAULT_REGION; AWS_REGION is read here so the Lambda-style variable works too.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        # A session per store: boto3's default session is not thread-safe to set up.
        return boto3.session.Session().client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
        )
    except NoRegionError as exc:
        raise StoreUnavailable(
            f"DynamoDB table {table!r}: no AWS region: set AWS_REGION or use "
            "dynamodb://TABLE?region=REGION"
        ) from exc
    except (BotoCoreError, ValueError) as exc:
        raise StoreUnavailable(f"DynamoDB table {table!r}: cannot create a client: {exc}") from exc


class Requests:
    """Requests to one table: each failure but the expected one is StoreUnavailable."""

    def __init__(self, client: Any, table: str, indexes: tuple[str, ...]) -> None:
        self.client = client
        self.table = table
        self._indexes = indexes

    def where(self) -> str:
        meta = self.client.meta
        return f"DynamoDB table {self.table!r} (region {meta.region_name}, {meta.endpoint_url})"

    def __call__(
        self, what: str, operation: str, *, expected: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One request; a ClientError with the ``expected`` code is raised as it is (the
        caller's answer: a duplicate, a table that exists), anything else is translated."""
        try:
            reply: dict[str, Any] = getattr(self.client, operation)(TableName=self.table, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == expected:
                raise
            raise StoreUnavailable(self.explain(what, code, error.get("Message", ""))) from exc
        except BotoCoreError as exc:
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, NoCredentialsError…
            raise StoreUnavailable(
                f"{self.where()}: {what} failed: {type(exc).__name__}: {exc}; check the "
                "endpoint, region, credentials and network, then retry"
            ) from exc
        return reply

    def explain(self, what: str, code: str, message: str) -> str:
        """What a service error means for gridhook, and what to do about it."""
        where = self.where()
        lacks_index = "specified index" in message.lower() or "invalid index" in message.lower()
        if code in {"ValidationException", "ResourceNotFoundException"} and lacks_index:
            # "The table does not have the specified index: by_feed" (moto: "Invalid
            # index: …"); not every message that names an index: an invalid index key
            # value is not a missing index.
            return (
                f"{where}: {what} failed: {message}: the table lacks gridhook's indexes "
                f"({', '.join(self._indexes)}); add them with DynamoDBEventStore.create_table()"
            )
        if code == "ResourceNotFoundException":
            return (
                f"{where} does not exist: create it (DynamoDBEventStore.create_table(), "
                "see docs/stores.md) or fix the table name in GRIDHOOK_STORE"
            )
        if code in _THROTTLED:
            return (
                f"{where}: {what} was throttled after {MAX_ATTEMPTS} attempts: retry later, "
                "or use on-demand capacity / raise the table's and its indexes' capacity"
            )
        if code in {"AccessDeniedException", "UnrecognizedClientException"}:
            return (
                f"{where}: {what} was refused ({code}: {message}): check the AWS credentials "
                "and that their IAM policy allows gridhook's DynamoDB actions on the table"
            )
        return f"{where}: {what} failed: {code}: {message}"
