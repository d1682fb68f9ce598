"""Settings of the inferer (prefix ``BRANDLENS_INFERER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from brandlens_inferer.aggregate import AggregationSettings


class InfererSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_INFERER_", extra="ignore")

    lease_seconds: float = Field(
        300.0, gt=0, description="A job's lease on its model lasts this long unless renewed"
    )
    wait_delay_seconds: int = Field(
        10, ge=1, le=900, description="A batch whose model is not running comes back after this"
    )
    max_wait_seconds: float = Field(
        3600.0, gt=0, description="A job whose model has not run for this long fails"
    )
    rate_per_inference_unit: float = Field(
        5.0, gt=0, description="Starting DetectCustomLabels rate per inference unit (calls/s)"
    )
    max_rate: float = Field(500.0, gt=0, description="The adaptive rate never exceeds this")
    min_rate: float = Field(0.5, gt=0, description="... nor falls below this")
    rate_decrease: float = Field(
        0.85, gt=0, lt=1, description="On a throttled call the rate is multiplied by this"
    )
    max_in_flight_frames: int = Field(
        16, ge=1, le=1024, description="Most DetectCustomLabels calls at once (per process)"
    )
    max_attempts_per_frame: int = Field(
        12, ge=1, description="Throttled calls of one frame are retried this often"
    )
    min_confidence: float | None = Field(
        None, ge=0, le=100, description="MinConfidence; unset: the model's own threshold"
    )
    merge_gap_ms: float = Field(
        2000.0, ge=0, description="Appearances closer than this are one appearance"
    )
    min_box_share: float = Field(
        0.005, ge=0, le=1, description="Share of the frame a box needs for qualifying time"
    )
    min_duration_ms: float = Field(
        2000.0, ge=0, description="Continuous time needed for qualifying screen time"
    )
    aggregation_claim_seconds: float = Field(
        300.0, gt=0, description="A started aggregation is taken over after this"
    )
    check_interval_seconds: int = Field(
        300,
        ge=1,
        le=900,
        description="A framed job not finished is checked this often: batches missing while "
        "its model runs and nothing progresses are sent again from the manifest",
    )
    max_checks: int = Field(
        24, ge=1, description="A job still missing batches after this many checks fails"
    )

    def aggregation(self) -> AggregationSettings:
        return AggregationSettings(
            merge_gap_ms=self.merge_gap_ms,
            min_box_share=self.min_box_share,
            min_duration_ms=self.min_duration_ms,
        )
