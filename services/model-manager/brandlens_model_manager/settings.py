"""Settings of the model-manager (prefix ``BRANDLENS_MODEL_MANAGER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelManagerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_MODEL_MANAGER_", extra="ignore")

    idle_grace_seconds: float = Field(
        120.0, ge=0, description="A model with no live lease for this long is stopped"
    )
    reap_interval_seconds: float = Field(10.0, gt=0, description="How often leases are checked")
    min_inference_units: int = Field(1, ge=1, description="StartProjectVersion MinInferenceUnits")
    max_inference_units: int | None = Field(
        None, ge=1, description="StartProjectVersion MaxInferenceUnits (auto-scaling), unset: none"
    )
    price_per_inference_unit_hour: float = Field(
        4.0, ge=0, description="Cost of one inference unit for an hour (USD)"
    )
    poll_interval_seconds: int = Field(
        5, ge=1, le=900, description="First wait before looking at a starting/stopping model"
    )
    poll_max_interval_seconds: int = Field(60, ge=1, le=900)
    retry_failed_after_seconds: float = Field(
        600.0, ge=0, description="A model that failed to start is tried again after this"
    )
