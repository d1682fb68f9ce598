"""Ingest, given objects dropped into the media bucket the AWS way (S3 -> EventBridge -> SQS)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from brandlens_core.jobs import Job, JobStatus, JobStore
from brandlens_ingest.settings import IngestSettings
from tests.support import Stack, eventually, make_mp4, s3_event, start_ingest

pytestmark = pytest.mark.integration


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_mp4(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2)


async def jobs_of(stack: Stack) -> list[Job]:
    return await JobStore(stack.clients.dynamodb, stack.names.table("jobs")).list()


async def one_settled_job(stack: Stack, detail_type: str) -> tuple[Job, dict[str, Any]]:
    """Wait for the job's event, then return the only job row and the only event."""
    events = await eventually(lambda: stack.events_of(detail_type), message=detail_type)
    jobs = await jobs_of(stack)
    assert len(jobs) == 1, jobs
    assert len(events) == 1, events
    return jobs[0], events[0]


@pytest.fixture
async def ingest(stack: Stack):  # type: ignore[no-untyped-def]
    await stack.capture_events()
    worker = await start_ingest(stack)
    yield worker
    await worker.stop()


async def test_an_image_becomes_an_accepted_job_and_media_accepted(stack: Stack, ingest) -> None:  # type: ignore[no-untyped-def]
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="analysis/acme/shelf.jpg", Body=jpeg_bytes()
    )
    job, event = await one_settled_job(stack, "MediaAccepted")
    assert job.status is JobStatus.ACCEPTED
    assert (job.project, job.purpose and job.purpose.value) == ("acme", "analysis")
    assert (job.media["format"], job.media["width"], job.media["height"]) == ("jpeg", 64, 48)
    assert event["source"] == "brandlens.ingest"
    assert event["detail"]["job_id"] == job.job_id
    assert event["detail"]["media"]["key"] == "analysis/acme/shelf.jpg"
    assert event["detail"]["media"]["version_id"]
    assert "MediaAccepted" in (await jobs_of(stack))[0].published


async def test_a_video_is_accepted_with_its_duration(stack: Stack, ingest, mp4: bytes) -> None:  # type: ignore[no-untyped-def]
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="training/acme/ad.mov", Body=mp4
    )
    job, event = await one_settled_job(stack, "MediaAccepted")
    assert (job.media["kind"], job.media["format"]) == ("video", "mp4")  # bytes beat extension
    assert job.media["duration_seconds"] == pytest.approx(2.0, abs=0.15)
    assert (job.media["width"], job.media["height"]) == (160, 120)
    assert event["detail"]["purpose"] == "training"


REJECTIONS = [
    pytest.param("analysis/acme/empty.jpg", b"", "empty", "empty (0 bytes)", id="zero-byte"),
    pytest.param(
        "analysis/acme/movie.mp4",
        b"hello, I am text\n" * 20,
        "unsupported_type",
        "expected JPEG, PNG, MP4 or MOV",
        id="text-named-mp4",
    ),
    pytest.param(
        "uploads/acme/shelf.jpg", None, "bad_key", "outside the known prefixes", id="unknown-prefix"
    ),
    pytest.param(
        "analysis/Bad_Project/shelf.jpg", None, "bad_key", "project name", id="bad-project-name"
    ),
    pytest.param(
        "analysis/acme/a\x01b.jpg",
        None,
        "bad_key",
        "control character U+0001",
        id="control-character",
    ),
]


@pytest.mark.parametrize(("key", "body", "code", "reason"), REJECTIONS)
async def test_bad_objects_become_rejected_jobs_with_a_reason(
    stack: Stack,
    ingest,
    key: str,
    body: bytes | None,
    code: str,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key=key, Body=jpeg_bytes() if body is None else body
    )
    job, event = await one_settled_job(stack, "MediaRejected")
    assert job.status is JobStatus.REJECTED
    assert reason in (job.reason or "")
    assert event["detail"]["code"] == code
    assert event["detail"]["reason"] == job.reason


async def test_a_truncated_mp4_is_rejected_as_truncated(stack: Stack, ingest, mp4: bytes) -> None:  # type: ignore[no-untyped-def]
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="analysis/acme/cut.mp4", Body=mp4[: len(mp4) // 2]
    )
    job, event = await one_settled_job(stack, "MediaRejected")
    assert event["detail"]["code"] == "invalid_media"
    assert "truncated" in (job.reason or "")


async def test_an_image_over_the_size_limit_is_rejected(stack: Stack) -> None:
    await stack.capture_events()
    worker = await start_ingest(stack, IngestSettings(max_image_bytes=100))
    try:
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/big.jpg", Body=jpeg_bytes()
        )
        job, event = await one_settled_job(stack, "MediaRejected")
    finally:
        await worker.stop()
    assert event["detail"]["code"] == "too_large"
    assert "the limit for images is 100 bytes" in (job.reason or "")


HOSTILE_KEYS = [
    pytest.param("analysis/acme/../../etc/passwd", "'..' path segment", id="dot-dot"),
    pytest.param("analysis/acme/%2e%2e/x.jpg", "'..' path segment", id="encoded-dot-dot"),
    pytest.param(
        "analysis/acme/%FF%FE.jpg", "percent-escapes that are not UTF-8", id="non-utf8-escape"
    ),
    pytest.param("analysis/acme/\udcff.jpg", "not valid UTF-8", id="lone-surrogate"),
    pytest.param("analysis/acme/\u202egpj.exe", "control character U+202E", id="bidi-override"),
]


@pytest.mark.parametrize(("key", "reason"), HOSTILE_KEYS)
async def test_hostile_keys_in_events_are_rejected_without_touching_s3(
    stack: Stack,
    ingest,
    key: str,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    # Sent as S3 would put it on the queue: such keys cannot all be created
    # through an HTTP client (paths get normalised), but events are untrusted.
    body = json.dumps(s3_event(stack.names.media_bucket, key))
    await stack.clients.sqs.send_message(QueueUrl=stack.queue_urls["ingest"], MessageBody=body)
    job, event = await one_settled_job(stack, "MediaRejected")
    assert event["detail"]["code"] == "bad_key"
    assert reason in (job.reason or "")
    assert event["detail"]["key"].isprintable()


async def test_an_event_for_another_bucket_is_acknowledged_and_ignored(
    stack: Stack,
    ingest,  # type: ignore[no-untyped-def]
) -> None:
    body = json.dumps(s3_event("someone-elses-bucket", "analysis/acme/x.jpg"))
    await stack.clients.sqs.send_message(QueueUrl=stack.queue_urls["ingest"], MessageBody=body)
    await eventually(lambda: _drained(stack), message="ingest queue drained")
    assert await jobs_of(stack) == []
    assert await stack.queue_depth(await stack.dlq_url("ingest")) == 0
    assert await stack.collect() == []


async def _drained(stack: Stack) -> bool:
    return await stack.queue_depth(stack.queue_urls["ingest"]) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json at all", id="not-json"),
        pytest.param(json.dumps({"detail-type": "Object Created"}), id="no-envelope"),
        pytest.param(json.dumps(s3_event("b", "k") | {"detail": {"bucket": {}}}), id="bad-detail"),
    ],
)
async def test_a_malformed_message_is_retried_then_dead_lettered_and_the_worker_stays_up(
    stack: Stack,
    ingest,
    body: str,  # type: ignore[no-untyped-def]
) -> None:
    await stack.clients.sqs.send_message(QueueUrl=stack.queue_urls["ingest"], MessageBody=body)
    dlq = await stack.dlq_url("ingest")
    await eventually(lambda: _has(stack, dlq, 1), timeout=40, message="message in the DLQ")
    assert ingest.worker.stats.failed >= 5  # every receive was tried before the DLQ
    # The worker is still up and handles the next message.
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="analysis/acme/after.jpg", Body=jpeg_bytes()
    )
    await one_settled_job(stack, "MediaAccepted")


async def _has(stack: Stack, url: str, n: int) -> bool:
    return await stack.queue_depth(url) == n


async def test_the_same_event_delivered_five_times_at_once_makes_one_job(
    stack: Stack,
    ingest,  # type: ignore[no-untyped-def]
) -> None:
    key = "analysis/acme/once.jpg"
    put = await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key=key, Body=jpeg_bytes()
    )
    # S3's own notification arrives too: that makes six deliveries of one version.
    event = s3_event(stack.names.media_bucket, key, version_id=put["VersionId"])
    await stack.clients.sqs.send_message_batch(
        QueueUrl=stack.queue_urls["ingest"],
        Entries=[{"Id": str(i), "MessageBody": json.dumps(event)} for i in range(5)],
    )
    await eventually(lambda: _drained(stack), timeout=30, message="all deliveries settled")
    jobs = await jobs_of(stack)
    events = await stack.events_of("MediaAccepted")
    assert len(jobs) == 1
    assert len(events) == 1
    assert ingest.worker.stats.succeeded + ingest.worker.stats.duplicates == 6


async def test_a_redelivered_event_after_completion_changes_nothing(
    stack: Stack,
    ingest,  # type: ignore[no-untyped-def]
) -> None:
    key = "analysis/acme/again.jpg"
    put = await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key=key, Body=jpeg_bytes()
    )
    job, _ = await one_settled_job(stack, "MediaAccepted")
    event = s3_event(stack.names.media_bucket, key, version_id=put["VersionId"], event_id="other")
    await stack.clients.sqs.send_message(
        QueueUrl=stack.queue_urls["ingest"], MessageBody=json.dumps(event)
    )
    await eventually(lambda: _drained(stack), message="redelivery settled")
    assert [j.revision for j in await jobs_of(stack)] == [job.revision]
    assert len(await stack.events_of("MediaAccepted")) == 1
