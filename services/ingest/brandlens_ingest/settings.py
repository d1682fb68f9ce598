"""Settings of the ingest service (prefix ``BRANDLENS_INGEST_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_INGEST_", extra="ignore")

    max_image_bytes: int = Field(50 * MIB, gt=0, description="Largest image accepted")
    max_video_bytes: int = Field(20 * 1024 * MIB, gt=0, description="Largest video accepted")
    max_image_pixels: int = Field(
        100_000_000, gt=0, description="Largest width x height (decompression-bomb guard)"
    )
    max_image_side_px: int = Field(20_000, gt=0, description="Longest image side accepted")
    max_video_duration_seconds: float = Field(6 * 3600, gt=0, description="Longest video accepted")
    max_moov_bytes: int = Field(
        64 * MIB, gt=0, description="Largest MP4/MOV index (moov box) read while probing"
    )
