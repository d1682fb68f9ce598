"""The event catalog: one pydantic model per state change, past tense, versioned.

The EventBridge ``detail-type`` of an event is its model's class name and the
``detail`` is the model as JSON. ``event_id`` is chosen by the emitter and is
deterministic where the emitter can make it so (a retried step emits the same
id), which is what consumers deduplicate on.

Changing an event: add optional fields freely (consumers ignore unknown
fields); anything else is a new ``schema_version``, and consumers reject a
version they do not know with a clear error rather than misreading it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Purpose(StrEnum):
    ANALYSIS = "analysis"
    TRAINING = "training"


def utc_now() -> datetime:
    return datetime.now(UTC)


def deterministic_id(*parts: str) -> str:
    """A stable id from the parts (sha256, 32 hex chars)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:32]


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    SCHEMA_VERSION: ClassVar[int] = 1
    schema_version: int = 1
    event_id: str = Field(min_length=1, max_length=128)
    occurred_at: datetime = Field(default_factory=utc_now)

    @classmethod
    def detail_type(cls) -> str:
        return cls.__name__

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != cls.SCHEMA_VERSION:
            raise ValueError(
                f"{cls.__name__} schema_version {value} is not supported by this service "
                f"(it reads version {cls.SCHEMA_VERSION}); upgrade the service"
            )
        return value


class MediaRef(BaseModel):
    """Where a job's media lives and what ingest found it to be."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size_bytes: int = Field(ge=0)
    kind: Literal["image", "video"]
    format: Literal["jpeg", "png", "mp4", "mov"]
    content_type: str
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    duration_seconds: float | None = Field(default=None, gt=0)


class JobEvent(Event):
    job_id: str = Field(min_length=1, max_length=128)


class MediaAccepted(JobEvent):
    project: str
    purpose: Purpose
    media: MediaRef


class RejectionCode(StrEnum):
    BAD_KEY = "bad_key"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    UNSUPPORTED_TYPE = "unsupported_type"
    INVALID_MEDIA = "invalid_media"
    NOT_FOUND = "not_found"


class MediaRejected(JobEvent):
    project: str | None = None
    purpose: Purpose | None = None
    bucket: str
    key: str = Field(description="The object key, with unprintable characters escaped")
    code: RejectionCode
    reason: str


class FramesExtracted(JobEvent):
    project: str
    purpose: Purpose
    artifacts_bucket: str
    manifest_key: str
    frame_count: int = Field(ge=0)
    batch_count: int = Field(ge=0)


class FramingFailed(JobEvent):
    project: str
    purpose: Purpose
    reason: str


class LabelingJobOpened(Event):
    project: str
    batch_id: str
    backend: Literal["label-studio", "ground-truth", "import"]
    external_id: str | None = None
    task_count: int = Field(ge=0)
    job_ids: list[str] = Field(default_factory=list)


class DatasetReady(Event):
    project: str
    dataset_id: str
    train_manifest_uri: str
    test_manifest_uri: str
    labels: list[str]
    train_image_count: int = Field(ge=0)
    test_image_count: int = Field(ge=0)
    box_count: int = Field(ge=0)
    job_ids: list[str] = Field(default_factory=list)


class LabelingFailed(Event):
    project: str
    batch_id: str | None = None
    reason: str


class LabelMetrics(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    precision: float | None = None
    recall: float | None = None
    f1_score: float | None = None


class ModelTrained(Event):
    project: str
    dataset_id: str
    project_version_arn: str
    f1_score: float | None = None
    labels: dict[str, LabelMetrics] = Field(default_factory=dict)
    evaluation_summary_uri: str | None = None


class TrainingFailed(Event):
    project: str
    dataset_id: str
    project_version_arn: str | None = None
    reason: str


class ModelRunning(Event):
    project_version_arn: str
    inference_units: int = Field(ge=1)


class ModelStopped(Event):
    project_version_arn: str
    running_seconds: float | None = None


class ModelFailed(Event):
    project_version_arn: str
    reason: str
    job_ids: list[str] = Field(default_factory=list)


class AnalysisCompleted(JobEvent):
    project: str
    summary_key: str
    report_key: str | None = None
    frame_count: int = Field(ge=0)
    brands: list[str] = Field(default_factory=list)


class AnalysisFailed(JobEvent):
    project: str
    reason: str


CATALOG: dict[str, type[Event]] = {
    model.detail_type(): model
    for model in (
        MediaAccepted,
        MediaRejected,
        FramesExtracted,
        FramingFailed,
        LabelingJobOpened,
        DatasetReady,
        LabelingFailed,
        ModelTrained,
        TrainingFailed,
        ModelRunning,
        ModelStopped,
        ModelFailed,
        AnalysisCompleted,
        AnalysisFailed,
    )
}


class UnknownEventError(ValueError):
    pass


def parse_event(detail_type: str, detail: Any) -> Event:
    """Validate an event's detail against the catalog model named by its detail-type."""
    model = CATALOG.get(detail_type)
    if model is None:
        raise UnknownEventError(
            f"unknown detail-type {detail_type!r}; known: {', '.join(sorted(CATALOG))}"
        )
    try:
        return model.model_validate(detail)
    except ValidationError as exc:
        raise ValueError(f"invalid {detail_type} detail: {exc}") from exc
