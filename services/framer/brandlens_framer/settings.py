"""Settings of the framer (prefix ``BRANDLENS_FRAMER_``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SamplingMode(StrEnum):
    INTERVAL = "interval"  # one frame every N ms
    FPS = "fps"  # a target frame rate
    KEYFRAMES = "keyframes"  # the video's own keyframes
    SCENE = "scene"  # scene changes, capped and spread evenly


class FramerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_FRAMER_", extra="ignore")

    analysis_mode: SamplingMode = Field(SamplingMode.INTERVAL, description="Sampling for analysis")
    analysis_interval_ms: int = Field(1000, gt=0, le=3_600_000, description="Interval mode step")
    analysis_fps: float = Field(1.0, gt=0, le=120, description="FPS mode rate")
    training_mode: SamplingMode = Field(SamplingMode.SCENE, description="Sampling for training")
    training_interval_ms: int = Field(2000, gt=0, le=3_600_000)
    training_max_frames: int = Field(
        200, gt=0, le=2000, description="Cap on training frames, spread over the whole video"
    )
    scene_threshold: float = Field(
        0.3, gt=0, lt=1, description="ffmpeg scene score above which a frame is a scene change"
    )
    scene_analysis_width_px: int = Field(
        320, ge=32, le=1920, description="Width at which scene scores are computed"
    )
    longest_side_px: int = Field(1280, ge=64, le=8192, description="Frames are scaled to this")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of the frames")
    batch_size_frames: int = Field(16, gt=0, le=256, description="Frames per inferer batch")
    max_duration_seconds: float = Field(6 * 3600, gt=0, description="Longest video framed")
    max_frames: int = Field(100_000, gt=0, description="Most frames one job may produce")
    ffmpeg_path: str | None = Field(
        None, description="ffmpeg binary; default: ffmpeg on PATH, else imageio-ffmpeg's"
    )
    ffprobe_path: str | None = Field(
        None, description="ffprobe binary; default: ffprobe on PATH; without it ffmpeg probes"
    )
    ffmpeg_threads: int = Field(0, ge=0, le=64, description="Decoder threads, 0 = automatic")
    upload_concurrency: int = Field(8, gt=0, le=64, description="Frame uploads at once")
    max_image_bytes: int = Field(50 * 1024 * 1024, gt=0, description="Largest image read")
    presign_expiry_seconds: int = Field(
        6 * 3600, ge=60, le=7 * 24 * 3600, description="Lifetime of the media URL ffmpeg reads"
    )
