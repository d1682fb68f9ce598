"""Framer: an accepted media object becomes frames, a frame manifest and, for
analysis jobs, frame batches on the inferer's queue while extraction runs.

Keys are deterministic (``frames/<job>/<index>.jpg``, ``frames/<job>/manifest.jsonl``)
and batch ids too, so a retried job overwrites what it wrote and the
inferer drops batches it has already seen.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from PIL import Image, ImageOps

from brandlens_core.aws import Client
from brandlens_core.envelopes import CatalogEvent
from brandlens_core.events import (
    FramesExtracted,
    FramingFailed,
    MediaAccepted,
    MediaRef,
    Purpose,
    deterministic_id,
)
from brandlens_core.images import to_rgb
from brandlens_core.jobs import InvalidTransitionError, Job, JobStatus, JobStore, publish_once
from brandlens_core.logging import get_logger
from brandlens_core.messages import FrameBatch, FrameRef
from brandlens_core.publisher import EventPublisher
from brandlens_framer import plan as planning
from brandlens_framer.extract import Extractor, Frame, OutputOptions
from brandlens_framer.probe import VideoInfo, probe
from brandlens_framer.scene import scene_candidates
from brandlens_framer.settings import FramerSettings, SamplingMode
from brandlens_framer.timecode import smpte
from brandlens_framer.tools import FramingError, Tools

log = get_logger(__name__)

PROGRESS_EVERY_SECONDS = 5.0
# The inferer counts each analysed batch id on the job row (a string set of ~35-byte
# ids); DynamoDB refuses an item over 400 KB, so a job may have at most this many.
MAX_BATCHES_PER_JOB = 8000


@dataclass
class FramerContext:
    s3: Client
    sqs: Client
    jobs: JobStore
    publisher: EventPublisher
    artifacts_bucket: str
    inferer_queue_url: str
    settings: FramerSettings
    tools: Tools


@dataclass
class FramingResult:
    frame_count: int
    batch_count: int
    manifest_key: str
    details: dict[str, Any] = field(default_factory=dict)


def frame_key(job_id: str, index: int) -> str:
    return f"frames/{job_id}/{index:06d}.jpg"


def manifest_key(job_id: str) -> str:
    return f"frames/{job_id}/manifest.jsonl"


async def handle(message: CatalogEvent, ctx: FramerContext) -> None:
    event = message.event
    if not isinstance(event, MediaAccepted):  # the decoder only lets MediaAccepted through
        raise TypeError(f"framer got {type(event).__name__}")
    structlog.contextvars.bind_contextvars(job_id=event.job_id)
    job = await ctx.jobs.get(event.job_id)
    if job.status is JobStatus.ACCEPTED:
        try:
            job = await ctx.jobs.transition(job.job_id, JobStatus.FRAMING)
        except InvalidTransitionError:
            job = await ctx.jobs.get(event.job_id)
    if job.status is not JobStatus.FRAMING:
        await _publish_outcome(job, ctx)  # done before: only finish what may be missing
        return
    started = time.monotonic()
    log.info("framing.started", media_kind=event.media.kind, key=event.media.key)
    try:
        result = await frame_media(event, ctx)
    except FramingError as failure:
        log.warning("framing.failed", reason=failure.reason)
        try:
            job = await ctx.jobs.transition(job.job_id, JobStatus.FAILED, reason=failure.reason)
        except InvalidTransitionError:
            job = await ctx.jobs.get(event.job_id)
        await _publish_outcome(job, ctx)
        return
    framing = {
        "frame_count": result.frame_count,
        "batch_count": result.batch_count,
        "batch_size_frames": ctx.settings.batch_size_frames,  # batch b: index // size == b
        "manifest_key": result.manifest_key,
        "artifacts_bucket": ctx.artifacts_bucket,
        **result.details,
    }
    try:
        job = await ctx.jobs.transition(job.job_id, JobStatus.FRAMED, fields={"framing": framing})
    except InvalidTransitionError:
        job = await ctx.jobs.get(event.job_id)
    log.info(
        "framing.done",
        frames=result.frame_count,
        batches=result.batch_count,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    await _publish_outcome(job, ctx)


async def _publish_outcome(job: Job, ctx: FramerContext) -> None:
    if job.project is None or job.purpose is None:
        return
    event: FramesExtracted | FramingFailed
    if job.status is JobStatus.FAILED and not job.framing and "MediaAccepted" in job.published:
        event = FramingFailed(
            event_id=deterministic_id(job.job_id, FramingFailed.detail_type()),
            job_id=job.job_id,
            project=job.project,
            purpose=job.purpose,
            reason=job.reason or "framing failed",
        )
    elif job.framing:
        event = FramesExtracted(
            event_id=deterministic_id(job.job_id, FramesExtracted.detail_type()),
            job_id=job.job_id,
            project=job.project,
            purpose=job.purpose,
            artifacts_bucket=str(job.framing["artifacts_bucket"]),
            manifest_key=str(job.framing["manifest_key"]),
            frame_count=int(job.framing["frame_count"]),
            batch_count=int(job.framing["batch_count"]),
        )
    else:
        return
    await publish_once(ctx.jobs, ctx.publisher, job, event)


# -- framing ----------------------------------------------------------------------


class _Sink:
    """Uploads frames with bounded concurrency, writes batches as they fill up."""

    def __init__(self, event: MediaAccepted, ctx: FramerContext, planned: int) -> None:
        self.event = event
        self.ctx = ctx
        self.planned = planned
        self.batch_size = ctx.settings.batch_size_frames
        self.lines: dict[int, dict[str, Any]] = {}
        self.batches: dict[int, dict[int, FrameRef]] = {}
        self.sent_batches: set[int] = set()
        self._slots = asyncio.Semaphore(ctx.settings.upload_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_progress = time.monotonic()
        self.streaming = event.purpose is Purpose.ANALYSIS

    async def add(self, index: int, jpeg: bytes, line: dict[str, Any]) -> None:
        await self._slots.acquire()  # backpressure: at most N uploads in flight
        task = asyncio.create_task(self._upload(index, jpeg, line))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await self._raise_failures()
        await self._progress()

    async def _upload(self, index: int, jpeg: bytes, line: dict[str, Any]) -> None:
        try:
            await self.ctx.s3.put_object(
                Bucket=self.ctx.artifacts_bucket,
                Key=line["key"],
                Body=jpeg,
                ContentType="image/jpeg",
            )
        finally:
            self._slots.release()
        self.lines[index] = line
        if self.streaming:
            b = index // self.batch_size
            self.batches.setdefault(b, {})[index] = FrameRef(
                index=index,
                key=line["key"],
                timestamp_ms=line["timestamp_ms"],
                width=line["width"],
                height=line["height"],
            )
            expected = min(self.batch_size, self.planned - b * self.batch_size)
            if len(self.batches[b]) == expected:
                await self._send_batch(b)

    async def _raise_failures(self) -> None:
        for task in [t for t in self._tasks if t.done()]:
            task.result()

    async def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            await self.ctx.jobs.set_fields(
                self.event.job_id,
                {"progress": {"frames_done": len(self.lines), "frames_planned": self.planned}},
                only_in=JobStatus.FRAMING,
            )
            log.info("framing.progress", frames_done=len(self.lines), frames_planned=self.planned)

    async def _send_batch(self, b: int) -> None:
        if b in self.sent_batches or not self.batches.get(b):
            return
        self.sent_batches.add(b)
        frames = [self.batches[b][i] for i in sorted(self.batches[b])]
        batch = FrameBatch(
            batch_id=FrameBatch.make_id(self.event.job_id, b),
            batch_index=b,
            job_id=self.event.job_id,
            project=self.event.project,
            artifacts_bucket=self.ctx.artifacts_bucket,
            frames=frames,
        )
        await self.ctx.sqs.send_message(
            QueueUrl=self.ctx.inferer_queue_url, MessageBody=batch.model_dump_json()
        )

    async def finish(self) -> tuple[list[dict[str, Any]], int]:
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
        if self.streaming:  # batches with a frame that never came out
            for b in sorted(self.batches):
                await self._send_batch(b)
        return [self.lines[i] for i in sorted(self.lines)], len(self.sent_batches)

    async def abort(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def frame_media(event: MediaAccepted, ctx: FramerContext) -> FramingResult:
    if event.media.kind == "image":
        return await _frame_image(event, ctx)
    return await _frame_video(event, ctx)


def _source(media: MediaRef) -> dict[str, Any]:
    return {"bucket": media.bucket, "key": media.key, "version_id": media.version_id}


async def _frame_video(event: MediaAccepted, ctx: FramerContext) -> FramingResult:
    settings = ctx.settings
    params: dict[str, Any] = {"Bucket": event.media.bucket, "Key": event.media.key}
    if event.media.version_id:
        params["VersionId"] = event.media.version_id
    url = await ctx.s3.generate_presigned_url(
        "get_object", Params=params, ExpiresIn=settings.presign_expiry_seconds
    )
    video = await probe(url, ctx.tools, max_duration_seconds=settings.max_duration_seconds)
    samples, interval = await _samples(url, video, event.purpose, ctx)
    if not samples:
        raise FramingError("no frame could be sampled from the video")
    batches = math.ceil(len(samples) / settings.batch_size_frames)
    if event.purpose is Purpose.ANALYSIS and batches > MAX_BATCHES_PER_JOB:
        raise FramingError(
            f"sampling would produce {len(samples)} frames in {batches} batches of "
            f"{settings.batch_size_frames}, above the {MAX_BATCHES_PER_JOB} batches one job can "
            "count; raise BRANDLENS_FRAMER_BATCH_SIZE_FRAMES or the sampling interval"
        )
    the_plan = planning.plan(video, samples, interval)
    log.info(
        "framing.planned",
        codec=video.codec,
        width=video.width,
        height=video.height,
        rotation=video.rotation,
        fps=round(video.fps, 3),
        duration_s=round(video.duration_seconds, 3),
        keyframe_interval_s=round(video.keyframe_interval_seconds, 3),
        **the_plan.describe(),
    )
    extractor = Extractor(ctx.tools, OutputOptions(settings.longest_side_px, settings.jpeg_quality))
    sink = _Sink(event, ctx, planned=len(samples))
    try:
        async for frame in extractor.frames(url, video, the_plan):
            await sink.add(frame.sample.index, frame.jpeg, _line(event, video, frame))
        lines, batches = await sink.finish()
    except BaseException:
        await sink.abort()
        raise
    if not lines:
        raise FramingError("ffmpeg decoded no frames from the video; it may be corrupt")
    missing = len(samples) - len(lines)
    if missing:
        # A partly corrupt video: what decoded is kept, the gap is recorded on the job.
        log.warning("framing.frames_missing", missing=missing, planned=len(samples))
    key = await _write_manifest(event, ctx, lines)
    return FramingResult(
        frame_count=len(lines),
        batch_count=batches,
        manifest_key=key,
        details={
            "strategy": the_plan.strategy.value,
            "frames_planned": len(samples),
            "frames_missing": missing,
            "duration_seconds": round(video.duration_seconds, 6),
            "fps": round(video.fps, 6),
            "codec": video.codec,
            "rotation": video.rotation,
        },
    )


async def _samples(
    url: str, video: VideoInfo, purpose: Purpose, ctx: FramerContext
) -> tuple[list[planning.Sample], float | None]:
    s = ctx.settings
    mode = s.analysis_mode if purpose is Purpose.ANALYSIS else s.training_mode
    cap = s.max_frames if purpose is Purpose.ANALYSIS else s.training_max_frames
    interval: float | None = None
    if mode is SamplingMode.INTERVAL:
        ms = s.analysis_interval_ms if purpose is Purpose.ANALYSIS else s.training_interval_ms
        interval = ms / 1000
        targets = planning.interval_targets(video, interval)
    elif mode is SamplingMode.FPS:
        interval = 1 / s.analysis_fps
        targets = planning.interval_targets(video, interval)
    elif mode is SamplingMode.KEYFRAMES:
        targets = planning.keyframe_targets(video)
    else:
        candidates = await scene_candidates(
            url, ctx.tools, threshold=s.scene_threshold, width_px=s.scene_analysis_width_px
        )
        relative = [(t - video.start_seconds, score) for t, score in candidates]
        targets = planning.spread_evenly(relative, video.duration_seconds, cap)
    if len(targets) > cap:
        if purpose is Purpose.ANALYSIS:
            raise FramingError(
                f"sampling would produce {len(targets)} frames, above the limit of {cap}; "
                "raise the interval or BRANDLENS_FRAMER_MAX_FRAMES"
            )
        step = len(targets) / cap  # training: spread the cap over the whole video
        targets = [targets[math.floor(i * step)] for i in range(cap)]
        interval = None
    return planning.choose(video, targets, cap), interval


def _line(event: MediaAccepted, video: VideoInfo, frame: Frame) -> dict[str, Any]:
    seconds = frame.pts - video.start_seconds
    return {
        "index": frame.sample.index,
        "key": frame_key(event.job_id, frame.sample.index),
        "timestamp_ms": round(seconds * 1000, 3),
        "timecode": smpte(seconds, video.fps),
        "target_ms": round(frame.sample.target_seconds * 1000, 3),
        "keyframe": frame.sample.is_keyframe,
        "width": frame.width,
        "height": frame.height,
        "source": _source(event.media),
        "source_frame": frame.sample.source_frame,
        "source_width": video.width,
        "source_height": video.height,
    }


async def _write_manifest(
    event: MediaAccepted, ctx: FramerContext, lines: list[dict[str, Any]]
) -> str:
    key = manifest_key(event.job_id)
    body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    await ctx.s3.put_object(
        Bucket=ctx.artifacts_bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson"
    )
    return key


async def _frame_image(event: MediaAccepted, ctx: FramerContext) -> FramingResult:
    settings = ctx.settings
    if event.media.size_bytes > settings.max_image_bytes:
        raise FramingError(
            f"the image is {event.media.size_bytes} bytes, above the framer's limit of "
            f"{settings.max_image_bytes} bytes"
        )
    params: dict[str, Any] = {"Bucket": event.media.bucket, "Key": event.media.key}
    if event.media.version_id:
        params["VersionId"] = event.media.version_id
    response = await ctx.s3.get_object(**params)
    async with response["Body"] as body:
        data: bytes = await body.read()
    image = await asyncio.to_thread(
        _normalise_image, data, settings.longest_side_px, settings.jpeg_quality
    )
    line = {
        "index": 0,
        "key": frame_key(event.job_id, 0),
        "timestamp_ms": 0.0,
        "timecode": "00:00:00:00",
        "target_ms": 0.0,
        "keyframe": True,
        "width": image.width,
        "height": image.height,
        "source": _source(event.media),
        "source_frame": 0,
        "source_width": image.source_width,
        "source_height": image.source_height,
    }
    sink = _Sink(event, ctx, planned=1)
    await sink.add(0, image.jpeg, line)
    lines, batches = await sink.finish()
    key = await _write_manifest(event, ctx, lines)
    return FramingResult(
        frame_count=1, batch_count=batches, manifest_key=key, details={"strategy": "image"}
    )


_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class NormalisedImage:
    jpeg: bytes
    width: int
    height: int
    source_width: int  # upright, before scaling
    source_height: int


def _normalise_image(data: bytes, longest_side: int, quality: int) -> NormalisedImage:
    """EXIF orientation applied, RGB (transparent pixels on white), scaled, as JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width  # the upright picture is turned a quarter
            img.draft("RGB", (longest_side, longest_side))  # fast JPEG downscale on decode
            upright = ImageOps.exif_transpose(img) or img
            rgb = to_rgb(upright)  # transparency on white
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise FramingError(f"the image could not be decoded ({exc})") from None
    rgb.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, optimize=False)
    return NormalisedImage(out.getvalue(), rgb.width, rgb.height, width, height)
