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
    api_enabled: bool = Field(True, description="Serve the REST API beside the worker")
    api_host: str = Field(
        "127.0.0.1", description="Address the REST API listens on (0.0.0.0 in a container)"
    )
    api_port: int = Field(8080, ge=0, le=65535, description="REST API port; 0 picks a free one")
    api_upload_url_seconds: int = Field(
        900, ge=60, le=7 * 24 * 3600, description="How long a presigned upload stays valid"
    )
