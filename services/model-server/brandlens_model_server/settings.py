"""Settings of the model-server (prefix ``BRANDLENS_MODEL_SERVER_``).

Where AWS answers (S3 for state, manifests, artifacts and images) and the
region come from :class:`brandlens_core.settings.AwsSettings`; the state
bucket defaults to the stack's artifacts bucket.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ModelServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_MODEL_SERVER_", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface the HTTP API listens on")
    port: int = Field(9321, ge=0, le=65535, description="TCP port; 0 picks a free one (logged)")
    account_id: str = Field(
        "123456789012", pattern=r"^\d{12}$", description="Account id written into every ARN"
    )

    # -- state ---------------------------------------------------------------
    state_bucket: str | None = Field(
        None, description="Bucket holding the server's state; default: the stack's artifacts bucket"
    )
    state_prefix: str = Field(
        "model-server/state/", description="Key prefix of the state objects (ends with '/')"
    )
    cache_dir: Path = Field(
        Path(tempfile.gettempdir()) / "brandlens-model-server",
        description="Local scratch: downloaded models and training work dirs",
    )

    # -- training --------------------------------------------------------------
    max_concurrent_trainings: int = Field(
        1, gt=0, le=64, description="Training processes running at once; others wait, queued"
    )
    training_python: str = Field(
        sys.executable, description="Python interpreter that runs the training process"
    )
    training_module: str = Field(
        "brandlens_model_server.detector.train",
        description="Module run as `python -m MODULE --spec SPEC.json` (CONTRACT.md §1)",
    )
    max_training_steps: int = Field(
        330,  # under 5 min for the default detector (v2) on an idle 2-core CPU
        gt=0,
        le=10_000_000,
        description=(
            "Training budget in optimisation steps (batches of 16): decides the learning-rate "
            "schedule and the end, so machine load does not change the model"
        ),
    )
    max_training_seconds: int = Field(
        3600,
        gt=0,
        le=7 * 24 * 3600,
        description="Safety stop: a training still running after this ends early and says so",
    )
    training_deadline_grace_seconds: float = Field(
        60.0, ge=0, description="Past its budget plus this, a training process is stopped"
    )
    training_stop_grace_seconds: float = Field(
        10.0, ge=0, le=120, description="After SIGTERM, how long a training process may take to end"
    )
    training_seed: int = Field(0, ge=0, description="Seed handed to the training process")
    max_training_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description=(
            "Runs a version gets when model-server restarts interrupt its training: a new "
            "server trains it again from scratch until this many runs were cut, then fails it"
        ),
    )

    # -- inference -------------------------------------------------------------
    runtime_module: str = Field(
        "brandlens_model_server.detector.runtime",
        description="Module providing Detector and InvalidImageError (CONTRACT.md §2)",
    )
    inference_threads: int = Field(
        max(1, min(4, os.cpu_count() or 1)),
        gt=0,
        le=256,
        description="Threads running detector.detect (shared by every running model)",
    )
    max_queued_detections: int = Field(
        64,
        gt=0,
        le=100_000,
        description="Admitted detections waiting for a thread, past which ThrottlingException",
    )
    rate_per_inference_unit_per_second: float = Field(
        5.0, gt=0, description="DetectCustomLabels requests per second one inference unit serves"
    )
    burst_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Token bucket depth, in seconds of a model's rate (at least one request)",
    )
    max_s3_image_bytes: int = Field(
        15 * MIB, gt=0, description="Largest image read from S3 (AWS: 15 MB)"
    )
    max_bytes_image_bytes: int = Field(
        4 * MIB, gt=0, description="Largest Image.Bytes (AWS Custom Labels: 4 MB)"
    )

    # -- process ---------------------------------------------------------------
    shutdown_grace_seconds: float = Field(
        20.0, ge=0, le=300, description="On SIGTERM, time in-flight requests get to finish"
    )

    @field_validator("state_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else value + "/"
