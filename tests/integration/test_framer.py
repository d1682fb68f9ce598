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
    batches = await frame_batches(stack)
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
    assert await frame_batches(stack) == []
    _ = Path


async def test_a_two_minute_training_video_is_framed_with_the_default_settings(
    pipeline: Stack, tmp_path: Path
) -> None:
    """A new user's first training video: 120 s, default settings (scene, 200 samples).
    The 200 samples once made one ffmpeg select expression too big to run."""
    from brandlens_framer.settings import FramerSettings

    defaults = FramerSettings()
    stack = pipeline
    video = make_mp4(tmp_path / "long.mp4", seconds=120, size="640x360")
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="training/acme/long.mp4", Body=video
    )

    async def outcome() -> list[dict[str, Any]]:
        return await stack.events_of("FramesExtracted") or await stack.events_of("FramingFailed")

    done = await eventually(
        outcome,
        timeout=240,
        message="FramesExtracted or FramingFailed",
    )
    assert done[0]["detail-type"] == "FramesExtracted", done[0]["detail"]
    detail = done[0]["detail"]
    assert detail["frame_count"] == defaults.training_max_frames == 200
    lines = await manifest(stack, detail["manifest_key"])
    times = [line["timestamp_ms"] for line in lines]
    assert len(set(times)) == 200
    assert min(times) < 1_000  # spread over the whole video
    assert max(times) > 118_000
    job = await JobStore(stack.clients.dynamodb, stack.names.table("jobs")).get(detail["job_id"])
    assert job.status is JobStatus.FRAMED
    assert job.framing["frames_planned"] == 200
    assert job.framing["frames_missing"] == 0


async def test_a_job_with_more_batches_than_its_row_can_count_fails_before_framing(
    stack: Stack, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch id is counted on the job row (DynamoDB: 400 KB an item); a job past
    the limit fails at once with the numbers, not after hours of inference."""
    from brandlens_framer import handler
    from brandlens_framer.settings import FramerSettings

    monkeypatch.setattr(handler, "MAX_BATCHES_PER_JOB", 2)
    await stack.capture_events()
    ingest = await start_ingest(stack)
    framer = await start_framer(stack, FramerSettings(batch_size_frames=2))
    try:
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/many.mp4", Body=clip
        )
        events = await eventually(
            lambda: stack.events_of("FramingFailed"), timeout=60, message="FramingFailed"
        )
    finally:
        await framer.stop()
        await ingest.stop()
    reason = events[0]["detail"]["reason"]
    assert "5 frames in 3 batches of 2, above the 2 batches" in reason
    assert "BRANDLENS_FRAMER_BATCH_SIZE_FRAMES" in reason
    assert await frame_batches(stack) == []


async def test_a_video_over_the_framers_limit_fails_the_job_with_a_reason(
    stack: Stack, clip: bytes
) -> None:
    from brandlens_framer.settings import FramerSettings

    await stack.capture_events()
    ingest = await start_ingest(stack)
    framer = await start_framer(stack, FramerSettings(max_duration_seconds=2))
    try:
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/long.mp4", Body=clip
        )
        events = await eventually(
            lambda: stack.events_of("FramingFailed"), timeout=60, message="FramingFailed"
        )
    finally:
        await framer.stop()
        await ingest.stop()
    assert "above the limit of 2 seconds" in events[0]["detail"]["reason"]
    job = await JobStore(stack.clients.dynamodb, stack.names.table("jobs")).get(
        events[0]["detail"]["job_id"]
    )
    assert job.status is JobStatus.FAILED
    assert job.reason == events[0]["detail"]["reason"]


async def test_a_redelivered_media_accepted_reframes_into_the_same_keys_and_batch_ids(
    pipeline: Stack, clip: bytes
) -> None:
    stack = pipeline
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key="analysis/acme/twice.mp4", Body=clip
    )
    first = await eventually(
        lambda: stack.events_of("FramesExtracted"), timeout=60, message="FramesExtracted"
    )
    job_id = first[0]["detail"]["job_id"]
    batches = await frame_batches(stack)
    # The job was framed; now pretend the framer died before publishing: back to FRAMING.
    await stack.clients.dynamodb.update_item(
        TableName=stack.names.table("jobs"),
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET #s = :framing REMOVE published, framing",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":framing": {"S": "FRAMING"}},
    )
    # The idempotency record (keyed by job) would be COMPLETED: clear it, as a crash
    # before completion would have left it expired.
    await stack.clients.dynamodb.delete_item(
        TableName=stack.names.table("idempotency"), Key={"id": {"S": f"framer#{job_id}"}}
    )
    accepted = (await stack.events_of("MediaAccepted"))[0]
    await stack.clients.sqs.send_message(
        QueueUrl=stack.queue_urls["framer"], MessageBody=json.dumps(accepted)
    )
    again = await eventually(lambda: _twice(stack), timeout=60, message="second FramesExtracted")
    assert again[0]["detail"] == again[1]["detail"] | {
        "occurred_at": again[0]["detail"]["occurred_at"]
    }
    assert again[0]["detail"]["event_id"] == again[1]["detail"]["event_id"]  # consumers dedupe
    batches_again = await frame_batches(stack)
    assert [b["batch_id"] for b in batches_again] == [b["batch_id"] for b in batches]
    listed = await stack.clients.s3.list_objects_v2(
        Bucket=stack.names.artifacts_bucket, Prefix=f"frames/{job_id}/"
    )
    assert len(listed["Contents"]) == first[0]["detail"]["frame_count"] + 1  # frames + manifest


async def _twice(stack: Stack) -> list[dict[str, Any]] | None:
    got = await stack.events_of("FramesExtracted")
    return got if len(got) >= 2 else None


async def frame_batches(stack: Stack) -> list[dict[str, Any]]:
    """The frame batches on the inferer's queue (FramesExtracted is routed there too)."""
    return [m for m in await receive_all(stack, stack.queue_urls["inferer"]) if "batch_id" in m]
