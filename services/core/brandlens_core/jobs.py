"""The job store: one row per job in DynamoDB, changed only by conditional writes.

Every state change names the states it may come from; DynamoDB refuses the
write when another worker moved the job first, so no update is lost when two
workers race. ``revision`` counts the changes.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from brandlens_core.aws import Client, error_code
from brandlens_core.dynamo import from_item, to_attr, to_item
from brandlens_core.events import Event, Purpose, utc_now
from brandlens_core.publisher import EventPublisher


class JobStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FRAMING = "FRAMING"
    FRAMED = "FRAMED"
    LABELING = "LABELING"
    ANALYZING = "ANALYZING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


TERMINAL = frozenset({JobStatus.REJECTED, JobStatus.COMPLETED, JobStatus.FAILED})

# Which states a job may enter from which. A transition not listed is a bug.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.FRAMING: frozenset({JobStatus.ACCEPTED}),
    JobStatus.FRAMED: frozenset({JobStatus.FRAMING}),
    JobStatus.LABELING: frozenset({JobStatus.FRAMED}),
    # only from FRAMED: the framer's FRAMING -> FRAMED write records what it framed, and
    # must not find the job moved on while it still works on it
    JobStatus.ANALYZING: frozenset({JobStatus.FRAMED}),
    JobStatus.COMPLETED: frozenset({JobStatus.FRAMED, JobStatus.LABELING, JobStatus.ANALYZING}),
    JobStatus.FAILED: frozenset(set(JobStatus) - TERMINAL),
}


class Job(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str
    project: str | None = None
    purpose: Purpose | None = None
    status: JobStatus
    reason: str | None = None
    media: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    revision: int = 1
    published: set[str] = Field(
        default_factory=set, description="detail-types already published for this job"
    )
    progress: dict[str, Any] = Field(default_factory=dict)
    framing: dict[str, Any] = Field(
        default_factory=dict, description="what the framer did: counts, manifest, strategy"
    )
    model_arn: str | None = Field(default=None, description="the model analysing this job")
    batches_done: int = Field(default=0, description="frame batches analysed (inferer)")
    aggregation_started_at: float | None = None
    summary_key: str | None = None
    report_key: str | None = None

    @field_serializer("created_at", "updated_at", when_used="json")
    def _fixed_width(self, value: datetime) -> str:
        # Fixed width, so the by-project index orders jobs by time: pydantic's ISO form
        # drops a zero fraction, and "…:32Z" would sort after "…:32.000001Z".
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_item(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"published"})
        if self.published:
            data["published"] = set(self.published)
        for empty_map in ("progress", "framing"):
            if not data.get(empty_map):
                data.pop(empty_map, None)
        return to_item(data)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        return cls.model_validate(from_item(item))


def framed_progress(job: Job) -> dict[str, Any]:
    """The job's progress with the framer's final figures once framing is over. While it
    works the framer writes ``frames_done``/``frames_planned`` every few seconds, so the
    last of them is stale (243 of 360) when it records what it framed (``framing``)."""
    frames = job.framing.get("frame_count")
    if not isinstance(frames, int):
        return dict(job.progress)
    planned = job.framing.get("frames_planned")
    return job.progress | {
        "frames_done": frames,
        "frames_planned": planned if isinstance(planned, int) else frames,
    }


class ResultsState(StrEnum):
    READY = "ready"
    PENDING = "pending"  # an analysis that may still complete
    NEVER = "never"  # a training job, or one rejected or failed: there will be none


def results_state(job: Job) -> tuple[ResultsState, str]:
    """Whether ``job``'s results (summary, detections, report) exist, may still come, or
    never will, with the reason in words (empty when ready). A client polling for results
    stops on NEVER; the API answers 410 for it and 409 for PENDING."""
    if job.status is JobStatus.COMPLETED and job.summary_key is not None:
        return ResultsState.READY, ""
    if job.purpose is Purpose.TRAINING:
        return ResultsState.NEVER, (
            f"job {job.job_id} is a training job ({job.status.value}): only analysis jobs "
            "have results"
        )
    if job.terminal:
        reason = f": {job.reason}" if job.reason else ""
        return ResultsState.NEVER, (
            f"job {job.job_id} is {job.status.value}{reason}; it will have no results"
        )
    return ResultsState.PENDING, (
        f"job {job.job_id} is {job.status.value}; results exist once it completes"
    )


class JobExistsError(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.job_id} exists ({job.status})")
        self.job = job


class JobNotFoundError(LookupError):
    pass


class InvalidTransitionError(Exception):
    def __init__(self, job_id: str, current: JobStatus | None, target: JobStatus) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {target}")
        self.job_id = job_id
        self.current = current
        self.target = target


class JobStore:
    def __init__(self, dynamodb: Client, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    async def create(self, job: Job) -> Job:
        """Insert ``job``; raise JobExistsError (with the stored job) if its id is taken."""
        try:
            await self._db.put_item(
                TableName=self._table,
                Item=job.to_item(),
                ConditionExpression="attribute_not_exists(job_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            existing = Job.from_item(old) if old else await self.get(job.job_id)
            raise JobExistsError(existing) from None
        return job

    async def get(self, job_id: str) -> Job:
        got = await self._db.get_item(
            TableName=self._table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        if "Item" not in got:
            raise JobNotFoundError(job_id)
        return Job.from_item(got["Item"])

    async def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        reason: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Move a job to ``target`` if its current state allows; return the new row."""
        allowed = TRANSITIONS.get(target)
        if not allowed:
            raise ValueError(f"no job may enter {target}")
        names = {"#status": "status", "#updated_at": "updated_at", "#revision": "revision"}
        values: dict[str, Any] = {
            ":target": {"S": target.value},
            ":now": {"S": utc_now().isoformat()},
            ":one": {"N": "1"},
        }
        sets = ["#status = :target", "#updated_at = :now", "#revision = #revision + :one"]
        if reason is not None:
            names["#reason"] = "reason"
            values[":reason"] = {"S": reason}
            sets.append("#reason = :reason")
        for i, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_attr(value)
            sets.append(f"#f{i} = :f{i}")
        allowed_keys = []
        for i, state in enumerate(sorted(allowed)):
            values[f":from{i}"] = {"S": state.value}
            allowed_keys.append(f":from{i}")
        try:
            response = await self._db.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#status IN ({', '.join(allowed_keys)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            current = Job.from_item(old).status if old else None
            raise InvalidTransitionError(job_id, current, target) from None
        return Job.from_item(response["Attributes"])

    async def set_fields(self, job_id: str, fields: dict[str, Any], *, only_in: JobStatus) -> bool:
        """Set fields while the job is in ``only_in``; False if it has moved on."""
        names = {"#status": "status", "#updated_at": "updated_at"}
        values: dict[str, Any] = {
            ":only": {"S": only_in.value},
            ":now": {"S": utc_now().isoformat()},
        }
        sets = ["#updated_at = :now"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_attr(value)
            sets.append(f"#f{i} = :f{i}")
        try:
            await self._db.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#status = :only",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    async def claim_field(self, job_id: str, name: str, value: Any) -> Any:
        """Set ``name`` unless the row has it; the value the row holds afterwards."""
        try:
            await self._db.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #n = :v",
                ConditionExpression="attribute_exists(job_id) AND attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": name},
                ExpressionAttributeValues={":v": to_attr(value)},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        return (await self.get(job_id)).model_dump().get(name)

    async def count_batch(self, job_id: str, batch_id: str) -> bool:
        """Count an analysed batch once: False if it was counted before."""
        try:
            await self._db.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="ADD batches_done :one, analyzed_batches :b",
                ConditionExpression=(
                    "attribute_exists(job_id) AND NOT contains(analyzed_batches, :id)"
                ),
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":b": {"SS": [batch_id]},
                    ":id": {"S": batch_id},
                },
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    async def counted_batches(self, job_id: str) -> set[str]:
        """The batch ids :meth:`count_batch` has counted."""
        got = await self._db.get_item(
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            ProjectionExpression="analyzed_batches",
            ConsistentRead=True,
        )
        return set(got.get("Item", {}).get("analyzed_batches", {}).get("SS", []))

    async def claim_aggregation(self, job_id: str, now: float, stale_before: float) -> bool:
        """One aggregation per job: True for the caller that may run it."""
        try:
            await self._db.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET aggregation_started_at = :now",
                ConditionExpression=(
                    "attribute_not_exists(aggregation_started_at) "
                    "OR aggregation_started_at < :stale"
                ),
                ExpressionAttributeValues={
                    ":now": {"N": repr(now)},
                    ":stale": {"N": repr(stale_before)},
                },
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    async def mark_published(self, job_id: str, detail_type: str) -> None:
        await self._db.update_item(
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="ADD published :dt",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues={":dt": {"SS": [detail_type]}},
        )

    async def list(self, *, project: str | None = None, limit: int = 100) -> list[Job]:
        """Newest first. With a project, reads the by-project index; else scans."""
        items: list[dict[str, Any]] = []
        if project is not None:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "by-project",
                "KeyConditionExpression": "project = :p",
                "ExpressionAttributeValues": {":p": {"S": project}},
                "ScanIndexForward": False,
                "Limit": limit,
            }
            response = await self._db.query(**kwargs)
            items = response.get("Items", [])
        else:
            paginator = self._db.get_paginator("scan")
            async for page in paginator.paginate(TableName=self._table):
                items.extend(page.get("Items", []))
        jobs = [Job.from_item(i) for i in items]
        jobs.sort(key=lambda j: j.created_at, reverse=True)
        return jobs[:limit]

    async def page(
        self,
        project: str,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        status: JobStatus | None = None,
        purpose: str | None = None,
        key: str | None = None,
    ) -> tuple[builtins.list[Job], tuple[str, str] | None]:
        """One page of ``project``'s jobs, newest first, filtered; and where the next page
        starts (``(job_id, created_at)`` of this page's last job), or None at the end."""
        filters: builtins.list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {":p": {"S": project}}
        if status is not None:
            filters.append("#status = :status")
            names["#status"] = "status"
            values[":status"] = {"S": status.value}
        if purpose is not None:
            filters.append("purpose = :purpose")
            values[":purpose"] = {"S": purpose}
        if key is not None:
            filters.append("#media.#key = :key")
            names |= {"#media": "media", "#key": "key"}
            values[":key"] = {"S": key}
        start: dict[str, Any] | None = None
        if after is not None:
            start = {
                "job_id": {"S": after[0]},
                "project": {"S": project},
                "created_at": {"S": after[1]},
            }
        items: builtins.list[dict[str, Any]] = []
        more = True
        while len(items) <= limit and more:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "by-project",
                "KeyConditionExpression": "project = :p",
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
                "Limit": limit + 1,
            }
            if filters:
                kwargs["FilterExpression"] = " AND ".join(filters)
            if names:
                kwargs["ExpressionAttributeNames"] = names
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            response = await self._db.query(**kwargs)
            items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            more = start is not None
        jobs = [Job.from_item(i) for i in items[:limit]]
        # one item more than asked for (or an unfinished query) means another page exists
        if jobs and (len(items) > limit or more):
            return jobs, (jobs[-1].job_id, _created_at_attr(items[len(jobs) - 1]))
        return jobs, None


def _created_at_attr(item: dict[str, Any]) -> str:
    return str(item["created_at"]["S"])


async def publish_once(jobs: JobStore, publisher: EventPublisher, job: Job, event: Event) -> None:
    """Publish ``event`` for ``job`` unless the row records it as published, then record it.

    Events are rebuilt from the row with deterministic ids, so a retry after a
    crash between the two calls publishes the same event again (consumers dedupe).
    """
    if event.detail_type() in job.published:
        return
    await publisher.publish(event)
    await jobs.mark_published(job.job_id, event.detail_type())
