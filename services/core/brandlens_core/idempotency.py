"""Idempotency records in DynamoDB, keyed by the event id.

The first worker to see an event puts an ``IN_PROGRESS`` record with a
conditional write; it marks the record ``COMPLETED`` when the handler
succeeds, and deletes it when the handler fails, so a retry can run. A record
left ``IN_PROGRESS`` by a worker that died expires when the message's
visibility does (the worker's heartbeat extends both together), so the
redelivered message can take it over. The record also names the SQS message that
holds it (``owner``): the owner's own message, received again, takes the claim over at
once, expired or not. (Its visibility and the record's expiry are extended by two
calls, so the message can come back a moment before the record expires; without the
owner check it would be taken for a copy and acknowledged, and the work lost.)
Completed records expire through TTL.
"""

from __future__ import annotations

import time
from enum import StrEnum

from brandlens_core.aws import Client, error_code
from brandlens_core.dynamo import from_item, to_item


class RecordStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class AlreadyCompletedError(Exception):
    """The event was handled before; acknowledge it without running again."""


class InProgressElsewhereError(Exception):
    """Another worker is handling the same event right now; try again later."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"in progress elsewhere; retry in {retry_after_seconds:.0f}s")
        self.retry_after_seconds = retry_after_seconds


class IdempotencyStore:
    def __init__(self, dynamodb: Client, table_name: str, scope: str, *, ttl_seconds: int) -> None:
        self._db = dynamodb
        self._table = table_name
        self._scope = scope
        self._ttl = ttl_seconds

    def _id(self, key: str) -> str:
        return f"{self._scope}#{key}"

    async def acquire(self, key: str, in_progress_seconds: float, owner: str = "") -> None:
        """Claim ``key`` for the message ``owner`` (its SQS message id) or raise
        AlreadyCompletedError / InProgressElsewhereError."""
        now = time.time()
        item = to_item(
            {
                "id": self._id(key),
                "status": RecordStatus.IN_PROGRESS.value,
                "in_progress_expiry_ms": int((now + in_progress_seconds) * 1000),
                "expiration": int(now + self._ttl),
                "owner": owner,
            }
        )
        try:
            await self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(id) OR expiration < :now "
                    "OR (#status = :in_progress AND "
                    "(in_progress_expiry_ms < :now_ms OR #owner = :owner))"
                ),
                ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now))},
                    ":now_ms": {"N": str(int(now * 1000))},
                    ":in_progress": {"S": RecordStatus.IN_PROGRESS.value},
                    # no owner given: match nothing (a message id is never "-")
                    ":owner": {"S": owner or "-"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            if old is None:
                got = await self._db.get_item(
                    TableName=self._table, Key={"id": {"S": self._id(key)}}, ConsistentRead=True
                )
                old = got.get("Item")
            if old is None:  # deleted between our write and our read: let the retry claim it
                raise InProgressElsewhereError(1.0) from None
            record = from_item(old)
            if record.get("status") == RecordStatus.COMPLETED.value:
                raise AlreadyCompletedError(key) from None
            remaining = record.get("in_progress_expiry_ms", 0) / 1000 - now
            raise InProgressElsewhereError(max(1.0, remaining)) from None

    async def extend(self, key: str, in_progress_seconds: float) -> None:
        """Push the in-progress expiry forward (called with the visibility heartbeat)."""
        await self._db.update_item(
            TableName=self._table,
            Key={"id": {"S": self._id(key)}},
            UpdateExpression="SET in_progress_expiry_ms = :expiry",
            ConditionExpression="#status = :in_progress",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":expiry": {"N": str(int((time.time() + in_progress_seconds) * 1000))},
                ":in_progress": {"S": RecordStatus.IN_PROGRESS.value},
            },
        )

    async def complete(self, key: str) -> None:
        await self._db.update_item(
            TableName=self._table,
            Key={"id": {"S": self._id(key)}},
            UpdateExpression="SET #status = :completed, expiration = :exp",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":completed": {"S": RecordStatus.COMPLETED.value},
                ":exp": {"N": str(int(time.time() + self._ttl))},
            },
        )

    async def release(self, key: str) -> None:
        await self._db.delete_item(TableName=self._table, Key={"id": {"S": self._id(key)}})
