"""Framer on the stack: accepted media become frames, a manifest, batches and FramesExtracted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brandlens_core.jobs import JobStatus, JobStore
from tests.integration.test_ingest import jpeg_bytes
from tests.support import Stack, eventually, make_mp4, receive_all, start_framer, start_ingest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_mp4(tmp_path_factory.mktemp("framer") / "clip.mp4", seconds=5, size="320x240")


@pytest.fixture
async def pipeline(stack: Stack):  # type: ignore[no-untyped-def]
    await stack.capture_events()
    ingest = await start_ingest(stack)
    framer = await start_framer(stack)
    yield stack
    await framer.stop()
    await ingest.stop()


async def manifest(stack: Stack, key: str) -> list[dict[str, Any]]:
    got = await stack.clients.s3.get_object(Bucket=stack.names.artifacts_bucket, Key=key)
    async with got["Body"] as body:
        text = (await body.read()).decode()
    return [json.loads(line) for line in text.splitlines()]


async def test_an_analysis_video_becomes_frames_batches_and_frames_extracted(
    pipeline: Stack, clip: bytes
) -> None:
    stack = pipeline
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="analysis/acme/ad.mp4", Body=clip
    )
    events = await eventually(
        lambda: stack.events_of("FramesExtracted"), timeout=60, message="FramesExtracted"
    )
    detail = events[0]["detail"]
    assert detail["frame_count"] == 5  # one per second of a 5 s clip
    assert detail["batch_count"] == 1
    lines = await manifest(stack, detail["manifest_key"])
    assert [line["timestamp_ms"] for line in lines] == [0, 1000, 2000, 3000, 4000]
    assert [line["timecode"] for line in lines][:2] == ["00:00:00:00", "00:00:01:00"]
    assert {(line["width"], line["height"]) for line in lines} == {(320, 240)}
    batches = await receive_all(stack, stack.queue_urls["inferer"])
    assert len(batches) == 1
    assert [f["key"] for f in batches[0]["frames"]] == [line["key"] for line in lines]
    job = await JobStore(stack.clients.dynamodb, stack.names.table("jobs")).get(detail["job_id"])
    assert job.status is JobStatus.FRAMED
    assert job.published == {"MediaAccepted", "FramesExtracted"}
    for line in lines:
        head = await stack.clients.s3.head_object(
            Bucket=stack.names.artifacts_bucket, Key=line["key"]
        )
        assert head["ContentType"] == "image/jpeg"


async def test_an_image_becomes_one_frame(pipeline: Stack) -> None:
    stack = pipeline
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="analysis/acme/shelf.jpg", Body=jpeg_bytes(2000, 1000)
    )
    events = await eventually(
        lambda: stack.events_of("FramesExtracted"), timeout=30, message="FramesExtracted"
    )
    lines = await manifest(stack, events[0]["detail"]["manifest_key"])
    assert [(line["width"], line["height"]) for line in lines] == [(1280, 640)]


async def test_a_training_video_is_sampled_by_scene_and_not_batched(
    pipeline: Stack, clip: bytes
) -> None:
    stack = pipeline
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="training/acme/ad.mp4", Body=clip
    )
    events = await eventually(
        lambda: stack.events_of("FramesExtracted"), timeout=60, message="FramesExtracted"
    )
    assert events[0]["detail"]["purpose"] == "training"
    assert 1 <= events[0]["detail"]["frame_count"] <= 200
    assert await receive_all(stack, stack.queue_urls["inferer"]) == []
    _ = Path
