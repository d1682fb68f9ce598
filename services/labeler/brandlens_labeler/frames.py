"""The training frames of a batch, read from the framer's frame manifests."""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandlens_core.aws import Client


class LabelingError(Exception):
    """Labelling cannot go on for this batch; the reason is for the user."""


class FrameSource(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    bucket: str
    key: str
    version_id: str | None = None


class Frame(BaseModel):
    """One training frame: a line of the framer's manifest plus where it lives."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: str
    bucket: str
    key: str
    index: int = Field(ge=0)
    timestamp_ms: float = Field(ge=0)
    timecode: str | None = None
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    source: FrameSource
    source_frame: int | None = Field(default=None, ge=0)
    source_width: int | None = Field(default=None, gt=0)
    source_height: int | None = Field(default=None, gt=0)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def media_uri(self) -> str:
        return f"s3://{self.source.bucket}/{self.source.key}"

    @property
    def media_name(self) -> str:
        return posixpath.basename(self.source.key)


async def read_frames(
    s3: Client, bucket: str, manifest_key: str, job_id: str, *, max_bytes: int = 256 << 20
) -> list[Frame]:
    """The frames of one job from its frame manifest (JSON Lines written by the framer)."""
    response = await s3.get_object(Bucket=bucket, Key=manifest_key)
    if int(response.get("ContentLength") or 0) > max_bytes:
        raise LabelingError(f"frame manifest s3://{bucket}/{manifest_key} is too large")
    async with response["Body"] as body:
        text = (await body.read()).decode("utf-8")
    frames = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data: Any = json.loads(line)
            frames.append(Frame.model_validate(dict(data) | {"job_id": job_id, "bucket": bucket}))
        except (ValueError, TypeError, ValidationError) as exc:
            raise LabelingError(
                f"frame manifest s3://{bucket}/{manifest_key} line {number} is invalid: {exc}"
            ) from None
    return frames


def frames_jsonl(frames: list[Frame]) -> bytes:
    return "".join(f.model_dump_json() + "\n" for f in frames).encode()


def parse_frames_jsonl(data: bytes) -> list[Frame]:
    return [Frame.model_validate_json(line) for line in data.decode().splitlines() if line.strip()]


async def read_object(s3: Client, bucket: str, key: str, *, max_bytes: int) -> bytes:
    response = await s3.get_object(Bucket=bucket, Key=key)
    size = int(response.get("ContentLength") or 0)
    if size > max_bytes:
        response["Body"].close()
        raise LabelingError(
            f"s3://{bucket}/{key} is {size} bytes, above the limit of {max_bytes} bytes"
        )
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data
