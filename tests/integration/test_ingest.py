"""Ingest, given objects dropped into the media bucket the AWS way (S3 -> EventBridge -> SQS)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from brandlens_core.jobs import JobStatus, JobStore
from tests.support import Stack, eventually, start_ingest

pytestmark = pytest.mark.integration


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


async def jobs_of(stack: Stack) -> list:
    return await JobStore(stack.clients.dynamodb, stack.names.table("jobs")).list()


async def test_an_image_becomes_an_accepted_job_and_media_accepted(stack: Stack) -> None:
    await stack.capture_events()
    worker = await start_ingest(stack)
    try:
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/shelf.jpg", Body=jpeg_bytes()
        )
        jobs = await eventually(lambda: jobs_of(stack), message="a job row")
        events = await eventually(lambda: stack.events_of("MediaAccepted"), message="MediaAccepted")
    finally:
        await worker.stop()
    assert len(jobs) == 1
    job = jobs[0]
    assert job.status is JobStatus.ACCEPTED
    assert (job.project, job.purpose.value) == ("acme", "analysis")
    assert job.media["format"] == "jpeg"
    assert (job.media["width"], job.media["height"]) == (64, 48)
    assert len(events) == 1
    detail = events[0]["detail"]
    assert detail["job_id"] == job.job_id
    assert detail["media"]["key"] == "analysis/acme/shelf.jpg"
    assert events[0]["source"] == "brandlens.ingest"
