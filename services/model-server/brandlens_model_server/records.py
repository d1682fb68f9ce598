"""Projects and project versions: the records the server keeps, and their AWS shapes.

Records are pydantic models stored as JSON (see :mod:`state`); ``describe()``
renders them as Rekognition's ``ProjectDescription`` /
``ProjectVersionDescription``. Timestamps are epoch seconds (AWS JSON 1.1).
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from brandlens_model_server.errors import ResourceNotFoundException

PROJECT_ARN_RE = re.compile(
    r"^arn:aws:rekognition:(?P<region>[a-z\d-]+):(?P<account>\d{12}):"
    r"project/(?P<project>[a-zA-Z0-9_.\-]{1,255})/(?P<ts>[0-9]+)$"
)
VERSION_ARN_RE = re.compile(
    r"^arn:aws:rekognition:(?P<region>[a-z\d-]+):(?P<account>\d{12}):"
    r"project/(?P<project>[a-zA-Z0-9_.\-]{1,255})/version/(?P<version>[a-zA-Z0-9_.\-]{1,255})"
    r"/(?P<ts>[0-9]+)$"
)


class VersionStatus(StrEnum):
    TRAINING_IN_PROGRESS = "TRAINING_IN_PROGRESS"
    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    TRAINING_FAILED = "TRAINING_FAILED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    DELETING = "DELETING"


# Statuses from which a version can be started: it has a trained model.
STARTABLE = frozenset(
    {VersionStatus.TRAINING_COMPLETED, VersionStatus.STOPPED, VersionStatus.FAILED}
)
# Statuses in which a version holds (or is acquiring) runtime resources.
HOSTED = frozenset({VersionStatus.STARTING, VersionStatus.RUNNING, VersionStatus.STOPPING})

# A version found TRAINING_IN_PROGRESS by a new server is trained again from scratch
# (ModelService.recover), unless its record is an older server's (no training budget).
RESTARTED_DURING_TRAINING = "the model server restarted during training; train again"
REQUEUED_NOTE = "queued again after a model-server restart"


def restart_note(attempt: int, limit: int) -> str:
    """Appended to a retried training's StatusMessage: which run this is."""
    return f"restarted after a model-server restart (attempt {attempt} of {limit})"


def interrupted_message(times: int, limit: int) -> str:
    """StatusMessage of a version whose last allowed run was cut by a restart."""
    count = "once" if times == 1 else f"{times} times"
    runs = "once" if limit == 1 else f"at most {limit} times"
    return (
        f"the model server restarted during training {count} (a version is trained {runs}: "
        "BRANDLENS_MODEL_SERVER_MAX_TRAINING_ATTEMPTS); train again"
    )


def now_epoch() -> float:
    return round(time.time(), 3)


def arn_timestamp(epoch: float) -> str:
    return str(int(epoch * 1000))


def project_arn(region: str, account: str, project: str, created_at: float) -> str:
    return f"arn:aws:rekognition:{region}:{account}:project/{project}/{arn_timestamp(created_at)}"


def version_arn(region: str, account: str, project: str, version: str, created_at: float) -> str:
    return (
        f"arn:aws:rekognition:{region}:{account}:project/{project}/version/{version}/"
        f"{arn_timestamp(created_at)}"
    )


def project_name_of(arn: str) -> str:
    match = PROJECT_ARN_RE.match(arn)
    if not match:
        raise ResourceNotFoundException(f"Project {arn} not found.")
    return match["project"]


def version_names_of(arn: str) -> tuple[str, str]:
    match = VERSION_ARN_RE.match(arn)
    if not match:
        raise ResourceNotFoundException(f"Project version {arn} not found.")
    return match["project"], match["version"]


class S3Location(BaseModel):
    bucket: str
    key: str
    version: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def s3_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"Bucket": self.bucket, "Name": self.key}
        if self.version:
            obj["Version"] = self.version
        return obj


def assets(*locations: S3Location) -> dict[str, Any]:
    return {"Assets": [{"GroundTruthManifest": {"S3Object": loc.s3_object()}} for loc in locations]}


class TrainingBudget(BaseModel):
    """The budget a version trains with, fixed when it is created (the server's settings
    then), so a run started again after a restart trains exactly as the first would have."""

    max_training_steps: int
    max_training_seconds: int
    seed: int


class ProjectRecord(BaseModel):
    name: str
    arn: str
    created_at: float

    def describe(self) -> dict[str, Any]:
        return {
            "ProjectArn": self.arn,
            "CreationTimestamp": self.created_at,
            "Status": "CREATED",
            "Datasets": [],
            "Feature": "CUSTOM_LABELS",
        }


class VersionRecord(BaseModel):
    project: str
    version: str
    arn: str
    created_at: float
    status: VersionStatus
    status_message: str | None = None

    # what was asked
    output_bucket: str
    output_prefix: str
    train_manifest: S3Location
    test_manifest: S3Location | None = None
    autocreate_test: bool = False
    version_description: str | None = None
    kms_key_id: str | None = None
    training_budget: TrainingBudget | None = Field(
        None, description="None in records of servers older than training restarts"
    )

    # training
    training_attempts: int = Field(
        0, description="Runs started (more than one when restarts cut earlier ones)"
    )
    training_started_at: float | None = None
    training_end_at: float | None = None
    billable_training_seconds: int | None = None
    progress: float | None = None
    expected_end_at: float | None = Field(
        None,
        description="When the running training should end (epoch), from its progress rate; "
        "shown as 'about N s left' in StatusMessage",
    )
    f1_score: float | None = None
    evaluation_summary: S3Location | None = None
    train_manifest_used: S3Location | None = None
    test_manifest_used: S3Location | None = None
    model_location: S3Location | None = Field(
        None, description="The `model/` prefix written by the training process"
    )

    # runtime
    min_inference_units: int | None = None
    max_inference_units: int | None = None

    @property
    def output_uri(self) -> str:
        """Where the training process writes: ``s3://bucket/<prefix>/<project>/<version>/``."""
        return f"s3://{self.output_bucket}/{self.artifacts_prefix}"

    @property
    def artifacts_prefix(self) -> str:
        base = self.output_prefix
        if base and not base.endswith("/"):
            base += "/"
        return f"{base}{self.project}/{self.version}/"

    def status_message_at(self, now: float) -> str | None:
        """StatusMessage as of ``now``: a running training's ``training: 42% (step 840/2000)``
        gets ``, about 95 s left`` (before any restart note) once its end can be predicted.

        Rekognition has no progress field; this keeps the AWS shape and says it in words.
        """
        message = self.status_message
        if (
            message is None
            or self.status is not VersionStatus.TRAINING_IN_PROGRESS
            or self.expected_end_at is None
            or not message.startswith("training: ")
        ):
            return message
        head, sep, tail = message.partition("; ")
        left = max(0, round(self.expected_end_at - now))
        return f"{head}, about {left} s left{sep}{tail}"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ProjectVersionArn": self.arn,
            "CreationTimestamp": self.created_at,
            "Status": self.status.value,
            "OutputConfig": {"S3Bucket": self.output_bucket, "S3KeyPrefix": self.output_prefix},
        }
        message = self.status_message_at(time.time())
        if message:
            out["StatusMessage"] = message
        if self.min_inference_units is not None:
            out["MinInferenceUnits"] = self.min_inference_units
        if self.max_inference_units is not None:
            out["MaxInferenceUnits"] = self.max_inference_units
        if self.billable_training_seconds is not None:
            out["BillableTrainingTimeInSeconds"] = self.billable_training_seconds
        if self.training_end_at is not None:
            out["TrainingEndTimestamp"] = self.training_end_at
        training: dict[str, Any] = {"Input": assets(self.train_manifest)}
        if self.train_manifest_used is not None:
            training["Output"] = assets(self.train_manifest_used)
        out["TrainingDataResult"] = training
        testing_input: dict[str, Any] = (
            assets(self.test_manifest) if self.test_manifest is not None else {"Assets": []}
        )
        testing_input["AutoCreate"] = self.autocreate_test
        testing: dict[str, Any] = {"Input": testing_input}
        if self.test_manifest_used is not None:
            testing["Output"] = assets(self.test_manifest_used) | {
                "AutoCreate": self.autocreate_test
            }
        out["TestingDataResult"] = testing
        if self.f1_score is not None and self.evaluation_summary is not None:
            out["EvaluationResult"] = {
                "F1Score": self.f1_score,
                "Summary": {"S3Object": self.evaluation_summary.s3_object()},
            }
        if self.kms_key_id:
            out["KmsKeyId"] = self.kms_key_id
        if self.version_description:
            out["VersionDescription"] = self.version_description
        return out
