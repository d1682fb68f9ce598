"""The analysis summary (``results/<job>/summary.json``): its documented schema, version 1.

Written by the inferer (:mod:`brandlens_inferer.aggregate` computes it), served by the
REST API and read by the CLI, so the models live here, beside the other shared formats.
See the inferer's README for what each field means.
"""

from __future__ import annotations

from typing import Any, Literal

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
    detections: int = Field(
        default=0, description="the brand's boxes over every analysed frame (an image: in it)"
    )
    share_of_frames: float
    screen_time_ms: float = Field(description="0 for an image: a still has no screen time")
    qualifying_screen_time_ms: float
    share_of_voice: float = Field(
        description="0-1, the brand's part of all brands' screen time (video) or of all "
        "detections (image); see the summary's share_of_voice_basis"
    )
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
    share_of_voice_basis: Literal["screen_time", "detections"] = Field(
        default="screen_time",
        description="what share_of_voice divides: screen time for a video, detections for an "
        "image (a still has no time on screen)",
    )
    frame_count: int
    duration_ms: float
    sampling_interval_ms: float | None
    settings: AggregationSettings
    brands: dict[str, BrandStats]
    frame_indexes: list[int]
    images: list[ImageDetections] = Field(default_factory=list)
