"""Work items sent straight to a queue (not events): high-volume, one consumer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from brandlens_core.events import Purpose


class FrameRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = Field(ge=0)
    key: str = Field(min_length=1, max_length=1024)
    timestamp_ms: float = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class FrameBatch(BaseModel):
    """A batch of frames for the inferer. ``batch_id`` is deterministic per job and batch."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    SCHEMA_VERSION: int = 1
    schema_version: int = 1
    batch_id: str = Field(min_length=1, max_length=200)
    batch_index: int = Field(ge=0)
    job_id: str
    project: str
    purpose: Purpose = Purpose.ANALYSIS
    artifacts_bucket: str
    frames: list[FrameRef] = Field(min_length=1, max_length=256)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"FrameBatch schema_version {value} is not supported (reads 1)")
        return value

    @staticmethod
    def make_id(job_id: str, batch_index: int) -> str:
        return f"{job_id}:{batch_index:06d}"
