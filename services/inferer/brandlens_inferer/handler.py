"""The inferer's work: frame batches through DetectCustomLabels, then one aggregation.

Messages on the inferer queue:

- ``FrameBatch`` (from the framer, straight to SQS): the batch's job takes or renews its
  lease on the model; while the model does not run, the batch is sent back with a delay
  (a new message, so waiting never uses up receives) and the model-manager is asked to
  start it; once it runs, every frame is sent to DetectCustomLabels at an adaptive rate
  and the batch's detections are written under a deterministic key, then counted once.
- ``FramesExtracted`` (analysis): framing is over and the job row knows its batch count.

The first of them to find the job FRAMED moves it to ANALYZING (a conditional write), with
the framing's final figures as its progress. Whichever comes last finds every batch
counted and claims the job's aggregation (a conditional write: one runs); it writes the
summary, completes the job (progress: every frame analysed), publishes
``AnalysisCompleted`` and releases the lease.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandlens_core.aws import Client, error_code
from brandlens_core.envelopes import InvalidMessageError, parse_envelope
from brandlens_core.events import (
    AnalysisCompleted,
    AnalysisFailed,
    FramesExtracted,
    Purpose,
    deterministic_id,
    parse_event,
)
from brandlens_core.jobs import (
    InvalidTransitionError,
    Job,
    JobNotFoundError,
    JobStatus,
    JobStore,
    framed_progress,
    publish_once,
)
from brandlens_core.logging import get_logger
from brandlens_core.messages import FrameBatch, FrameRef
from brandlens_core.projects import ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.runtime import ModelRuntimeStatus, RuntimeStore
from brandlens_inferer.aggregate import Summary, timecode
from brandlens_inferer.aggregate import aggregate as build_summary
from brandlens_inferer.limiter import AdaptiveLimiter
from brandlens_inferer.report import render as render_report
from brandlens_inferer.settings import InfererSettings
from brandlens_inferer.thumbnails import draw_proof, gallery_key, thumbnail_key

log = get_logger(__name__)

SOURCE = "brandlens.inferer"
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException"})
NOT_RUNNING = frozenset({"ResourceNotReadyException"})
# no answer at all from the model's endpoint: refused, reset, timed out
UNREACHABLE = (botocore.exceptions.ConnectionError, botocore.exceptions.ReadTimeoutError)


# Framing is over and batches are (being) analysed: FRAMED until the inferer first sees the
# job framed (it then moves it to ANALYZING), ANALYZING after.
CHECKED = frozenset({JobStatus.FRAMED, JobStatus.ANALYZING})


class ModelNotRunningError(Exception):
    """The model stopped (or is not ready) while a batch was on its way."""


class AnalysisError(Exception):
    """The job cannot be analysed; the reason is for the user."""


class JobCheck(BaseModel):
    """Sent by the inferer to itself, delayed: is this framed job still missing batches?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_job_id: str = Field(min_length=1, max_length=200)
    round: int = Field(ge=1)
    batches_done: int = Field(ge=0, description="counted at the previous check")
    running: bool = Field(False, description="the model was running at the previous check")


@dataclass(frozen=True)
class Message:
    batch: FrameBatch | None = None
    waited_seconds: float = 0.0
    framed: FramesExtracted | None = None
    check: JobCheck | None = None


def decode(body: str) -> Message:
    try:
        raw: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(f"message body is not JSON: {exc.msg}") from exc
    if isinstance(raw, dict) and "check_job_id" in raw:
        try:
            return Message(check=JobCheck.model_validate(raw))
        except ValidationError as exc:
            raise InvalidMessageError(f"invalid job check: {exc}") from exc
    if isinstance(raw, dict) and "batch_id" in raw:
        try:
            waited = float(raw.get("waited_seconds", 0.0))
            return Message(batch=FrameBatch.model_validate(raw), waited_seconds=waited)
        except (ValidationError, TypeError, ValueError) as exc:
            raise InvalidMessageError(f"invalid frame batch: {exc}") from exc
    envelope = parse_envelope(body)
    try:
        event = parse_event(envelope.detail_type, envelope.detail)
    except ValueError as exc:
        raise InvalidMessageError(str(exc)) from exc
    if not isinstance(event, FramesExtracted):
        raise InvalidMessageError(f"the inferer takes frame batches, not {envelope.detail_type}")
    return Message(framed=event)


def message_key(message: Message) -> str | None:
    # Batches are idempotent by their deterministic keys and once-only counting; a
    # requeued batch is the same batch, so no record is kept (it would drop the requeue).
    return None


@dataclass
class InfererContext:
    s3: Client
    sqs: Client
    rekognition: Client
    jobs: JobStore
    projects: ProjectStore
    runtime: RuntimeStore
    publisher: EventPublisher
    queue_url: str
    manager_queue_url: str
    artifacts_bucket: str
    settings: InfererSettings
    limiters: dict[str, tuple[float | None, AdaptiveLimiter]] = field(default_factory=dict)

    def limiter(self, model: str, started_at: float | None, units: int) -> AdaptiveLimiter:
        """One adaptive rate per model run (a restarted model starts from its capacity)."""
        known = self.limiters.get(model)
        if known is not None and known[0] == started_at:
            return known[1]
        limiter = AdaptiveLimiter(
            rate=units * self.settings.rate_per_inference_unit,
            min_rate=self.settings.min_rate,
            max_rate=self.settings.max_rate,
            max_in_flight=self.settings.max_in_flight_frames,
            decrease=self.settings.rate_decrease,
        )
        self.limiters[model] = (started_at, limiter)
        return limiter


async def handle(message: Message, ctx: InfererContext) -> None:
    if message.framed is not None:
        if message.framed.purpose is Purpose.ANALYSIS:
            structlog.contextvars.bind_contextvars(job_id=message.framed.job_id)
            if not await maybe_complete(message.framed.job_id, ctx):
                await schedule_check(message.framed.job_id, 1, 0, ctx)
        return
    if message.check is not None:
        structlog.contextvars.bind_contextvars(job_id=message.check.check_job_id)
        await check_job(message.check, ctx)
        return
    assert message.batch is not None
    await on_batch(message.batch, message.waited_seconds, ctx)


async def _model_for(job: Job, ctx: InfererContext) -> str:
    if job.model_arn:
        return job.model_arn
    project = await ctx.projects.find_project(job.project or "")
    if project is None or not project.current_model_arn:
        raise AnalysisError(
            f"project {job.project!r} has no trained model yet: label training media and "
            f"train one (brandlens train {job.project})"
        )
    # every batch of the job uses the model the first one found
    return str(await ctx.jobs.claim_field(job.job_id, "model_arn", project.current_model_arn))


async def on_batch(batch: FrameBatch, waited: float, ctx: InfererContext) -> None:
    structlog.contextvars.bind_contextvars(job_id=batch.job_id, batch=batch.batch_index)
    try:
        job = await ctx.jobs.get(batch.job_id)
    except JobNotFoundError:
        raise InvalidMessageError(f"batch {batch.batch_id} names an unknown job") from None
    if job.terminal:
        log.info("batch.job_already_ended", status=job.status.value)
        return
    try:
        model = await _model_for(job, ctx)
    except AnalysisError as exc:
        await fail_job(job, str(exc), ctx, model=None)
        return
    await ctx.runtime.acquire(model, job.job_id, ctx.settings.lease_seconds, job.project)
    state = await ctx.runtime.state(model)
    if state.status is ModelRuntimeStatus.FAILED:
        await fail_job(job, f"the model cannot run: {state.reason}", ctx, model=model)
        return
    if state.status is not ModelRuntimeStatus.RUNNING:
        await wait_for_model(batch, waited, model, job, ctx)
        return
    limiter = ctx.limiter(model, state.started_at, state.inference_units)
    try:
        frames = await asyncio.gather(
            *(detect(f, batch, model, limiter, ctx) for f in batch.frames)
        )
    except ModelNotRunningError:
        await wait_for_model(batch, waited, model, job, ctx)
        return
    key = detections_key(batch.job_id, batch.batch_index)
    body = {"batch_id": batch.batch_id, "model": model, "frames": frames}
    await ctx.s3.put_object(
        Bucket=ctx.artifacts_bucket, Key=key, Body=json.dumps(body).encode(),
        ContentType="application/json",
    )  # fmt: skip
    counted = await ctx.jobs.count_batch(batch.job_id, batch.batch_id)
    log.info("batch.analysed", frames=len(frames), counted=counted, rate=round(limiter.rate, 2))
    await maybe_complete(batch.job_id, ctx)


def detections_key(job_id: str, batch_index: int) -> str:
    return f"detections/{job_id}/{batch_index:06d}.json"


async def wait_for_model(
    batch: FrameBatch, waited: float, model: str, job: Job, ctx: InfererContext
) -> None:
    """Ask for the model and send the batch back for later (nothing waits in memory)."""
    if waited >= ctx.settings.max_wait_seconds:
        await fail_job(
            job, f"the model did not run within {ctx.settings.max_wait_seconds:g} s", ctx,
            model=model,
        )  # fmt: skip
        return
    await ctx.sqs.send_message(
        QueueUrl=ctx.manager_queue_url,
        MessageBody=json.dumps(
            {"command": "ensure", "model": model, "project": job.project, "holder": job.job_id}
        ),
    )
    delay = ctx.settings.wait_delay_seconds
    body = batch.model_dump(mode="json") | {"waited_seconds": waited + delay}
    await ctx.sqs.send_message(
        QueueUrl=ctx.queue_url, MessageBody=json.dumps(body), DelaySeconds=delay
    )
    log.info("batch.waits_for_model", waited_s=waited + delay)


async def detect(
    frame: FrameRef, batch: FrameBatch, model: str, limiter: AdaptiveLimiter, ctx: InfererContext
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProjectVersionArn": model,
        "Image": {"S3Object": {"Bucket": batch.artifacts_bucket, "Name": frame.key}},
    }
    if ctx.settings.min_confidence is not None:
        request["MinConfidence"] = ctx.settings.min_confidence
    for attempt in range(1, ctx.settings.max_attempts_per_frame + 1):
        async with limiter.slot():
            try:
                response = await ctx.rekognition.detect_custom_labels(**request)
            except UNREACHABLE as exc:
                # the model's endpoint is down or restarting (a model-server being replaced):
                # wait for it like for a stopped model, without using up the batch's receives
                raise ModelNotRunningError(f"the model's endpoint is unreachable: {exc}") from None
            except Exception as exc:
                code = error_code(exc)
                if code in NOT_RUNNING:
                    raise ModelNotRunningError(str(exc)) from None
                if code not in THROTTLED:
                    raise
                limiter.on_throttle()
                throttled = True
            else:
                limiter.on_success()
                throttled = False
        if not throttled:
            return {
                "index": frame.index,
                "key": frame.key,
                "timestamp_ms": frame.timestamp_ms,
                "width": frame.width,
                "height": frame.height,
                "labels": [_label(x) for x in response.get("CustomLabels", [])],
            }
        await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
    raise RuntimeError(
        f"frame {frame.index} throttled {ctx.settings.max_attempts_per_frame} times in a row"
    )


def _label(label: dict[str, Any]) -> dict[str, Any]:
    box = (label.get("Geometry") or {}).get("BoundingBox")
    out: dict[str, Any] = {"name": label.get("Name"), "confidence": label.get("Confidence")}
    if box:
        out["box"] = {k.lower(): box.get(k) for k in ("Left", "Top", "Width", "Height")}
    return out


async def schedule_check(
    job_id: str, round_: int, batches_done: int, ctx: InfererContext, *, running: bool = False
) -> None:
    check = JobCheck(check_job_id=job_id, round=round_, batches_done=batches_done, running=running)
    await ctx.sqs.send_message(
        QueueUrl=ctx.queue_url,
        MessageBody=check.model_dump_json(),
        DelaySeconds=ctx.settings.check_interval_seconds,
    )


async def check_job(check: JobCheck, ctx: InfererContext) -> None:
    """A framed job not finished: re-send batches that are gone, or fail it after the last
    check. Batch messages wait in the queue while their model starts, so a batch counts as
    gone only when its model ran at this check and the last one and no batch of the job was
    counted in between.
    (SQS keeps messages, but one moved to the DLQ, or purged, would strand the job.)"""
    job = await ctx.jobs.get(check.check_job_id)
    if job.terminal or await maybe_complete(job.job_id, ctx):
        return
    job = await ctx.jobs.get(job.job_id)  # maybe_complete may have moved it to ANALYZING
    batch_count = job.framing.get("batch_count")
    if job.status not in CHECKED or not isinstance(batch_count, int):
        return  # not framed yet (FramesExtracted schedules the first check) or not ours
    missing = await _missing_batches(job, ctx)
    if check.round >= ctx.settings.max_checks:
        await fail_job(
            job,
            f"{len(missing)} of {batch_count} frame batches were not analysed after "
            f"{check.round} checks {ctx.settings.check_interval_seconds} s apart",
            ctx,
            model=job.model_arn,
        )
        return
    state = await ctx.runtime.state(job.model_arn) if job.model_arn else None
    running = state is not None and state.status is ModelRuntimeStatus.RUNNING
    if missing and running and check.running and job.batches_done == check.batches_done:
        for batch in missing:
            await ctx.sqs.send_message(QueueUrl=ctx.queue_url, MessageBody=batch.model_dump_json())
        log.warning(
            "job.batches_resent", batches=[b.batch_index for b in missing], round=check.round
        )
    await schedule_check(job.job_id, check.round + 1, job.batches_done, ctx, running=running)


async def _missing_batches(job: Job, ctx: InfererContext) -> list[FrameBatch]:
    """The job's batches not counted yet, rebuilt from the framer's manifest."""
    size = job.framing.get("batch_size_frames")
    if not isinstance(size, int) or size < 1:
        return []  # framed before the batch size was recorded: nothing to rebuild from
    counted = await ctx.jobs.counted_batches(job.job_id)
    text = (await _artifact(ctx, str(job.framing["manifest_key"]))).decode()
    groups: dict[int, list[FrameRef]] = {}
    for line in text.splitlines():
        if line.strip():
            frame = FrameRef.model_validate_json(line)
            groups.setdefault(frame.index // size, []).append(frame)
    return [
        FrameBatch(
            batch_id=FrameBatch.make_id(job.job_id, b),
            batch_index=b,
            job_id=job.job_id,
            project=job.project or "",
            artifacts_bucket=ctx.artifacts_bucket,
            frames=frames,
        )
        for b, frames in sorted(groups.items())
        if FrameBatch.make_id(job.job_id, b) not in counted
    ]


async def start_analysing(job: Job, ctx: InfererContext) -> Job:
    """FRAMED -> ANALYZING (an analysis job whose framing is over), once; the row as it is."""
    if job.status is not JobStatus.FRAMED or job.purpose is not Purpose.ANALYSIS:
        return job
    try:
        return await ctx.jobs.transition(
            job.job_id, JobStatus.ANALYZING, fields={"progress": framed_progress(job)}
        )
    except InvalidTransitionError:
        return await ctx.jobs.get(job.job_id)  # moved by another worker, or failed


async def maybe_complete(job_id: str, ctx: InfererContext) -> bool:
    """Aggregate once every batch is counted and framing is over (exactly one runs).
    True when the job is over (terminal, or aggregated here or by another worker)."""
    job = await start_analysing(await ctx.jobs.get(job_id), ctx)
    if job.terminal:
        return True
    if job.status not in CHECKED:
        return False
    batch_count = job.framing.get("batch_count")
    if not isinstance(batch_count, int) or job.batches_done < batch_count:
        return False
    now = time.time()
    if not await ctx.jobs.claim_aggregation(
        job_id, now, now - ctx.settings.aggregation_claim_seconds
    ):
        return False  # another worker aggregates; if it died, a later check takes over
    summary, thumbnails = await aggregate(job, ctx)
    key = f"results/{job_id}/summary.json"
    await ctx.s3.put_object(
        Bucket=ctx.artifacts_bucket, Key=key,
        Body=summary.model_dump_json(indent=2).encode(), ContentType="application/json",
    )  # fmt: skip
    report_key = f"results/{job_id}/report.html"
    html = await asyncio.to_thread(render_report, summary, thumbnails)
    await ctx.s3.put_object(
        Bucket=ctx.artifacts_bucket, Key=report_key, Body=html.encode(),
        ContentType="text/html; charset=utf-8",
    )  # fmt: skip
    progress = framed_progress(job) | {"frames_analysed": summary.frame_count}
    try:
        job = await ctx.jobs.transition(
            job_id,
            JobStatus.COMPLETED,
            fields={"summary_key": key, "report_key": report_key, "progress": progress},
        )
    except InvalidTransitionError:
        job = await ctx.jobs.get(job_id)
        if job.status is not JobStatus.COMPLETED:
            return True  # failed meanwhile
    await publish_once(
        ctx.jobs,
        ctx.publisher,
        job,
        AnalysisCompleted(
            event_id=deterministic_id("AnalysisCompleted", job_id),
            job_id=job_id,
            project=job.project or "",
            summary_key=key,
            report_key=report_key,
            frame_count=summary.frame_count,
            brands=sorted(summary.brands),
        ),
    )
    if job.model_arn:
        await ctx.runtime.release(job.model_arn, job_id)
    log.info("job.analysed", frames=summary.frame_count, brands=sorted(summary.brands))
    return True


async def aggregate(job: Job, ctx: InfererContext) -> tuple[Summary, dict[str, bytes]]:
    """The job's summary from the detections of every batch counted (see :mod:`.aggregate`).
    The counted ids, not 0..batch_count-1: batch b holds the samples with index // batch
    size == b, and a batch none of whose frames decoded is never sent, leaving a gap."""
    counted = await ctx.jobs.counted_batches(job.job_id)
    indices = sorted(
        i for i in (FrameBatch.index_of(job.job_id, b) for b in counted) if i is not None
    )
    frames: dict[int, dict[str, Any]] = {}
    for index in indices:
        response = await ctx.s3.get_object(
            Bucket=ctx.artifacts_bucket, Key=detections_key(job.job_id, index)
        )
        async with response["Body"] as body:
            data = json.loads(await body.read())
        for frame in data["frames"]:
            frames[int(frame["index"])] = frame  # a frame counts once, whatever happened
    summary = build_summary(
        list(frames.values()),
        job_id=job.job_id,
        project=job.project,
        model=job.model_arn,
        media_kind=str(job.media.get("kind") or "video"),
        settings=ctx.settings.aggregation(),
    )
    thumbnails: dict[str, bytes] = {}
    if summary.images:  # an image: a gallery with every box drawn stands for the proofs
        for image in summary.images:
            jpeg = await _artifact(ctx, image.key)
            drawn = await asyncio.to_thread(
                draw_proof, jpeg, image.labels, _gallery_caption(image.labels), name_boxes=True
            )
            key = gallery_key(job.job_id, image.frame_index)
            await ctx.s3.put_object(
                Bucket=ctx.artifacts_bucket, Key=key, Body=drawn, ContentType="image/jpeg"
            )
            image.thumbnail_key = key
            thumbnails[key] = drawn
        return summary, thumbnails
    for brand, stats in summary.brands.items():
        for number, appearance in enumerate(stats.appearances):
            frame = frames[appearance.proof_frame_index]
            own = [x for x in frame["labels"] if x.get("name") == brand]
            jpeg = await _artifact(ctx, frame["key"])
            caption = f"{brand}  {timecode(float(frame['timestamp_ms']))}"
            proof = await asyncio.to_thread(draw_proof, jpeg, own, caption)
            key = thumbnail_key(job.job_id, brand, number)
            await ctx.s3.put_object(
                Bucket=ctx.artifacts_bucket, Key=key, Body=proof, ContentType="image/jpeg"
            )
            appearance.proof_thumbnail_key = key
            thumbnails[key] = proof
    return summary, thumbnails


async def _artifact(ctx: InfererContext, key: str) -> bytes:
    response = await ctx.s3.get_object(Bucket=ctx.artifacts_bucket, Key=key)
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


def _gallery_caption(labels: list[dict[str, Any]]) -> str:
    names = sorted({str(x.get("name")) for x in labels})
    return ", ".join(names) if names else "no brand found"


async def fail_job(job: Job, reason: str, ctx: InfererContext, *, model: str | None) -> None:
    log.warning("job.analysis_failed", reason=reason)
    try:
        job = await ctx.jobs.transition(job.job_id, JobStatus.FAILED, reason=reason)
    except InvalidTransitionError:
        job = await ctx.jobs.get(job.job_id)
        if job.status is not JobStatus.FAILED:
            return
    await publish_once(
        ctx.jobs,
        ctx.publisher,
        job,
        AnalysisFailed(
            event_id=deterministic_id("AnalysisFailed", job.job_id),
            job_id=job.job_id,
            project=job.project or "",
            reason=job.reason or reason,
        ),
    )
    if model:
        await ctx.runtime.release(model, job.job_id)
