"""Work items sent straight to a queue (not events): high-volume, one consumer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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

    @model_validator(mode="after")
    def _id_names_the_batch(self) -> FrameBatch:
        # The job row counts batches by id and aggregation reads the indices back from the
        # counted ids: an id that is not this job's and index would be counted wrongly.
        expected = self.make_id(self.job_id, self.batch_index)
        if self.batch_id != expected:
            raise ValueError(f"batch_id {self.batch_id!r} should be {expected!r}")
        return self

    @staticmethod
    def make_id(job_id: str, batch_index: int) -> str:
        return f"{job_id}:{batch_index:06d}"

    @staticmethod
    def index_of(job_id: str, batch_id: str) -> int | None:
        """The batch index in an id made by :meth:`make_id` for ``job_id``, else None."""
        prefix = f"{job_id}:"
        rest = batch_id.removeprefix(prefix)
        return (
            int(rest) if batch_id.startswith(prefix) and rest.isascii() and rest.isdigit() else None
        )
