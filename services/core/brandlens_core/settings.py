"""Settings shared by every service.

Each service defines its own ``BaseSettings`` subclass with the prefix
``BRANDLENS_<SERVICE>_``; what every service needs (where AWS is, which stack
it belongs to) lives in :class:`AwsSettings` and :class:`StackSettings` under
the plain ``BRANDLENS_`` prefix, so one environment file serves all services.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STACK_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


class AwsSettings(BaseSettings):
    """Where the AWS APIs answer. Empty endpoints mean the real AWS endpoints.

    ``BRANDLENS_AWS_ENDPOINT_URL`` points every API at one place (the moto
    server or LocalStack's edge port); the per-API endpoints override it.
    """

    model_config = SettingsConfigDict(env_prefix="BRANDLENS_AWS_", extra="ignore")

    region: str = Field("us-east-1", description="AWS region of every resource")
    endpoint_url: AnyHttpUrl | None = Field(
        None, description="One endpoint for every AWS API (moto server, LocalStack)"
    )
    s3_endpoint_url: AnyHttpUrl | None = Field(None, description="Endpoint for S3 only")
    sqs_endpoint_url: AnyHttpUrl | None = Field(None, description="Endpoint for SQS only")
    events_endpoint_url: AnyHttpUrl | None = Field(
        None, description="Endpoint for EventBridge only"
    )
    dynamodb_endpoint_url: AnyHttpUrl | None = Field(None, description="Endpoint for DynamoDB only")
    sagemaker_endpoint_url: AnyHttpUrl | None = Field(
        None, description="Endpoint for SageMaker (Ground Truth labelling jobs) only"
    )
    rekognition_endpoint_url: AnyHttpUrl | None = Field(
        None, description="Endpoint for Rekognition Custom Labels (e.g. the model-server)"
    )
    max_pool_connections: int = Field(50, gt=0, le=1000, description="HTTP connections per client")
    max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per API call (botocore standard retry mode)"
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, description="TCP connect timeout")
    read_timeout_seconds: float = Field(
        70.0, gt=0, description="Socket read timeout (longer than SQS long polls)"
    )

    def endpoint_for(self, service: str) -> str | None:
        specific = getattr(self, f"{service}_endpoint_url", None)
        chosen = specific or self.endpoint_url
        return str(chosen).rstrip("/") if chosen else None


class StackSettings(BaseSettings):
    """Which deployment a service belongs to. Every resource name derives from it."""

    model_config = SettingsConfigDict(env_prefix="BRANDLENS_", extra="ignore")

    stack_name: str = Field(
        "brandlens",
        description="Prefix of every bucket, queue, bus, rule and table of this deployment",
    )
    bucket_suffix: str = Field(
        "",
        description="Appended to bucket names to make them globally unique on AWS "
        "(e.g. the account id); empty locally",
    )

    @field_validator("stack_name")
    @classmethod
    def _valid_stack_name(cls, value: str) -> str:
        if not STACK_NAME_RE.match(value):
            raise ValueError(
                "stack_name must be 3-32 characters of lowercase letters, digits and '-', "
                "starting with a letter"
            )
        return value


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_LOG_", extra="ignore")

    level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    json_output: bool = Field(True, alias="BRANDLENS_LOG_JSON", description="JSON lines")


class WorkerSettings(BaseSettings):
    """Settings of the SQS worker runtime; each service reads them under its own prefix.

    Use :func:`worker_settings_for` to read them as ``BRANDLENS_<SERVICE>_WORKER_*``.
    """

    model_config = SettingsConfigDict(extra="ignore")

    max_in_flight_messages: int = Field(
        10, gt=0, le=1000, description="Most messages held at once (received, not yet settled)"
    )
    wait_time_seconds: int = Field(20, ge=0, le=20, description="SQS long-poll wait")
    visibility_timeout_seconds: int = Field(
        60, ge=1, le=43_200, description="Visibility granted per receive and per heartbeat"
    )
    message_deadline_seconds: float = Field(
        900.0, gt=0, description="A handler running longer than this is cancelled and retried"
    )
    retry_base_delay_seconds: float = Field(
        2.0, gt=0, description="First retry delay; doubles per receive"
    )
    retry_max_delay_seconds: float = Field(
        300.0, gt=0, le=43_200, description="Cap on the retry delay"
    )
    drain_grace_seconds: float = Field(
        25.0,
        ge=0,
        description="On SIGTERM, how long in-flight work may finish "
        "(keep below the orchestrator's stop timeout, 30 s on ECS)",
    )
    idempotency_ttl_seconds: int = Field(
        7 * 24 * 3600, gt=0, description="How long a completed message is remembered"
    )
    delete_batch_window_seconds: float = Field(
        0.005, ge=0, le=1, description="How long finished receipts wait to be deleted in a batch"
    )
    heartbeat_file: str | None = Field(
        None, description="File touched on every poll; the health check reads its age"
    )


#: Worker defaults that differ per service (the environment still wins). The inferer
#: holds two batches: enough to keep its DetectCustomLabels calls busy; a batch held
#: beyond that only waits, and if the process dies it has used up a receive for nothing
#: (the chaos run dead-lettered batches held ten at a time by an inferer killed often).
SERVICE_WORKER_DEFAULTS: dict[str, dict[str, Any]] = {"inferer": {"max_in_flight_messages": 2}}


def worker_settings_for(service: str) -> WorkerSettings:
    prefix = f"BRANDLENS_{service.upper().replace('-', '_')}_WORKER_"

    class _Scoped(WorkerSettings):
        model_config = SettingsConfigDict(env_prefix=prefix, extra="ignore")

    scoped = _Scoped()
    values = scoped.model_dump()
    for name, value in SERVICE_WORKER_DEFAULTS.get(service, {}).items():
        if name not in scoped.model_fields_set:
            values[name] = value
    return WorkerSettings.model_validate(values)
