"""Ingest: an S3 ``Object Created`` event becomes a job, accepted or rejected.

Given an object in the media bucket, ingest reads what the key says (purpose,
project), checks the object's real type from its bytes and its size, creates
the job row and publishes ``MediaAccepted`` or ``MediaRejected``.

Redelivery is safe: the job id derives from the object's bucket, key and
version, the row is created with a conditional write, and the event is
rebuilt from the row (same event id) and published until the row records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import structlog

from brandlens_core.aws import Client, error_code
from brandlens_core.envelopes import S3ObjectCreated
from brandlens_core.events import (
    MediaAccepted,
    MediaRef,
    MediaRejected,
    Purpose,
    RejectionCode,
    deterministic_id,
)
from brandlens_core.jobs import (
    Job,
    JobExistsError,
    JobNotFoundError,
    JobStatus,
    JobStore,
    publish_once,
)
from brandlens_core.logging import get_logger
from brandlens_core.publisher import EventPublisher
from brandlens_ingest.keys import BadKeyError, is_annotations_key, parse_key, printable
from brandlens_ingest.settings import IngestSettings
from brandlens_ingest.sniff import MediaInfo, MediaKind, MediaRejectedError, SniffLimits, sniff

log = get_logger(__name__)


@dataclass
class IngestContext:
    s3: Client
    jobs: JobStore
    publisher: EventPublisher
    media_bucket: str
    settings: IngestSettings

    @property
    def limits(self) -> SniffLimits:
        s = self.settings
        return SniffLimits(
            max_image_pixels=s.max_image_pixels,
            max_image_side_px=s.max_image_side_px,
            max_video_duration_seconds=s.max_video_duration_seconds,
            max_moov_bytes=s.max_moov_bytes,
        )


class _Rejection(Exception):
    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def job_id_for(event: S3ObjectCreated) -> str:
    obj = event.detail.object
    version = obj.version_id if obj.version_id not in (None, "null") else None
    identity = version or obj.sequencer or obj.etag or event.envelope.id
    return "job-" + deterministic_id("media", event.detail.bucket.name, obj.key, identity)[:24]


async def handle(event: S3ObjectCreated, ctx: IngestContext) -> None:
    bucket = event.detail.bucket.name
    if bucket != ctx.media_bucket:
        log.warning(
            "ingest.ignored_other_bucket",
            bucket=bucket,
            media_bucket=ctx.media_bucket,
            hint="the EventBridge rule should only route the media bucket",
        )
        return
    if is_annotations_key(event.detail.object.key):
        # training/<project>/annotations/... holds labels, not media: the labeler's input.
        log.info("ingest.ignored_annotations", key=printable(event.detail.object.key))
        return
    job_id = job_id_for(event)
    structlog.contextvars.bind_contextvars(job_id=job_id)
    try:
        job = await ctx.jobs.get(job_id)  # a redelivery: only finish what is missing
    except JobNotFoundError:
        job = await _create_job(event, job_id, ctx)
    await _publish_outcome(job, ctx)


async def _create_job(event: S3ObjectCreated, job_id: str, ctx: IngestContext) -> Job:
    obj = event.detail.object
    key = obj.key
    project: str | None = None
    purpose: Purpose | None = None
    media: dict[str, Any] = {"bucket": ctx.media_bucket, "key": printable(key)}
    try:
        try:
            if obj.key_not_utf8:
                raise BadKeyError("the key is not valid UTF-8")
            parsed = parse_key(key)
        except BadKeyError as exc:
            project, purpose = exc.project, exc.purpose
            raise _Rejection(RejectionCode.BAD_KEY, exc.reason) from None
        project, purpose = parsed.project, parsed.purpose
        ref = await _inspect(event, ctx)
        media = ref.model_dump(mode="json")
        job = Job(
            job_id=job_id, project=project, purpose=purpose, status=JobStatus.ACCEPTED, media=media
        )
    except _Rejection as rejection:
        job = Job(
            job_id=job_id,
            project=project,
            purpose=purpose,
            status=JobStatus.REJECTED,
            reason=rejection.reason,
            media=media | {"code": rejection.code.value},
        )
    try:
        await ctx.jobs.create(job)
        log.info(
            "job.created",
            status=job.status.value,
            project=project,
            purpose=purpose.value if purpose else None,
            reason=job.reason,
        )
    except JobExistsError as exists:
        job = exists.job
        log.info("job.exists", status=job.status.value)
    return job


async def _inspect(event: S3ObjectCreated, ctx: IngestContext) -> MediaRef:
    obj = event.detail.object
    version = obj.version_id if obj.version_id not in (None, "null") else None
    key, head = await _head(ctx, obj.key, version)
    size = int(head["ContentLength"])
    if size == 0:
        raise _Rejection(RejectionCode.EMPTY, "the object is empty (0 bytes)")
    limit = max(ctx.settings.max_image_bytes, ctx.settings.max_video_bytes)
    if size > limit:
        raise _Rejection(
            RejectionCode.TOO_LARGE, f"the object is {size} bytes; the limit is {limit} bytes"
        )

    async def read(offset: int, length: int) -> bytes:
        if offset >= size or length <= 0:
            return b""
        end = min(size, offset + length) - 1
        kwargs: dict[str, Any] = {
            "Bucket": ctx.media_bucket,
            "Key": key,
            "Range": f"bytes={offset}-{end}",
        }
        if version:
            kwargs["VersionId"] = version
        response = await ctx.s3.get_object(**kwargs)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    try:
        info: MediaInfo = await sniff(read, size, ctx.limits)
    except MediaRejectedError as exc:
        code = (
            RejectionCode.UNSUPPORTED_TYPE
            if exc.reason.startswith("unsupported file type")
            else RejectionCode.INVALID_MEDIA
        )
        raise _Rejection(code, exc.reason) from None
    kind_limit = (
        ctx.settings.max_image_bytes
        if info.kind is MediaKind.IMAGE
        else ctx.settings.max_video_bytes
    )
    if size > kind_limit:
        raise _Rejection(
            RejectionCode.TOO_LARGE,
            f"the {info.kind.value} is {size} bytes; the limit for {info.kind.value}s "
            f"is {kind_limit} bytes",
        )
    head_version = head.get("VersionId")
    return MediaRef(
        bucket=ctx.media_bucket,
        key=key,
        version_id=version or (head_version if head_version not in (None, "null") else None),
        etag=str(head.get("ETag", "")).strip('"') or None,
        size_bytes=size,
        kind=info.kind.value,
        format=info.format.value,
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        duration_seconds=info.duration_seconds,
    )


async def _head(ctx: IngestContext, key: str, version: str | None) -> tuple[str, dict[str, Any]]:
    """HEAD the object; S3 notifications sometimes URL-encode keys, so try decoded too."""
    candidates = [key]
    if "%" in key or "+" in key:
        decoded = unquote_plus(key)
        if decoded != key:
            candidates.append(decoded)
    for candidate in candidates:
        kwargs: dict[str, Any] = {"Bucket": ctx.media_bucket, "Key": candidate}
        if version:
            kwargs["VersionId"] = version
        try:
            return candidate, await ctx.s3.head_object(**kwargs)
        except Exception as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NoSuchVersion", "NotFound"):
                raise
    raise _Rejection(
        RejectionCode.NOT_FOUND,
        "the object no longer exists (deleted or overwritten before it could be checked)",
    )


async def _publish_outcome(job: Job, ctx: IngestContext) -> None:
    event: MediaAccepted | MediaRejected
    if job.status is JobStatus.REJECTED:
        event = MediaRejected(
            event_id=deterministic_id(job.job_id, MediaRejected.detail_type()),
            occurred_at=job.created_at,
            job_id=job.job_id,
            project=job.project,
            purpose=job.purpose,
            bucket=str(job.media.get("bucket", ctx.media_bucket)),
            key=str(job.media.get("key", "")),
            code=RejectionCode(job.media.get("code", RejectionCode.INVALID_MEDIA.value)),
            reason=job.reason or "rejected",
        )
    else:
        if job.project is None or job.purpose is None:
            raise ValueError(f"accepted job {job.job_id} has no project or purpose")
        event = MediaAccepted(
            event_id=deterministic_id(job.job_id, MediaAccepted.detail_type()),
            occurred_at=job.created_at,
            job_id=job.job_id,
            project=job.project,
            purpose=job.purpose,
            media=MediaRef.model_validate(job.media),
        )
    await publish_once(ctx.jobs, ctx.publisher, job, event)
