"""Model runtime state and leases, in one DynamoDB table (``<stack>-runtime``).

One partition per model version (its ARN); items:

- ``state``: what the model-manager knows of the model (STOPPED, STARTING, RUNNING,
  STOPPING, FAILED), when it started, running and busy seconds, ``last_lease_at``;
- ``lease#<holder>``: a job's claim on the model, with ``expires_at`` (epoch seconds).

Taking or releasing a lease is one transaction that also stamps ``last_lease_at`` on
the state row. The reaper stops a model only with a conditional write on the
``last_lease_at`` it read, so a lease taken after it looked makes the stop fail:
a live lease is never cut. An expired lease (a crashed holder) counts for nothing.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from brandlens_core.aws import Client, error_code
from brandlens_core.dynamo import from_item, to_attr

STATE = "state"
LEASE_PREFIX = "lease#"


class ModelRuntimeStatus(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    FAILED = "FAILED"


class ModelState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    project: str | None = None
    status: ModelRuntimeStatus = ModelRuntimeStatus.STOPPED
    status_since: float = 0.0
    inference_units: int = 1
    started_at: float | None = None
    idle_since: float | None = None
    busy_since: float | None = None
    running_seconds: float = 0.0
    busy_seconds: float = 0.0
    last_lease_at: float = 0.0
    start_calls: int = 0
    poll_seq: int = 0
    reason: str | None = None


class Lease(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    holder: str
    expires_at: float = Field(description="epoch seconds")

    def live(self, now: float) -> bool:
        return self.expires_at > now


class StaleStateError(RuntimeError):
    """A conditional write on the state row lost: someone changed it first."""


class RuntimeStore:
    def __init__(self, dynamodb: Client, table_name: str) -> None:
        self._db = dynamodb
        self.table = table_name

    def _key(self, model: str, item: str) -> dict[str, Any]:
        return {"model": {"S": model}, "item": {"S": item}}

    async def state(self, model: str) -> ModelState:
        got = await self._db.get_item(
            TableName=self.table, Key=self._key(model, STATE), ConsistentRead=True
        )
        if "Item" not in got:
            return ModelState(model=model)
        return ModelState.model_validate(from_item(got["Item"]))

    async def states(self) -> list[ModelState]:
        found: list[ModelState] = []
        paginator = self._db.get_paginator("scan")
        async for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="#item = :state",
            ExpressionAttributeNames={"#item": "item"},
            ExpressionAttributeValues={":state": {"S": STATE}},
            ConsistentRead=True,
        ):
            found.extend(ModelState.model_validate(from_item(i)) for i in page.get("Items", []))
        return found

    async def leases(self, model: str) -> list[Lease]:
        found: list[Lease] = []
        paginator = self._db.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#model = :m AND begins_with(#item, :lease)",
            ExpressionAttributeNames={"#model": "model", "#item": "item"},
            ExpressionAttributeValues={":m": {"S": model}, ":lease": {"S": LEASE_PREFIX}},
            ConsistentRead=True,
        ):
            found.extend(Lease.model_validate(from_item(i)) for i in page.get("Items", []))
        return found

    async def live_leases(self, model: str, now: float | None = None) -> list[Lease]:
        moment = time.time() if now is None else now
        return [lease for lease in await self.leases(model) if lease.live(moment)]

    def _stamp(self, model: str, project: str | None, now: float) -> dict[str, Any]:
        names = {
            "#last": "last_lease_at",
            "#status": "status",
            "#since": "status_since",
            "#seq": "poll_seq",
        }
        values: dict[str, Any] = {
            ":now": {"N": repr(now)},
            ":stopped": {"S": ModelRuntimeStatus.STOPPED.value},
            ":zero": {"N": "0"},
        }
        sets = [
            "#last = :now",
            "#status = if_not_exists(#status, :stopped)",
            "#since = if_not_exists(#since, :now)",
            "#seq = if_not_exists(#seq, :zero)",
        ]
        if project is not None:
            names["#project"] = "project"
            values[":project"] = {"S": project}
            sets.append("#project = if_not_exists(#project, :project)")
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(model, STATE),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    async def acquire(
        self, model: str, holder: str, lease_seconds: float, project: str | None = None
    ) -> Lease:
        """Take or renew ``holder``'s lease for ``lease_seconds`` from now."""
        now = time.time()
        lease = Lease(model=model, holder=holder, expires_at=now + lease_seconds)
        item = {
            "model": {"S": model},
            "item": {"S": LEASE_PREFIX + holder},
            "holder": {"S": holder},
            "expires_at": {"N": repr(lease.expires_at)},
            "ttl": {"N": str(int(lease.expires_at + 86400))},
        }
        await self._db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": item}},
                self._stamp(model, project, now),
            ]
        )
        return lease

    async def release(self, model: str, holder: str) -> None:
        now = time.time()
        await self._db.transact_write_items(
            TransactItems=[
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": self._key(model, LEASE_PREFIX + holder),
                    }
                },
                self._stamp(model, None, now),
            ]
        )

    async def change(
        self,
        model: str,
        fields: dict[str, Any],
        *,
        expect: dict[str, Any],
        add: dict[str, float] | None = None,
    ) -> ModelState:
        """Set ``fields`` on the state row if every ``expect`` attribute has its value
        (``None``: absent or null); StaleStateError otherwise."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        for i, (name, value) in enumerate(fields.items()):
            names[f"#s{i}"] = name
            values[f":s{i}"] = to_attr(value)
            sets.append(f"#s{i} = :s{i}")
        adds = []
        for i, (name, amount) in enumerate((add or {}).items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = {"N": repr(amount)}
            adds.append(f"#a{i} :a{i}")
        conditions = []
        for i, (name, value) in enumerate(expect.items()):
            names[f"#c{i}"] = name
            if value is None:
                conditions.append(f"(attribute_not_exists(#c{i}) OR #c{i} = :cnull{i})")
                values[f":cnull{i}"] = {"NULL": True}
            else:
                conditions.append(f"#c{i} = :c{i}")
                values[f":c{i}"] = to_attr(value)
        expression = ("SET " + ", ".join(sets)) if sets else ""
        if adds:
            expression += " ADD " + ", ".join(adds)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(model, STATE),
            "UpdateExpression": expression.strip(),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if conditions:
            kwargs["ConditionExpression"] = " AND ".join(conditions)
        try:
            response = await self._db.update_item(**kwargs)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise StaleStateError(f"the state of {model} changed") from None
            raise
        return ModelState.model_validate(from_item(response["Attributes"]))
