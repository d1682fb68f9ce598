"""The analysis summary (``results/<job>/summary.json``): its documented schema, version 1.

Written by the inferer (:mod:`brandlens_inferer.aggregate` computes it), served by the
REST API and read by the CLI, so the models live here, beside the other shared formats.
See the inferer's README for what each field means.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class AggregationSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    merge_gap_ms: float = Field(2000.0, ge=0)
    min_box_share: float = Field(0.005, ge=0, le=1)
    min_duration_ms: float = Field(2000.0, ge=0)


class Appearance(BaseModel):
    start_ms: float
    end_ms: float
    start_timecode: str
    end_timecode: str
    duration_ms: float
    frames: int
    proof_frame_index: int = Field(description="the frame with the brand's largest box")
    proof_thumbnail_key: str | None = None


class MinuteStats(BaseModel):
    minute: int
    frames: int
    frames_with_brand: int
    share: float
    seconds: float


class BrandStats(BaseModel):
    brand: str
    frames: int
    share_of_frames: float
    screen_time_ms: float
    qualifying_screen_time_ms: float
    share_of_voice: float
    first_seen_ms: float
    last_seen_ms: float
    first_seen_timecode: str
    last_seen_timecode: str
    mean_confidence: float
    max_confidence: float
    mean_box_share: float
    appearances: list[Appearance]
    per_minute: list[MinuteStats]
    screen_map: list[list[int]] = Field(description="3x3 counts of box centres, rows top-down")


class ImageDetections(BaseModel):
    frame_index: int
    key: str
    labels: list[dict[str, Any]]
    thumbnail_key: str | None = Field(
        default=None, description="the image with every box drawn (the report's gallery)"
    )


class Summary(BaseModel):
    schema_version: int = SCHEMA_VERSION
    job_id: str
    project: str | None
    model: str | None
    media_kind: str = Field(description="video or image")
    frame_count: int
    duration_ms: float
    sampling_interval_ms: float | None
    settings: AggregationSettings
    brands: dict[str, BrandStats]
    frame_indexes: list[int]
    images: list[ImageDetections] = Field(default_factory=list)
