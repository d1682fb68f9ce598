"""The labeler's work: open batches, follow them to completion, build datasets.

Messages on the labeler queue:

- ``FramesExtracted`` (training): the job's frames become a batch (per-job mode);
- S3 ``Object Created`` under ``training/<project>/annotations/``: open import
  batches of the project look for their labels again;
- Ground Truth's labelling-job state change: its batch is checked;
- commands (JSON ``{"command": ...}``): ``poll`` (delayed self-messages that follow
  an open batch, backing off), ``check`` (from the Label Studio webhook) and
  ``open`` (``brandlens label PROJECT``: gather framed jobs into one batch).

Every step can run twice: batch and dataset rows are written conditionally,
keys in S3 are deterministic, and each event is published once per row.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandlens_core.aws import Client, error_code
from brandlens_core.datasets import (
    GROUP_FIELD,
    Box,
    DatasetError,
    ImageAnnotations,
    read_ground_truth,
)
from brandlens_core.envelopes import (
    EventBridgeEnvelope,
    InvalidMessageError,
    S3ObjectCreatedDetail,
    parse_envelope,
)
from brandlens_core.events import (
    DatasetReady,
    Event,
    FramesExtracted,
    LabelingFailed,
    LabelingJobOpened,
    Purpose,
    deterministic_id,
    parse_event,
)
from brandlens_core.follow import poll_action, schedule
from brandlens_core.jobs import InvalidTransitionError, Job, JobNotFoundError, JobStatus, JobStore
from brandlens_core.logging import get_logger
from brandlens_core.projects import (
    PROJECT_RE,
    BatchMode,
    ConflictError,
    LabelingBackend,
    Project,
    ProjectStore,
    check_project_name,
)
from brandlens_core.publisher import EventPublisher
from brandlens_labeler import dataset as datasets
from brandlens_labeler import ground_truth as gt
from brandlens_labeler import imports
from brandlens_labeler import label_studio as ls
from brandlens_labeler.batches import (
    Batch,
    BatchStatus,
    BatchStore,
    DatasetRecord,
    batch_id_for_job,
    batch_id_for_jobs,
)
from brandlens_labeler.frames import (
    Frame,
    LabelingError,
    frames_jsonl,
    parse_frames_jsonl,
    read_frames,
    read_object,
)
from brandlens_labeler.settings import LabelerSettings

log = get_logger(__name__)

SOURCE = "brandlens.labeler"
PREDICTION_MIN_CONFIDENCE = 30.0


class Command(BaseModel):
    """A message the labeler sends itself, or that the CLI or the webhook sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Literal["poll", "check", "open"]
    project: str = Field(pattern=PROJECT_RE.pattern)
    batch_id: str | None = Field(default=None, pattern=r"^batch-[a-z0-9]{1,64}$")
    seq: int = Field(default=0, ge=0)
    job_ids: list[str] = Field(default_factory=list, max_length=10_000)
    request_id: str | None = Field(default=None, max_length=128)


@dataclass(frozen=True)
class Message:
    kind: Literal["frames", "annotations", "ground-truth", "command"]
    event: Event | None = None
    s3: S3ObjectCreatedDetail | None = None
    envelope: EventBridgeEnvelope | None = None
    command: Command | None = None


def decode(body: str) -> Message:
    try:
        raw: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(f"message body is not JSON: {exc.msg}") from exc
    if isinstance(raw, dict) and "command" in raw:
        try:
            return Message("command", command=Command.model_validate(raw))
        except ValidationError as exc:
            raise InvalidMessageError(f"invalid labeler command: {exc}") from exc
    envelope = parse_envelope(body)
    if envelope.source == "aws.s3" and envelope.detail_type == "Object Created":
        try:
            detail = S3ObjectCreatedDetail.model_validate(envelope.detail)
        except ValidationError as exc:
            raise InvalidMessageError(f"invalid 'Object Created' detail: {exc}") from exc
        return Message("annotations", s3=detail, envelope=envelope)
    if envelope.source == "aws.sagemaker" and envelope.detail_type == gt.STATE_CHANGE:
        return Message("ground-truth", envelope=envelope)
    try:
        event = parse_event(envelope.detail_type, envelope.detail)
    except ValueError as exc:
        raise InvalidMessageError(str(exc)) from exc
    if not isinstance(event, FramesExtracted):
        raise InvalidMessageError(
            f"the labeler takes FramesExtracted, annotations and Ground Truth events, not "
            f"{envelope.detail_type}; check the EventBridge rules"
        )
    return Message("frames", event=event, envelope=envelope)


def message_key(message: Message) -> str | None:
    """Idempotency key: one processing per event; checks are idempotent anyway."""
    if message.kind == "frames" and isinstance(message.event, FramesExtracted):
        return f"frames:{message.event.job_id}"
    if message.kind == "annotations" and message.s3 is not None:
        obj = message.s3.object
        return f"annotations:{obj.key}:{obj.version_id or obj.etag or obj.sequencer}"
    if message.kind == "command" and message.command is not None:
        c = message.command
        if c.command == "poll":
            return f"poll:{c.project}:{c.batch_id}:{c.seq}"
        if c.command == "open" and c.request_id:
            return f"open:{c.project}:{c.request_id}"
    if message.kind == "ground-truth" and message.envelope is not None:
        return f"ground-truth:{message.envelope.id}"
    return None


@dataclass
class LabelerContext:
    s3: Client
    sqs: Client
    jobs: JobStore
    projects: ProjectStore
    batches: BatchStore
    publisher: EventPublisher
    artifacts_bucket: str
    media_bucket: str
    queue_url: str
    region: str
    settings: LabelerSettings
    sagemaker: Client | None = None
    rekognition: Client | None = None
    label_studio: ls.LabelStudioClient | None = None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, project: str) -> asyncio.Lock:
        """One batch operation per project at a time within this process."""
        return self._locks.setdefault(project, asyncio.Lock())


async def handle(message: Message, ctx: LabelerContext) -> None:
    if message.kind == "frames":
        assert isinstance(message.event, FramesExtracted)
        await on_frames_extracted(message.event, ctx)
    elif message.kind == "annotations":
        assert message.s3 is not None
        await on_annotations(message.s3, ctx)
    elif message.kind == "ground-truth":
        assert message.envelope is not None
        await on_ground_truth_event(message.envelope, ctx)
    else:
        assert message.command is not None
        await on_command(message.command, ctx)


# -- projects ---------------------------------------------------------------------------------


async def project_settings(name: str, ctx: LabelerContext) -> Project:
    """The project's settings; a project without a row labels with the default backend."""
    found = await ctx.projects.find_project(name)
    if found is not None:
        return found
    return Project(project=name, labeling=ctx.settings.default_backend)


# -- opening batches --------------------------------------------------------------------------


async def on_frames_extracted(event: FramesExtracted, ctx: LabelerContext) -> None:
    structlog.contextvars.bind_contextvars(job_id=event.job_id, project=event.project)
    if event.purpose is not Purpose.TRAINING:
        log.info("labeler.ignored_analysis_frames")
        return
    project = await project_settings(event.project, ctx)
    try:
        job = await ctx.jobs.get(event.job_id)
    except JobNotFoundError:
        raise LabelingError(f"job {event.job_id} has no row; cannot label its frames") from None
    if project.batch_mode is BatchMode.MANUAL:
        note = f"waiting to be gathered into a batch: brandlens label {event.project}"
        await _job_to(job.job_id, JobStatus.LABELING, ctx)
        await ctx.jobs.set_fields(
            job.job_id, {"progress": {"note": note}}, only_in=JobStatus.LABELING
        )
        log.info("labeler.frames_wait_for_batch", hint=f"brandlens label {event.project}")
        return
    await open_batch(project, batch_id_for_job(job.job_id), [job], ctx)


async def on_command(command: Command, ctx: LabelerContext) -> None:
    structlog.contextvars.bind_contextvars(project=command.project, batch_id=command.batch_id)
    if command.command == "open":
        project = await project_settings(command.project, ctx)
        jobs = await _jobs_to_gather(command, ctx)
        if not jobs:
            log.info("labeler.nothing_to_label")
            return
        await open_batch(project, batch_id_for_jobs([j.job_id for j in jobs]), jobs, ctx)
        return
    if command.batch_id is None:
        raise InvalidMessageError(f"the {command.command} command needs a batch_id")
    batch = await ctx.batches.get(command.project, command.batch_id)
    if batch is None:
        log.warning("labeler.unknown_batch")
        return
    if command.command == "poll":
        await on_poll(batch, command.seq, ctx)
    else:
        await check_batch(batch, ctx)


GATHERABLE = frozenset({JobStatus.FRAMED, JobStatus.LABELING})


async def _jobs_to_gather(command: Command, ctx: LabelerContext) -> list[Job]:
    """Framed training jobs in no batch yet (FRAMED, or LABELING in manual mode)."""
    batched = {j for b in await ctx.batches.all(command.project) for j in b.job_ids}
    if command.job_ids:
        jobs = []
        for job_id in command.job_ids:
            try:
                job = await ctx.jobs.get(job_id)
            except JobNotFoundError:
                raise LabelingError(f"job {job_id} does not exist") from None
            if job.project != command.project or job.purpose is not Purpose.TRAINING:
                raise LabelingError(f"job {job_id} is not a training job of {command.project}")
            if job.status not in GATHERABLE or job.job_id in batched:
                raise LabelingError(
                    f"job {job_id} is {job.status.value} and in a batch already"
                    if job.job_id in batched
                    else f"job {job_id} is {job.status.value}, not framed"
                )
            jobs.append(job)
        return jobs
    every = await ctx.jobs.list(project=command.project, limit=10_000)
    return sorted(
        (
            j
            for j in every
            if j.purpose is Purpose.TRAINING and j.status in GATHERABLE and j.job_id not in batched
        ),
        key=lambda j: j.job_id,
    )


def batch_prefix(project: str, batch_id: str) -> str:
    return f"labeling/{project}/{batch_id}"


async def _gather_frames(jobs: list[Job], ctx: LabelerContext) -> list[Frame]:
    frames: list[Frame] = []
    for job in jobs:
        manifest = job.framing.get("manifest_key")
        bucket = job.framing.get("artifacts_bucket") or ctx.artifacts_bucket
        if not isinstance(manifest, str):
            raise LabelingError(f"job {job.job_id} has no frame manifest; was it framed?")
        frames.extend(await read_frames(ctx.s3, bucket, manifest, job.job_id))
    if not frames:
        raise LabelingError("the batch's jobs produced no frames")
    return frames


async def batch_frames(batch: Batch, ctx: LabelerContext) -> list[Frame]:
    data = await read_object(ctx.s3, ctx.artifacts_bucket, batch.frames_key, max_bytes=1 << 30)
    return parse_frames_jsonl(data)


async def open_batch(project: Project, batch_id: str, jobs: list[Job], ctx: LabelerContext) -> None:
    structlog.contextvars.bind_contextvars(batch_id=batch_id, project=project.project)
    async with ctx.lock(project.project):
        batch = await ctx.batches.get(project.project, batch_id)
        if batch is None:
            frames = await _gather_frames(jobs, ctx)
            frames_key = f"{batch_prefix(project.project, batch_id)}/frames.jsonl"
            await ctx.s3.put_object(
                Bucket=ctx.artifacts_bucket,
                Key=frames_key,
                Body=frames_jsonl(frames),
                ContentType="application/x-ndjson",
            )
            batch, created = await ctx.batches.create(
                Batch(
                    project=project.project,
                    batch_id=batch_id,
                    backend=project.labeling,
                    job_ids=[j.job_id for j in jobs],
                    frames_key=frames_key,
                    frame_count=len(frames),
                )
            )
            if created:
                log.info("batch.created", frames=len(frames), backend=project.labeling.value)
    for job in jobs:
        await _job_to(job.job_id, JobStatus.LABELING, ctx)
    if batch.status is BatchStatus.OPEN:
        try:
            batch = await _open_in_backend(project, batch, ctx)
        except LabelingError as exc:
            await fail_batch(batch, str(exc), ctx)
            return
    await _publish_batch_event(batch, _opened_event(batch), ctx)
    followed = batch.backend is not LabelingBackend.IMPORT  # imports wake on uploads
    if batch.status is BatchStatus.OPEN and followed and batch.poll_seq == 0:
        await schedule_poll(batch, 1, ctx)
    await check_batch(batch, ctx)


def _opened_event(batch: Batch) -> LabelingJobOpened:
    return LabelingJobOpened(
        event_id=deterministic_id("LabelingJobOpened", batch.project, batch.batch_id),
        project=batch.project,
        batch_id=batch.batch_id,
        backend=batch.backend.value,
        external_id=batch.external_id,
        task_count=batch.task_count,
        job_ids=batch.job_ids,
    )


async def _open_in_backend(project: Project, batch: Batch, ctx: LabelerContext) -> Batch:
    if batch.backend is LabelingBackend.IMPORT:
        if batch.task_count == batch.frame_count:
            return batch
        return await ctx.batches.update(batch, {"task_count": batch.frame_count})
    try:
        project.check_backend()
    except ValueError as exc:
        raise LabelingError(str(exc)) from None
    frames = await batch_frames(batch, ctx)
    if batch.backend is LabelingBackend.LABEL_STUDIO:
        project_id, count = await _open_label_studio(project, batch, frames, ctx)
        return await ctx.batches.update(
            batch, {"external_id": str(project_id), "task_count": count}
        )
    name = await _open_ground_truth(project, batch, frames, ctx)
    return await ctx.batches.update(batch, {"external_id": name, "task_count": len(frames)})


# -- Label Studio -------------------------------------------------------------------------------


def _label_studio(ctx: LabelerContext) -> ls.LabelStudioClient:
    if ctx.label_studio is None:
        raise LabelingError(
            "the project labels with Label Studio, but the labeler has no Label Studio: set "
            "BRANDLENS_LABELER_LABEL_STUDIO_URL and BRANDLENS_LABELER_LABEL_STUDIO_TOKEN"
        )
    return ctx.label_studio


async def _label_studio_project(project: Project, ctx: LabelerContext) -> int:
    """The Label Studio project of ``project``: found, or created once, config kept current."""
    client = _label_studio(ctx)
    config = ls.label_config(project.brands)
    if project.label_studio_project_id is not None:
        try:
            found = await client.get_project(project.label_studio_project_id)
        except ls.LabelStudioError as exc:
            if exc.status != 404:
                raise
            found = None
        if found is not None:
            if found.get("label_config") != config:
                await client.set_label_config(project.label_studio_project_id, config)
            return project.label_studio_project_id
    title = ls.project_title(project.project)
    found = await client.find_project(title)
    if found is None:
        found = await client.create_project(
            title, config, f"Logo boxes for the brandlens project {project.project}"
        )
        log.info("label_studio.project_created", label_studio_project=found.get("id"))
    elif found.get("label_config") != config:
        await client.set_label_config(int(found["id"]), config)
    project_id = int(found["id"])
    try:
        await ctx.projects.update(
            project.project,
            "project",
            {"label_studio_project_id": project_id},
            when={"label_studio_project_id": project.label_studio_project_id},
        )
    except ConflictError:
        current = await ctx.projects.get_project(project.project)
        if current.label_studio_project_id not in (None, project_id):
            await client.delete_project(project_id)  # another worker created one first
            return int(current.label_studio_project_id or project_id)
    return project_id


async def _open_label_studio(
    project: Project, batch: Batch, frames: list[Frame], ctx: LabelerContext
) -> tuple[int, int]:
    client = _label_studio(ctx)
    try:
        project_id = await _label_studio_project(project, ctx)
        existing = {
            str(t.get("data", {}).get("frame"))
            for t in await client.list_tasks(project_id)
            if isinstance(t.get("data"), dict) and t["data"].get("batch") == batch.batch_id
        }
        missing = [f for f in frames if f.uri not in existing]
        predictions = await _predictions(project, missing, ctx) if missing else {}
        tasks = []
        for frame in missing:
            url = await ctx.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": frame.bucket, "Key": frame.key},
                ExpiresIn=ctx.settings.presign_expiry_seconds,
            )
            tasks.append(
                ls.task_for(project.project, frame, url, batch.batch_id, predictions.get(frame.uri))
            )
        for start in range(0, len(tasks), 500):
            await client.import_tasks(project_id, tasks[start : start + 500])
        if ctx.settings.webhook_url:
            secret = ctx.settings.webhook_secret
            await client.ensure_webhook(
                project_id, ctx.settings.webhook_url, secret.get_secret_value() if secret else None
            )
    except ls.LabelStudioError as exc:
        if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 408, 429):
            raise LabelingError(str(exc)) from None
        raise  # unreachable or overloaded: the message is retried
    log.info(
        "label_studio.tasks_imported",
        label_studio_project=project_id,
        imported=len(tasks),
        already_there=len(existing),
        predicted=len(predictions),
    )
    return project_id, len(frames)


async def _predictions(
    project: Project, frames: list[Frame], ctx: LabelerContext
) -> dict[str, tuple[str, list[tuple[Box, float]]]]:
    """Model-assisted labelling: the project's current model's boxes, if it is running."""
    if not project.current_model_arn or ctx.rekognition is None:
        return {}
    model = project.current_model_arn
    out: dict[str, tuple[str, list[tuple[Box, float]]]] = {}
    version = model.rsplit("/", 2)[-2] if model.count("/") >= 2 else model
    for frame in frames:
        try:
            response = await ctx.rekognition.detect_custom_labels(
                ProjectVersionArn=model,
                Image={"S3Object": {"Bucket": frame.bucket, "Name": frame.key}},
                MinConfidence=PREDICTION_MIN_CONFIDENCE,
            )
        except Exception as exc:
            code = error_code(exc)
            if code in (
                "ResourceNotReadyException",
                "ResourceNotFoundException",
                "InvalidParameterException",
            ):
                log.info("labeler.no_predictions", reason=code, model=model)
                return {}
            raise
        boxes: list[tuple[Box, float]] = []
        for label in response.get("CustomLabels", []):
            bbox = (label.get("Geometry") or {}).get("BoundingBox")
            if not bbox or label.get("Name") not in project.brands:
                continue
            boxes.append(
                (
                    Box(
                        label["Name"],
                        bbox["Left"] * frame.width,
                        bbox["Top"] * frame.height,
                        bbox["Width"] * frame.width,
                        bbox["Height"] * frame.height,
                    ),
                    float(label.get("Confidence", 0.0)) / 100,
                )
            )
        out[frame.uri] = (version, boxes)
    return out


async def _label_studio_result(
    project: Project, batch: Batch, ctx: LabelerContext
) -> tuple[int, list[ImageAnnotations] | None]:
    """(tasks done, labelled frames once every task is done)."""
    client = _label_studio(ctx)
    if batch.external_id is None:
        raise LabelingError("the batch has no Label Studio project")
    frames = {f.uri: f for f in await batch_frames(batch, ctx)}
    try:
        await client.get_project(int(batch.external_id))
        listed = await client.list_tasks(int(batch.external_id))
    except ls.LabelStudioError as exc:
        if exc.status == 404:
            raise LabelingError(
                f"the Label Studio project {batch.external_id} is gone (deleted?); its "
                "labels cannot be read"
            ) from None
        raise
    tasks = [
        t
        for t in listed
        if isinstance(t.get("data"), dict) and t["data"].get("batch") == batch.batch_id
    ]
    latest: dict[str, dict[str, Any]] = {}
    for task in tasks:
        uri = str(task["data"].get("frame"))
        if uri in frames and (uri not in latest or ls.task_done(task)):
            latest[uri] = task
    done = sum(1 for t in latest.values() if ls.task_done(t))
    if done < len(frames):
        return done, None
    images = []
    for uri, task in latest.items():
        image = ls.convert_task(task, frames[uri], project.brands)
        if image is not None:
            images.append(image)
    return done, images


# -- Ground Truth -------------------------------------------------------------------------------


def _sagemaker(ctx: LabelerContext) -> Client:
    if ctx.sagemaker is None:
        raise LabelingError("the labeler has no SageMaker client for Ground Truth")
    return ctx.sagemaker


async def _open_ground_truth(
    project: Project, batch: Batch, frames: list[Frame], ctx: LabelerContext
) -> str:
    assert project.ground_truth is not None
    options = project.ground_truth
    prefix = f"{batch_prefix(project.project, batch.batch_id)}/ground-truth"
    inputs = gt.build_inputs(
        frames, project.brands, ctx.artifacts_bucket, prefix, options.task_type
    )
    for key, body in inputs.files:
        await ctx.s3.put_object(Bucket=ctx.artifacts_bucket, Key=key, Body=body)
    name = gt.job_name(project.project, batch.batch_id)
    request = gt.create_request(
        name=name,
        project=project.project,
        batch_id=batch.batch_id,
        brands=project.brands,
        options=options,
        bucket=ctx.artifacts_bucket,
        prefix=prefix,
        manifest_key=inputs.manifest_key,
        region=ctx.region,
        lambda_account=ctx.settings.ground_truth_lambda_account,
        frame_count=len(frames),
    )
    try:
        await _sagemaker(ctx).create_labeling_job(**request)
        log.info("ground_truth.job_created", labeling_job=name)
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceInUse":
            log.info("ground_truth.job_exists", labeling_job=name)  # a retry: it is ours
        elif code in ("ValidationException", "ResourceLimitExceeded", "AccessDeniedException"):
            raise LabelingError(f"Ground Truth refused the labelling job: {exc}") from None
        else:
            raise
    return name


async def _ground_truth_result(
    batch: Batch, ctx: LabelerContext
) -> tuple[int, list[ImageAnnotations] | None]:
    if batch.external_id is None:
        raise LabelingError("the batch has no Ground Truth labelling job")
    described = await _sagemaker(ctx).describe_labeling_job(LabelingJobName=batch.external_id)
    status = described.get("LabelingJobStatus")
    counters = described.get("LabelCounters") or {}
    done = int(counters.get("TotalLabeled", 0)) + int(counters.get("FailedNonRetryableError", 0))
    if status in ("Failed", "Stopped"):
        reason = described.get("FailureReason") or f"the labelling job is {status}"
        raise LabelingError(f"Ground Truth labelling job {batch.external_id}: {reason}")
    if status != "Completed":
        return done, None
    output = (described.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri")
    if not output:
        raise LabelingError("the completed labelling job names no output manifest")
    bucket, key = gt.parse_s3_uri(output)
    if bucket != ctx.artifacts_bucket:
        raise LabelingError(f"the output manifest {output} is outside the artifacts bucket")
    data = await read_object(ctx.s3, bucket, key, max_bytes=ctx.settings.max_annotation_bytes)
    frames = {f.uri: f for f in await batch_frames(batch, ctx)}
    images: list[ImageAnnotations] = []
    video_lines = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            parsed = json.loads(line)
            if gt.VIDEO_ATTRIBUTE in parsed:
                video_lines.append((number, parsed))
    if not video_lines:
        images, _ = gt.convert_image_output(data, frames)
        return len(images), images
    prefix = f"{batch_prefix(batch.project, batch.batch_id)}/ground-truth/"
    for number, parsed in video_lines:
        seq_bucket, seq_key = gt.parse_s3_uri(parsed[gt.VIDEO_ATTRIBUTE])
        in_bucket, in_key = gt.parse_s3_uri(parsed.get("source-ref", ""))
        for b, k in ((seq_bucket, seq_key), (in_bucket, in_key)):
            if b != ctx.artifacts_bucket or not k.startswith(prefix):
                raise LabelingError(f"the output manifest points outside the batch: s3://{b}/{k}")
        seq_label = await read_object(
            ctx.s3, seq_bucket, seq_key, max_bytes=ctx.settings.max_annotation_bytes
        )
        sequence = await read_object(
            ctx.s3, in_bucket, in_key, max_bytes=ctx.settings.max_annotation_bytes
        )
        images.extend(gt.convert_video_output(parsed, seq_label, sequence, frames, number))
    return len(images), images


async def on_ground_truth_event(envelope: EventBridgeEnvelope, ctx: LabelerContext) -> None:
    name = gt.job_name_from_event(envelope.resources, envelope.detail)
    if name is None:
        raise InvalidMessageError("the Ground Truth event names no labelling job")
    try:
        described = await _sagemaker(ctx).describe_labeling_job(LabelingJobName=name)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFound":
            log.info("ground_truth.unknown_job", labeling_job=name)
            return
        raise
    tags = {t.get("Key"): t.get("Value") for t in described.get("Tags") or []}
    project, batch_id = tags.get(gt.TAG_PROJECT), tags.get(gt.TAG_BATCH)
    if not isinstance(project, str) or not isinstance(batch_id, str):
        log.info("ground_truth.not_ours", labeling_job=name)
        return
    batch = await ctx.batches.get(project, batch_id)
    if batch is None or batch.external_id != name:
        log.info("ground_truth.not_ours", labeling_job=name)
        return
    await check_batch(batch, ctx)


# -- imports ------------------------------------------------------------------------------------


async def on_annotations(detail: S3ObjectCreatedDetail, ctx: LabelerContext) -> None:
    key = detail.object.key
    if detail.bucket.name != ctx.media_bucket or detail.object.key_not_utf8:
        log.warning("labeler.ignored_object", bucket=detail.bucket.name)
        return
    parts = key.split("/", 3)
    if len(parts) != 4 or parts[0] != "training" or parts[2] != "annotations":
        log.info("labeler.ignored_object", reason="not under training/<project>/annotations/")
        return
    try:
        project_name = check_project_name(parts[1])
    except ValueError:
        log.info("labeler.ignored_object", reason="invalid project name")
        return
    if not imports.is_annotation_file(key, project_name):
        log.info("labeler.ignored_object", reason="not an annotations file")
        return
    structlog.contextvars.bind_contextvars(project=project_name)
    for batch in await ctx.batches.all(project_name):
        if batch.status is BatchStatus.OPEN and batch.backend is LabelingBackend.IMPORT:
            await check_batch(batch, ctx)


async def _annotation_files(project: str, ctx: LabelerContext) -> list[imports.AnnotationFile]:
    prefix = imports.annotations_prefix(project)
    keys: list[tuple[str, int]] = []
    paginator = ctx.s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=ctx.media_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            keys.append((obj["Key"], int(obj.get("Size", 0))))
    files = [(k, size) for k, size in keys if imports.is_annotation_file(k, project)]
    if len(files) > ctx.settings.max_annotation_files:
        raise LabelingError(
            f"{len(files)} annotations files under {prefix}; the limit is "
            f"{ctx.settings.max_annotation_files}"
        )
    parsed = []
    limit = ctx.settings.max_annotation_bytes
    for key, size in sorted(files):
        if size > limit:
            raise LabelingError(f"annotations file {key} is {size} bytes; the limit is {limit}")
        data = await read_object(ctx.s3, ctx.media_bucket, key, max_bytes=limit)
        seq_labels: dict[str, bytes] = {}
        if posixpath.splitext(key)[1].lower() in (".manifest", ".jsonl"):
            for uri in imports.seq_label_refs(data):
                bucket, seq_key = gt.parse_s3_uri(uri)
                if bucket != ctx.media_bucket or not seq_key.startswith(prefix):
                    raise LabelingError(
                        f"annotations file {key}: SeqLabel {uri} must be under "
                        f"s3://{ctx.media_bucket}/{prefix}"
                    )
                try:
                    seq_labels[uri] = await read_object(ctx.s3, bucket, seq_key, max_bytes=limit)
                except Exception as exc:
                    if error_code(exc) not in ("NoSuchKey", "404"):
                        raise
        parsed.append(imports.parse_file(key, data, seq_labels=seq_labels, max_zip_bytes=limit * 8))
    return parsed


async def _import_result(
    batch: Batch, ctx: LabelerContext
) -> tuple[int, list[ImageAnnotations] | None, str | None]:
    frames = await batch_frames(batch, ctx)
    files = await _annotation_files(batch.project, ctx)
    result = imports.match(files, frames)
    if result.media_without_annotations:
        waiting = ", ".join(result.media_without_annotations[:5])
        note = (
            f"waiting for annotations of {waiting} under "
            f"s3://{ctx.media_bucket}/{imports.annotations_prefix(batch.project)}"
        )
        return len(result.images), None, note
    log.info(
        "import.matched",
        files=result.files,
        labelled=len(result.images),
        unmatched_entries=result.unmatched_entries,
        unlabelled_frames=result.unlabelled_frames,
    )
    return len(result.images), result.images, None


# -- following a batch --------------------------------------------------------------------------


async def schedule_poll(
    batch: Batch, seq: int, ctx: LabelerContext, *, resend: bool = False
) -> None:
    """Send poll ``seq`` (delayed). The batch row's ``poll_seq`` is the one live chain."""
    command = Command(command="poll", project=batch.project, batch_id=batch.batch_id, seq=seq)
    await schedule(
        ctx.projects, batch.project, batch.item, seq,
        sqs=ctx.sqs, queue_url=ctx.queue_url, body=command.model_dump_json(),
        first_seconds=ctx.settings.poll_interval_seconds,
        max_seconds=ctx.settings.poll_max_interval_seconds, resend=resend,
    )  # fmt: skip


async def on_poll(batch: Batch, seq: int, ctx: LabelerContext) -> None:
    if batch.status is not BatchStatus.OPEN:
        return
    action = poll_action(batch.poll_seq, seq)
    if action == "resend":  # a redelivery after the next poll was recorded: send it again
        await schedule_poll(batch, seq + 1, ctx, resend=True)
    if action != "act":
        return
    still_open = await check_batch(batch, ctx)
    if still_open:
        current = await ctx.batches.get(batch.project, batch.batch_id)
        if current is not None and current.status is BatchStatus.OPEN:
            await schedule_poll(current, seq + 1, ctx)


async def check_batch(batch: Batch, ctx: LabelerContext) -> bool:
    """Look at the backend; complete or fail the batch when it is done. True: still open.

    Checks of one project run one at a time in this process (a burst of webhooks is one
    look after another, not a race to publish); across processes the conditional writes
    decide, and an event may go out twice with the same id (consumers dedupe).
    """
    async with ctx.lock(batch.project):
        current = await ctx.batches.get(batch.project, batch.batch_id)
        return await _check_batch(current or batch, ctx)


async def _check_batch(batch: Batch, ctx: LabelerContext) -> bool:
    if batch.status is BatchStatus.COMPLETE:
        await build_dataset(batch, ctx)
        return False
    if batch.status is BatchStatus.FAILED:
        await _finish_failed(batch, ctx)
        return False
    project = await project_settings(batch.project, ctx)
    note: str | None = None
    try:
        if batch.backend is LabelingBackend.LABEL_STUDIO:
            done, images = await _label_studio_result(project, batch, ctx)
        elif batch.backend is LabelingBackend.GROUND_TRUTH:
            done, images = await _ground_truth_result(batch, ctx)
        else:
            done, images, note = await _import_result(batch, ctx)
        if images is not None:  # labels name brands ignoring case; an unknown one fails
            images = datasets.to_brands(images, project.brands)
    except LabelingError as exc:
        await fail_batch(batch, str(exc), ctx)
        return False
    except ls.LabelStudioError as exc:
        log.warning("label_studio.unavailable", error=str(exc))
        return True  # checked again on the next poll or webhook
    if images is None:
        if done != batch.tasks_done or note != batch.note:
            batch = await _progress(batch, done, note, ctx)
        log.info("batch.open", tasks_done=done, tasks=batch.task_count, note=note)
        return True
    await complete_batch(project, batch, images, ctx)
    return False


async def _progress(batch: Batch, done: int, note: str | None, ctx: LabelerContext) -> Batch:
    try:
        batch = await ctx.batches.update(batch, {"tasks_done": done, "note": note})
    except ConflictError:
        return batch
    progress: dict[str, Any] = {"labelled": done, "tasks": batch.task_count}
    if note:
        progress["note"] = note
    for job_id in batch.job_ids:
        await ctx.jobs.set_fields(job_id, {"progress": progress}, only_in=JobStatus.LABELING)
    return batch


async def complete_batch(
    project: Project, batch: Batch, images: list[ImageAnnotations], ctx: LabelerContext
) -> None:
    labels = list(project.brands) or sorted({b.label for i in images for b in i.boxes})
    try:
        text = (
            datasets.labels_manifest(images, labels, f"labeling-job/{batch.batch_id}")
            if labels
            else ""
        )
    except DatasetError as exc:  # the same labels fail every time: say so, do not retry
        await fail_batch(batch, f"the labels are invalid: {exc.describe()}", ctx)
        return
    key = f"{batch_prefix(batch.project, batch.batch_id)}/labels.manifest"
    await ctx.s3.put_object(Bucket=ctx.artifacts_bucket, Key=key, Body=text.encode())
    try:
        batch = await ctx.batches.update(
            batch,
            {
                "status": BatchStatus.COMPLETE.value,
                "labels_key": key,
                "labels_sha": datasets.content_id(text),
                "labelled_images": len(images),
                "box_count": sum(len(i.boxes) for i in images),
                "tasks_done": batch.task_count,
            },
            expect=BatchStatus.OPEN,
        )
    except ConflictError:
        current = await ctx.batches.get(batch.project, batch.batch_id)
        if current is None or current.status is not BatchStatus.COMPLETE:
            return
        batch = current
    log.info("batch.complete", labelled=batch.labelled_images, boxes=batch.box_count)
    await build_dataset(batch, ctx)


async def fail_batch(batch: Batch, reason: str, ctx: LabelerContext) -> None:
    log.warning("batch.failed", reason=reason)
    try:
        batch = await ctx.batches.update(
            batch, {"status": BatchStatus.FAILED.value, "reason": reason}, expect=BatchStatus.OPEN
        )
    except ConflictError:
        current = await ctx.batches.get(batch.project, batch.batch_id)
        if current is None or current.status is not BatchStatus.FAILED:
            return
        batch = current
    await _finish_failed(batch, ctx)


async def _finish_failed(batch: Batch, ctx: LabelerContext, reason: str | None = None) -> None:
    """The batch's jobs FAILED and one LabelingFailed (``reason``: the batch's, by default)."""
    reason = reason or batch.reason or "labelling failed"
    for job_id in batch.job_ids:
        await _job_to(job_id, JobStatus.FAILED, ctx, reason=reason)
    await _publish_batch_event(
        batch,
        LabelingFailed(
            event_id=deterministic_id("LabelingFailed", batch.project, batch.batch_id),
            project=batch.project,
            batch_id=batch.batch_id,
            reason=reason,
        ),
        ctx,
    )


async def _job_to(
    job_id: str, target: JobStatus, ctx: LabelerContext, *, reason: str | None = None
) -> None:
    try:
        await ctx.jobs.transition(job_id, target, reason=reason)
    except InvalidTransitionError as exc:
        if exc.current is not target:
            log.info("job.not_moved", job_id=job_id, current=str(exc.current), target=target.value)


async def _publish_batch_event(batch: Batch, event: Event, ctx: LabelerContext) -> None:
    current = await ctx.batches.get(batch.project, batch.batch_id) or batch
    if event.detail_type() in current.published:
        return
    await ctx.publisher.publish(event)
    await ctx.batches.mark_published(current, event.detail_type())


# -- datasets -----------------------------------------------------------------------------------


async def build_dataset(trigger: Batch, ctx: LabelerContext) -> None:
    """A dataset from every completed batch of the project; DatasetReady or LabelingFailed."""
    project = await project_settings(trigger.project, ctx)
    complete = [
        b for b in await ctx.batches.all(trigger.project) if b.status is BatchStatus.COMPLETE
    ]
    complete.sort(key=lambda b: b.batch_id)
    shas = [f"{b.batch_id}:{b.labels_sha}" for b in complete]
    dataset_id = "ds-" + datasets.content_id(trigger.project, *shas)
    record = await ctx.batches.get_dataset(trigger.project, dataset_id)
    if record is None:
        try:
            record = await _write_dataset(project, dataset_id, complete, ctx)
        except LabelingError as exc:
            reason = str(exc)
            log.warning("dataset.cannot_train", reason=reason)
            await _finish_failed(trigger, ctx, reason)
            return
    for job_id in trigger.job_ids:
        await _job_to(job_id, JobStatus.COMPLETED, ctx)
    if "DatasetReady" not in record.published:
        await ctx.publisher.publish(
            DatasetReady(
                event_id=deterministic_id("DatasetReady", record.project, record.dataset_id),
                project=record.project,
                dataset_id=record.dataset_id,
                train_manifest_uri=record.train_manifest_uri,
                test_manifest_uri=record.test_manifest_uri,
                labels=record.labels,
                train_image_count=record.train_image_count,
                test_image_count=record.test_image_count,
                box_count=record.box_count,
                job_ids=record.job_ids,
            )
        )
        await ctx.batches.mark_dataset_published(record, "DatasetReady")
        log.info("dataset.ready", dataset_id=record.dataset_id, boxes=record.box_count)


async def _write_dataset(
    project: Project, dataset_id: str, batches: list[Batch], ctx: LabelerContext
) -> DatasetRecord:
    images: list[ImageAnnotations] = []
    stamps: dict[str, float] = {}
    for batch in batches:
        if not batch.labels_key:
            continue
        text = await read_object(ctx.s3, ctx.artifacts_bucket, batch.labels_key, max_bytes=1 << 30)
        if text.strip():
            try:
                read = read_ground_truth(text, group_field=GROUP_FIELD)
            except DatasetError as exc:
                raise LabelingError(
                    f"stored labels of {batch.batch_id} are invalid: {exc}"
                ) from None
            images.extend(read.images)
        for frame in await batch_frames(batch, ctx):
            stamps[frame.uri] = frame.timestamp_ms
    # the latest labels of a frame win when batches overlap
    unique = list({i.source_ref: i for i in images}.values())
    built = datasets.build(
        unique,
        stamps,
        project.brands,
        dataset_id=dataset_id,
        min_boxes_per_label=ctx.settings.min_boxes_per_label,
        test_fraction=ctx.settings.test_fraction,
        split_block_seconds=ctx.settings.split_block_seconds,
        split_min_videos=ctx.settings.split_min_videos,
    )
    prefix = f"datasets/{project.project}/{dataset_id}"
    job_name = f"labeling-job/{dataset_id}"
    files = {
        f"{prefix}/train.manifest": datasets.manifest_text(built.train, job_name),
        f"{prefix}/test.manifest": datasets.manifest_text(built.test, job_name),
        f"{prefix}/statistics.json": datasets.statistics_json(built),
    }
    for key, body in files.items():
        await ctx.s3.put_object(Bucket=ctx.artifacts_bucket, Key=key, Body=body.encode())
    job_ids = sorted({j for b in batches for j in b.job_ids})
    record = DatasetRecord(
        project=project.project,
        dataset_id=dataset_id,
        batch_ids=[b.batch_id for b in batches],
        job_ids=job_ids,
        labels=built.labels,
        train_manifest_uri=f"s3://{ctx.artifacts_bucket}/{prefix}/train.manifest",
        test_manifest_uri=f"s3://{ctx.artifacts_bucket}/{prefix}/test.manifest",
        statistics_uri=f"s3://{ctx.artifacts_bucket}/{prefix}/statistics.json",
        train_image_count=len(built.train.images),
        test_image_count=len(built.test.images),
        box_count=built.box_count,
    )
    return await ctx.batches.put_dataset(record)
