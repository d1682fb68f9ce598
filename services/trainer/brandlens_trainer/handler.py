"""The trainer's work: a dataset becomes a Rekognition Custom Labels project version.

Messages on the trainer queue:

- ``DatasetReady`` (rule ``trainer-dataset-ready``): train a version on it;
- commands (JSON ``{"command": ...}``): ``train`` (``brandlens train PROJECT``: the
  latest dataset, or a named one; with ``again``, another version of a dataset that
  has one) and ``follow`` (delayed self-messages that look at a training version
  until it ends).

The same calls work against AWS and against the model-server: CreateProject,
DescribeProjects, CreateProjectVersion, DescribeProjectVersions, and the
evaluation summary in S3. Versions are named after their dataset, so a second
``DatasetReady`` for one dataset finds the version it started; a retrain
(``again``) is named after its dataset and its request id, so a redelivered
request finds the version it started too.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from brandlens_core.aws import Client, error_code
from brandlens_core.envelopes import InvalidMessageError, parse_envelope
from brandlens_core.events import (
    DatasetReady,
    Event,
    LabelMetrics,
    ModelTrained,
    TrainingFailed,
    deterministic_id,
    parse_event,
    utc_now,
)
from brandlens_core.follow import backoff_delay, poll_action, schedule
from brandlens_core.logging import get_logger
from brandlens_core.projects import PROJECT_RE, ConflictError, Project, ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_trainer.looks import Observation, Plan, plan_next_look
from brandlens_trainer.models import (
    ModelStatus,
    ModelStore,
    ModelVersion,
    retrain_version_name,
    version_name,
)
from brandlens_trainer.settings import TrainerSettings

log = get_logger(__name__)

SOURCE = "brandlens.trainer"


class TrainingError(Exception):
    """This version cannot be trained; the reason is for the user."""


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Literal["train", "follow"]
    project: str = Field(pattern=PROJECT_RE.pattern)
    dataset_id: str | None = Field(default=None, pattern=r"^ds-[a-z0-9]{1,64}$")
    version: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_.\-]{1,255}$")
    seq: int = Field(default=0, ge=0)
    request_id: str | None = Field(default=None, max_length=128)
    again: bool = Field(
        default=False, description="train another version of a dataset that already has one"
    )

    @model_validator(mode="after")
    def _again_names_its_dataset_and_request(self) -> Command:
        if self.again and not (self.dataset_id and self.request_id):
            raise ValueError("a train command with again needs a dataset_id and a request_id")
        return self


@dataclass(frozen=True)
class Message:
    event: DatasetReady | None = None
    command: Command | None = None


def decode(body: str) -> Message:
    try:
        raw: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(f"message body is not JSON: {exc.msg}") from exc
    if isinstance(raw, dict) and "command" in raw:
        try:
            return Message(command=Command.model_validate(raw))
        except ValidationError as exc:
            raise InvalidMessageError(f"invalid trainer command: {exc}") from exc
    envelope = parse_envelope(body)
    try:
        event = parse_event(envelope.detail_type, envelope.detail)
    except ValueError as exc:
        raise InvalidMessageError(str(exc)) from exc
    if not isinstance(event, DatasetReady):
        raise InvalidMessageError(
            f"the trainer takes DatasetReady, not {envelope.detail_type}; check the rules"
        )
    return Message(event=event)


def message_key(message: Message) -> str | None:
    if message.event is not None:
        return f"dataset:{message.event.project}:{message.event.dataset_id}"
    c = message.command
    if c is not None and c.command == "follow":
        return f"follow:{c.project}:{c.version}:{c.seq}"
    if c is not None and c.request_id:
        return f"train:{c.project}:{c.request_id}"
    return None


@dataclass
class TrainerContext:
    s3: Client
    sqs: Client
    rekognition: Client
    projects: ProjectStore
    models: ModelStore
    publisher: EventPublisher
    artifacts_bucket: str
    queue_url: str
    stack_name: str
    settings: TrainerSettings


async def handle(message: Message, ctx: TrainerContext) -> None:
    if message.event is not None:
        e = message.event
        await start_training(
            e.project, e.dataset_id, e.train_manifest_uri, e.test_manifest_uri, ctx
        )
        return
    command = message.command
    assert command is not None
    structlog.contextvars.bind_contextvars(project=command.project)
    if command.command == "train":
        await train_command(command, ctx)
        return
    if command.version is None:
        raise InvalidMessageError("the follow command needs a version")
    model = await ctx.models.get(command.project, command.version)
    if model is None:
        log.warning("trainer.unknown_version", version=command.version)
        return
    await on_follow(model, command.seq, ctx)


async def train_command(command: Command, ctx: TrainerContext) -> None:
    """``brandlens train PROJECT``: the named dataset, or the project's latest."""
    rows = await ctx.projects.query(command.project, "dataset#")
    if not rows:
        log.warning("trainer.no_dataset", hint="label frames first: brandlens batches")
        return
    datasets = sorted(rows, key=lambda r: str(r.get("created_at", "")))
    chosen = datasets[-1]
    if command.dataset_id:
        matching = [r for r in datasets if r.get("dataset_id") == command.dataset_id]
        if not matching:
            log.warning("trainer.unknown_dataset", dataset_id=command.dataset_id)
            return
        chosen = matching[0]
    dataset_id = str(chosen["dataset_id"])
    await start_training(
        command.project,
        dataset_id,
        str(chosen["train_manifest_uri"]),
        str(chosen["test_manifest_uri"]),
        ctx,
        again_request=command.request_id if command.again else None,
    )


def _s3_object(uri: str) -> dict[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise TrainingError(f"not an s3:// manifest URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return {"Bucket": bucket, "Name": key}


def rekognition_project_name(ctx: TrainerContext, project: str) -> str:
    return f"{ctx.settings.project_name_prefix}-{ctx.stack_name}-{project}"[:255]


async def project_arn(project: Project, ctx: TrainerContext) -> str:
    """The project's Rekognition project: created once (CreateProject is not idempotent)."""
    if project.rekognition_project_arn:
        return project.rekognition_project_arn
    name = rekognition_project_name(ctx, project.project)
    try:
        created = await ctx.rekognition.create_project(ProjectName=name)
        arn = str(created["ProjectArn"])
        log.info("trainer.project_created", project_arn=arn)
    except Exception as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
        described = await ctx.rekognition.describe_projects(ProjectNames=[name])
        found = described.get("ProjectDescriptions") or []
        if not found:
            raise
        arn = str(found[0]["ProjectArn"])
    # another worker may have recorded it first: the same ARN, the name is the same
    with contextlib.suppress(ConflictError):
        await ctx.projects.update(
            project.project, "project", {"rekognition_project_arn": arn},
            when={"rekognition_project_arn": None},
        )  # fmt: skip
    return arn


async def _project(name: str, ctx: TrainerContext) -> Project:
    found = await ctx.projects.find_project(name)
    if found is not None:
        return found
    # a project that was labelled without settings (imports): give it a row to hang models on
    project = Project(project=name)
    try:
        await ctx.projects.create_project(project)
    except ConflictError:
        return await ctx.projects.get_project(name)
    return project


async def start_training(
    project_name: str,
    dataset_id: str,
    train_uri: str,
    test_uri: str,
    ctx: TrainerContext,
    *,
    again_request: str | None = None,
) -> None:
    """Train the dataset's version, or with ``again_request`` the retrain that request names."""
    version = (
        retrain_version_name(dataset_id, again_request)
        if again_request
        else version_name(dataset_id)
    )
    structlog.contextvars.bind_contextvars(project=project_name, version=version)
    model, created = await ctx.models.create(
        ModelVersion(
            project=project_name, version=version, dataset_id=dataset_id, request_id=again_request
        )
    )
    if not created:
        log.info("trainer.version_exists", status=model.status.value)
    if model.status is ModelStatus.TRAINING:
        try:
            if model.version_arn is None:
                model = await _create_version(model, train_uri, test_uri, ctx)
        except TrainingError as exc:
            await fail(model, str(exc), ctx)
            return
        if model.poll_seq == 0:
            await schedule_follow(model, 1, ctx)
        return
    await _finish(model, ctx)  # trained or failed already: make sure its event went out


async def _create_version(
    model: ModelVersion, train_uri: str, test_uri: str, ctx: TrainerContext
) -> ModelVersion:
    project = await _project(model.project, ctx)
    arn = await project_arn(project, ctx)
    request = {
        "ProjectArn": arn,
        "VersionName": model.version,
        "OutputConfig": {
            "S3Bucket": ctx.artifacts_bucket,
            "S3KeyPrefix": f"{ctx.settings.output_prefix}/{model.project}",
        },
        "TrainingData": {"Assets": [{"GroundTruthManifest": {"S3Object": _s3_object(train_uri)}}]},
        "TestingData": {"Assets": [{"GroundTruthManifest": {"S3Object": _s3_object(test_uri)}}]},
        "Tags": {"brandlens:project": model.project, "brandlens:dataset": model.dataset_id},
    }
    try:
        response = await ctx.rekognition.create_project_version(**request)
        version_arn = str(response["ProjectVersionArn"])
        log.info("trainer.version_created", version_arn=version_arn)
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceInUseException":  # a retry after a crash: the version exists
            described = await _describe(arn, model.version, ctx)
            if described is None:
                raise
            version_arn = str(described["ProjectVersionArn"])
        elif code in ("InvalidParameterException", "ValidationException", "AccessDeniedException"):
            raise TrainingError(f"CreateProjectVersion refused the dataset: {exc}") from None
        else:
            raise
    return await ctx.models.update(model, {"project_arn": arn, "version_arn": version_arn})


async def _describe(project_arn: str, version: str, ctx: TrainerContext) -> dict[str, Any] | None:
    response = await ctx.rekognition.describe_project_versions(
        ProjectArn=project_arn, VersionNames=[version]
    )
    found = response.get("ProjectVersionDescriptions") or []
    return dict(found[0]) if found else None


async def schedule_follow(
    model: ModelVersion,
    seq: int,
    ctx: TrainerContext,
    *,
    resend: bool = False,
    plan: Plan | None = None,
) -> None:
    """Claim look ``seq`` and send it, delayed as ``plan`` says (the backoff without one),
    recording the plan on the row; a re-send keeps the recorded time of that look."""
    command = Command(command="follow", project=model.project, version=model.version, seq=seq)
    now = utc_now()
    s = ctx.settings
    if resend:
        at = model.next_look_at
        delay = (
            max(1, math.ceil((at - now).total_seconds()))
            if at is not None
            else backoff_delay(seq, s.poll_interval_seconds, s.poll_max_interval_seconds)
        )
        fields = None
    else:
        plan = plan or Plan(
            backoff_delay(seq, s.poll_interval_seconds, s.poll_max_interval_seconds)
        )
        delay = plan.delay_seconds
        fields = plan.fields(now)
    await schedule(
        ctx.projects, model.project, model.item, seq,
        sqs=ctx.sqs, queue_url=ctx.queue_url, body=command.model_dump_json(),
        first_seconds=s.poll_interval_seconds, max_seconds=s.poll_max_interval_seconds,
        resend=resend, delay_seconds=delay, fields=fields,
    )  # fmt: skip


async def on_follow(model: ModelVersion, seq: int, ctx: TrainerContext) -> None:
    if model.status is not ModelStatus.TRAINING:
        return
    action = poll_action(model.poll_seq, seq)
    if action == "resend":
        await schedule_follow(model, seq + 1, ctx, resend=True)
    if action != "act":
        return
    try:
        plan = await look(model, seq + 1, ctx)
    except TrainingError as exc:
        await fail(model, str(exc), ctx)
        return
    if plan is not None:
        current = await ctx.models.get(model.project, model.version)
        if current is not None and current.status is ModelStatus.TRAINING:
            await schedule_follow(current, seq + 1, ctx, plan=plan)


def _plan(model: ModelVersion, seq: int, message: object, ctx: TrainerContext) -> Plan:
    previous = (
        Observation(model.progress_seen, model.progress_seen_at)
        if model.progress_seen is not None and model.progress_seen_at is not None
        else None
    )
    return plan_next_look(
        now=utc_now(), seq=seq, message=message, previous=previous,
        first_seconds=ctx.settings.poll_interval_seconds,
        max_seconds=ctx.settings.poll_max_interval_seconds,
    )  # fmt: skip


async def look(model: ModelVersion, seq: int, ctx: TrainerContext) -> Plan | None:
    """Ask the service how training goes; finish the version when it ended. While it is
    still on: when to look again (look ``seq``), from the progress the service reports."""
    if model.project_arn is None or model.version_arn is None:
        raise TrainingError("the version was never created")
    described = await _describe(model.project_arn, model.version, ctx)
    if described is None:
        await fail(model, "the project version has disappeared (deleted?)", ctx)
        return None
    status = str(described.get("Status"))
    message = described.get("StatusMessage")
    if status == "TRAINING_IN_PROGRESS":
        if utc_now() - model.created_at > timedelta(hours=ctx.settings.max_training_hours):
            await fail(model, f"still training after {ctx.settings.max_training_hours:g} h", ctx)
            return None
        if status != model.service_status:
            await ctx.models.update(model, {"service_status": status})
        plan = _plan(model, seq, message, ctx)
        log.info(
            "trainer.training",
            status_message=message,
            expected_end=plan.expected_end.isoformat() if plan.expected_end else None,
            next_look_seconds=plan.delay_seconds,
        )
        return plan
    if status == "TRAINING_FAILED":
        await fail(model, str(message or "training failed"), ctx, service_status=status)
        return None
    if status in ("TRAINING_COMPLETED", "STARTING", "RUNNING", "STOPPING", "STOPPED", "FAILED",
                  "DEPRECATED", "COPYING_COMPLETED", "EXPIRED"):  # fmt: skip
        # every status after training means training completed
        await complete(model, described, ctx)
        return None
    log.warning("trainer.unexpected_status", status=status)
    return _plan(model, seq, None, ctx)


async def read_summary(uri: str, ctx: TrainerContext) -> dict[str, Any]:
    obj = _s3_object(uri)
    response = await ctx.s3.get_object(Bucket=obj["Bucket"], Key=obj["Name"])
    async with response["Body"] as body:
        data = await body.read()
    parsed: Any = json.loads(data)
    return parsed if isinstance(parsed, dict) else {}


def label_metrics(summary: dict[str, Any]) -> dict[str, LabelMetrics]:
    """Per-label precision, recall and F1 from Rekognition's evaluation summary layout."""
    out: dict[str, LabelMetrics] = {}
    for entry in summary.get("LabelEvaluationResults") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("Label"), str):
            continue
        metrics = entry.get("Metrics") or {}
        out[entry["Label"]] = LabelMetrics(
            precision=_number(metrics.get("Precision")),
            recall=_number(metrics.get("Recall")),
            f1_score=_number(metrics.get("F1Score")),
        )
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# Rekognition's and the model-server's StatusMessage of a plain completed training.
_PLAIN_COMPLETION = ("The model is ready to run.", "The model is ready to run")


def completion_warning(message: object) -> str | None:
    """The part of a completed version's StatusMessage worth showing the user, if any."""
    if not isinstance(message, str):
        return None
    text = message.strip()
    for plain in _PLAIN_COMPLETION:
        text = text.removeprefix(plain).strip()
    return text or None


async def complete(model: ModelVersion, described: dict[str, Any], ctx: TrainerContext) -> None:
    evaluation = described.get("EvaluationResult") or {}
    f1 = _number(evaluation.get("F1Score"))
    s3_object = (evaluation.get("Summary") or {}).get("S3Object") or {}
    summary_uri = (
        f"s3://{s3_object['Bucket']}/{s3_object['Name']}"
        if s3_object.get("Bucket") and s3_object.get("Name")
        else None
    )
    labels: dict[str, LabelMetrics] = {}
    if summary_uri:
        try:
            labels = label_metrics(await read_summary(summary_uri, ctx))
        except (ValueError, KeyError) as exc:
            log.warning("trainer.summary_unreadable", error=str(exc), uri=summary_uri)
    try:
        model = await ctx.models.update(
            model,
            {
                "status": ModelStatus.TRAINED.value,
                "service_status": str(described.get("Status")),
                "f1_score": f1,
                "labels": {k: v.model_dump() for k, v in labels.items()},
                "evaluation_summary_uri": summary_uri,
                "warning": completion_warning(described.get("StatusMessage")),
                "trained_at": utc_now().isoformat(),
            },
            expect=ModelStatus.TRAINING,
        )
    except ConflictError:
        current = await ctx.models.get(model.project, model.version)
        if current is None:
            return
        model = current
    log.info("trainer.trained", f1=f1, labels=len(labels))
    await _finish(model, ctx)


async def fail(
    model: ModelVersion, reason: str, ctx: TrainerContext, *, service_status: str | None = None
) -> None:
    log.warning("trainer.failed", reason=reason)
    try:
        model = await ctx.models.update(
            model,
            {
                "status": ModelStatus.FAILED.value,
                "reason": reason,
                "service_status": service_status,
            },
            expect=ModelStatus.TRAINING,
        )
    except ConflictError:
        current = await ctx.models.get(model.project, model.version)
        if current is None:
            return
        model = current
    await _finish(model, ctx)


async def promote(model: ModelVersion, ctx: TrainerContext) -> ModelVersion:
    """Default policy: the new version becomes current unless its F1 on the test set is
    worse than the current one's; a pinned current version stays."""
    if model.promoted is not None or model.version_arn is None:
        return model
    project = await _project(model.project, ctx)
    current_f1: float | None = None
    if project.current_model_arn:
        for other in await ctx.models.all(model.project):
            if other.version_arn == project.current_model_arn:
                current_f1 = other.f1_score
    if project.current_model_pinned:
        promoted, note = False, f"the current version is pinned ({project.current_model_arn})"
    elif (
        project.current_model_arn and current_f1 is not None and (model.f1_score or 0) < current_f1
    ):
        promoted = False
        note = f"F1 {model.f1_score} is below the current version's {current_f1}"
    else:
        promoted = True
        note = (
            "no current version"
            if not project.current_model_arn
            else (f"F1 {model.f1_score} >= the current version's {current_f1}")
        )
    if promoted:
        try:
            await ctx.projects.update(
                model.project, "project", {"current_model_arn": model.version_arn},
                when={
                    "current_model_arn": project.current_model_arn,
                    "current_model_pinned": False,
                },
            )  # fmt: skip
        except ConflictError:
            promoted, note = False, "the current version changed meanwhile"
    log.info("trainer.promotion", promoted=promoted, note=note)
    fields: dict[str, Any] = {"promoted": promoted, "promotion_note": note}
    if promoted:
        fields["promoted_at"] = utc_now().isoformat()
    return await ctx.models.update(model, fields)


async def _finish(model: ModelVersion, ctx: TrainerContext) -> None:
    """Publish the version's outcome once (after promotion, for a trained one)."""
    event: Event
    if model.status is ModelStatus.TRAINED:
        model = await promote(model, ctx)
        event = ModelTrained(
            event_id=deterministic_id("ModelTrained", model.project, model.version),
            project=model.project,
            dataset_id=model.dataset_id,
            project_version_arn=str(model.version_arn),
            f1_score=model.f1_score,
            labels=model.labels,
            evaluation_summary_uri=model.evaluation_summary_uri,
        )
    elif model.status is ModelStatus.FAILED:
        event = TrainingFailed(
            event_id=deterministic_id("TrainingFailed", model.project, model.version),
            project=model.project,
            dataset_id=model.dataset_id,
            project_version_arn=model.version_arn,
            reason=model.reason or "training failed",
        )
    else:
        return
    if event.detail_type() in model.published:
        return
    await ctx.publisher.publish(event)
    await ctx.models.mark_published(model, event.detail_type())
