"""Labelling batches and datasets: rows of the projects table, changed conditionally.

A batch is a set of training frames handed to one labelling backend. Its life:
``OPEN`` (tasks exist in the backend) -> ``COMPLETE`` (labels converted and stored)
or ``FAILED`` (with a reason). An import batch that failed opens again when new
annotations arrive.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from brandlens_core.events import deterministic_id, utc_now
from brandlens_core.projects import ConflictError, LabelingBackend, ProjectStore


class BatchStatus(StrEnum):
    OPEN = "OPEN"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project: str
    batch_id: str
    backend: LabelingBackend
    status: BatchStatus = BatchStatus.OPEN
    job_ids: list[str]
    frames_key: str = Field(description="artifacts key of the batch's frame list (JSON Lines)")
    frame_count: int = 0
    external_id: str | None = Field(
        default=None, description="Label Studio project id / Ground Truth labelling job name"
    )
    task_count: int = 0
    tasks_done: int = 0
    labels_key: str | None = Field(default=None, description="converted labels (GT manifest)")
    labels_sha: str | None = Field(default=None, description="content hash of the labels")
    labelled_images: int = 0
    box_count: int = 0
    reason: str | None = None
    note: str | None = Field(default=None, description="what an open batch waits for")
    poll_seq: int = 0
    published: set[str] = Field(default_factory=set)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @property
    def item(self) -> str:
        return batch_item(self.batch_id)


def batch_item(batch_id: str) -> str:
    return f"batch#{batch_id}"


def dataset_item(dataset_id: str) -> str:
    return f"dataset#{dataset_id}"


def batch_id_for_job(job_id: str) -> str:
    return f"batch-{job_id.removeprefix('job-')}"


def batch_id_for_jobs(job_ids: list[str]) -> str:
    return "batch-" + deterministic_id("batch", *sorted(job_ids))[:24]


class DatasetRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project: str
    dataset_id: str
    batch_ids: list[str]
    job_ids: list[str]
    labels: list[str]
    train_manifest_uri: str
    test_manifest_uri: str
    statistics_uri: str
    train_image_count: int
    test_image_count: int
    box_count: int
    published: set[str] = Field(default_factory=set)
    created_at: datetime = Field(default_factory=utc_now)


class BatchStore:
    """Batches and datasets of projects, on top of :class:`ProjectStore`."""

    def __init__(self, projects: ProjectStore) -> None:
        self.projects = projects

    async def create(self, batch: Batch) -> tuple[Batch, bool]:
        """Insert ``batch``; if its id exists, the stored one and False."""
        data = batch.model_dump(mode="json", exclude={"published"})
        try:
            await self.projects.put_new(batch.project, batch.item, data)
        except ConflictError:
            existing = await self.get(batch.project, batch.batch_id)
            if existing is None:  # deleted in between: extremely unlikely; let the retry see
                raise
            return existing, False
        return batch, True

    async def get(self, project: str, batch_id: str) -> Batch | None:
        row = await self.projects.get(project, batch_item(batch_id))
        return None if row is None else _batch(row)

    async def all(self, project: str) -> list[Batch]:
        return [_batch(r) for r in await self.projects.query(project, "batch#")]

    async def update(
        self, batch: Batch, fields: dict[str, Any], *, expect: BatchStatus | None = None
    ) -> Batch:
        """Set fields while the batch is in ``expect`` (default: its current status)."""
        fields = dict(fields) | {"updated_at": utc_now().isoformat()}
        row = await self.projects.update(
            batch.project,
            batch.item,
            fields,
            when={"status": (expect or batch.status).value},
        )
        return _batch(row)

    async def mark_published(self, batch: Batch, detail_type: str) -> None:
        await self.projects.update(
            batch.project, batch.item, {}, add_to_set={"published": detail_type}
        )

    # -- datasets --------------------------------------------------------------------------------

    async def get_dataset(self, project: str, dataset_id: str) -> DatasetRecord | None:
        row = await self.projects.get(project, dataset_item(dataset_id))
        return None if row is None else DatasetRecord.model_validate(row)

    async def put_dataset(self, record: DatasetRecord) -> DatasetRecord:
        data = record.model_dump(mode="json", exclude={"published"})
        try:
            await self.projects.put_new(record.project, dataset_item(record.dataset_id), data)
        except ConflictError:
            existing = await self.get_dataset(record.project, record.dataset_id)
            if existing is None:
                raise
            return existing
        return record

    async def list_datasets(self, project: str) -> list[DatasetRecord]:
        rows = await self.projects.query(project, "dataset#")
        records = [DatasetRecord.model_validate(r) for r in rows]
        return sorted(records, key=lambda r: r.created_at)

    async def mark_dataset_published(self, record: DatasetRecord, detail_type: str) -> None:
        await self.projects.update(
            record.project,
            dataset_item(record.dataset_id),
            {},
            add_to_set={"published": detail_type},
        )


def _batch(row: dict[str, Any]) -> Batch:
    return Batch.model_validate(row)
