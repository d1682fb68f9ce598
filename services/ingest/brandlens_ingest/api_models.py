"""Request and response bodies of the REST API (``/v1``), validated with pydantic.

The OpenAPI document is generated from these models and the route table in
:mod:`brandlens_ingest.api`, so the document cannot drift from the code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from brandlens_core.jobs import JobStatus
from brandlens_core.projects import (
    MAX_BRAND_CHARS,
    MAX_BRANDS,
    PROJECT_RE,
    check_brands,
    check_project_name,
    control_character,
    control_class,
)

MAX_FILE_NAME_CHARS = 255


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: what went wrong, in words a user can act on."""

    error: str
    details: list[dict[str, Any]] | None = Field(
        default=None, description="per-field validation errors (field path, message)"
    )


def _brand_schema(schema: dict[str, Any]) -> None:
    # what check_brand accepts: some non-space text, no control characters
    schema["pattern"] = f"^(?=.*\\S)[^{control_class()}]*$"


def _file_name_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = f"^(?!\\.\\.?$)[^/\\\\{control_class()}]+$"


BrandName = Annotated[
    str, Field(min_length=1, max_length=MAX_BRAND_CHARS, json_schema_extra=_brand_schema)
]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=63,
        description="1-63 lowercase letters, digits and inner '-'",
        json_schema_extra={"pattern": PROJECT_RE.pattern},
    )
    brands: list[BrandName] = Field(
        min_length=1,
        max_length=MAX_BRANDS,
        json_schema_extra={"uniqueItems": True},
        description="the labels a labeller may draw; unique ignoring case and surrounding "
        "spaces ('Acme' and ' acme' are the same brand)",
    )
    labeling: Literal["import", "label-studio"] = Field(
        default="import",
        description="how training media gets labelled (Ground Truth projects need options "
        "that only `brandlens project create` takes)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_project_name(value)

    @field_validator("brands")
    @classmethod
    def _brands(cls, value: list[str]) -> list[str]:
        return check_brands(value)


class ProjectView(BaseModel):
    name: str
    brands: list[str]
    labeling: str
    current_model: str | None = Field(description="the model version analyses use")
    created_at: datetime


class ProjectList(BaseModel):
    items: list[ProjectView]


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(
        min_length=1,
        max_length=MAX_FILE_NAME_CHARS,
        description="the file's name (no folders)",
        json_schema_extra=_file_name_schema,
    )
    purpose: Literal["analysis", "training", "annotations"] = Field(
        default="analysis",
        description="analysis: <file> is analysed (key analysis/<project>/<file>); training: "
        "it is labelled and trained on (training/<project>/<file>); annotations: labels for "
        "training media, COCO .json, Ground Truth .manifest/.jsonl or YOLO .zip, named after "
        "the media file (training/<project>/annotations/<file>)",
    )

    @field_validator("file_name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if "/" in value or "\\" in value:
            raise ValueError("give a file name without folders ('/' or '\\')")
        if value in (".", ".."):
            raise ValueError("'.' and '..' are not file names")
        char = control_character(value)
        if char is not None:
            raise ValueError(f"the file name contains the control character U+{ord(char):04X}")
        return value


class UploadTicket(BaseModel):
    """A presigned S3 POST: send the file as multipart/form-data to ``url`` with every
    field of ``fields`` first and the file last, as the form field ``file``."""

    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expires_at: datetime
    jobs_url: str | None = Field(
        description="lists the job this upload becomes once it lands (annotations: none; "
        "the labeler reads them)"
    )


class JobProgress(BaseModel):
    stage: str = Field(
        description="the job's status, in words: accepted, framing, framed, analyzing (an "
        "analysis job's frames go through the model), labeling, completed, rejected, failed"
    )
    frames_done: int | None = Field(
        default=None, description="frames sampled so far (once framed: all the framer got)"
    )
    frames_planned: int | None = Field(
        default=None,
        description="frames the framer planned (more than frames_done when some did not decode)",
    )
    batches_done: int = Field(default=0, description="frame batches analysed")
    batch_count: int | None = Field(default=None, description="frame batches in all")
    frames_analysed: int | None = Field(
        default=None, description="frames in the results (once an analysis completes)"
    )
    percent: float | None = Field(default=None, description="0-100, when it can be known")


class JobLinks(BaseModel):
    summary: str | None = None
    detections: str | None = None
    report: str | None = None


class JobView(BaseModel):
    job_id: str
    project: str | None
    purpose: str | None
    status: JobStatus
    reason: str | None = None
    media: dict[str, Any] = Field(description="what ingest found: key, kind, size, duration…")
    frame_count: int | None = None
    created_at: datetime
    updated_at: datetime
    progress: JobProgress
    links: JobLinks


class JobPage(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: done")


class Box(BaseModel):
    left: float
    top: float
    width: float
    height: float


class Detection(BaseModel):
    name: str
    confidence: float
    box: Box | None = None


class FrameDetections(BaseModel):
    index: int
    timestamp_ms: float | None = None
    key: str = Field(description="the frame's key in the artifacts bucket")
    labels: list[Detection]


class DetectionPage(BaseModel):
    job_id: str
    items: list[FrameDetections]
    next_cursor: str | None


class Health(BaseModel):
    status: Literal["ok"]
