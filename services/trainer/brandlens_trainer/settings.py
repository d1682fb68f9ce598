"""Settings of the trainer (prefix ``BRANDLENS_TRAINER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_TRAINER_", extra="ignore")

    poll_interval_seconds: int = Field(
        15,
        ge=1,
        le=900,
        description="First wait before looking at a training version, the first step of the "
        "backoff without progress, and the longest wait once its predicted end is near or "
        "past: a training ending when predicted or later is promoted within this (plus "
        "handling); see brandlens_trainer.looks",
    )
    poll_max_interval_seconds: int = Field(
        120,
        ge=1,
        le=900,
        description="Longest wait between looks (SQS delay limit: 900); without progress "
        "(Rekognition on AWS) the bound on the promotion delay",
    )
    max_training_hours: float = Field(
        72.0, gt=0, description="A version still training after this long is reported failed"
    )
    output_prefix: str = Field(
        "models", pattern=r"^[A-Za-z0-9!_.*'()/-]{1,200}$", description="Artifacts prefix"
    )
    project_name_prefix: str = Field(
        "brandlens",
        pattern=r"^[a-zA-Z0-9_.\-]{1,64}$",
        description="Rekognition project names are <prefix>-<stack>-<project>",
    )
