"""A video whose middle stretch does not decode: the framer sends batches 0 and 2 and
none for 1 (every frame of it failed), so batch_count is 2. The job must complete from the
batches counted instead of aggregating batch indices 0..batch_count-1 (which read batch 1,
never written, and skip batch 2)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from brandlens_core.apikeys import ApiKeyStore
from brandlens_core.jobs import Job, JobStatus, JobStore, Purpose
from brandlens_core.messages import FrameBatch
from brandlens_inferer.app import create_worker as create_inferer
from brandlens_inferer.handler import JobCheck, detections_key
from brandlens_inferer.settings import InfererSettings
from brandlens_ingest.app import start_api
from brandlens_ingest.settings import IngestSettings
from tests.support import RunningWorker, Stack, eventually, fast_worker_settings

pytestmark = pytest.mark.integration

SIZE = 4


def _frame(index: int, brand: bool) -> dict[str, Any]:
    labels = [{"name": "acme", "confidence": 90.0, "box": None}] if brand else []
    return {
        "index": index, "key": f"frames/j/{index:06d}.jpg", "timestamp_ms": index * 250.0,
        "width": 320, "height": 180, "labels": labels,
    }  # fmt: skip


async def test_a_job_with_an_undecodable_middle_batch_completes_from_the_others(
    stack: Stack,
) -> None:
    job_id = "job-gap"
    jobs = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    # frames 0-3 (batch 0) and 8-11 (batch 2) decoded; 4-7 (batch 1) did not
    decoded = {0: [0, 1, 2, 3], 2: [8, 9, 10, 11]}
    manifest = "".join(
        json.dumps({"index": i, "key": f"frames/{job_id}/{i:06d}.jpg", "timestamp_ms": i * 250.0,
                    "width": 320, "height": 180}) + "\n"
        for frames in decoded.values() for i in frames
    )  # fmt: skip
    await stack.clients.s3.put_object(
        Bucket=stack.names.artifacts_bucket, Key=f"frames/{job_id}/manifest.jsonl",
        Body=manifest.encode(),
    )  # fmt: skip
    await jobs.create(
        Job(
            job_id=job_id, project="acme", purpose=Purpose.ANALYSIS, status=JobStatus.FRAMED,
            media={"kind": "video"},
            framing={
                "frame_count": 8, "batch_count": 2,
                "batch_size_frames": SIZE, "manifest_key": f"frames/{job_id}/manifest.jsonl",
                "artifacts_bucket": stack.names.artifacts_bucket,
            },
        )
    )  # fmt: skip
    for b, frames in decoded.items():
        body = {"batch_id": FrameBatch.make_id(job_id, b), "model": None,
                "frames": [_frame(i, brand=False) for i in frames]}  # fmt: skip
        await stack.clients.s3.put_object(
            Bucket=stack.names.artifacts_bucket, Key=detections_key(job_id, b),
            Body=json.dumps(body).encode(),
        )  # fmt: skip
        assert await jobs.count_batch(job_id, FrameBatch.make_id(job_id, b))
    inferer = RunningWorker(
        await create_inferer(
            stack.clients, stack.names, InfererSettings(), fast_worker_settings(),
            rekognition=object(),
        )
    )  # fmt: skip
    try:
        check = JobCheck(check_job_id=job_id, round=1, batches_done=2)
        await stack.clients.sqs.send_message(
            QueueUrl=stack.queue_urls["inferer"], MessageBody=check.model_dump_json()
        )

        async def finished() -> Job | None:
            job = await jobs.get(job_id)
            return job if job.terminal else None

        job = await eventually(finished, timeout=60, message="the job ended")
    finally:
        await inferer.stop()
    assert job.status is JobStatus.COMPLETED, job.reason
    assert job.summary_key
    summary = json.loads(
        await (
            await stack.clients.s3.get_object(
                Bucket=stack.names.artifacts_bucket, Key=job.summary_key
            )
        )["Body"].read()
    )
    assert summary["frame_indexes"] == [0, 1, 2, 3, 8, 9, 10, 11]

    # the API's detections list the same frames, in pages that step over the gap
    keys = ApiKeyStore(stack.clients.dynamodb, stack.names.table("apikeys"))
    admin, _ = await keys.create("ops", admin=True)
    runner = await start_api(stack.clients, stack.names, IngestSettings(api_port=0))
    assert runner is not None
    host, port = runner.addresses[0][:2]
    listed: list[int] = []
    pages = 0
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
            url = f"http://{host}:{port}/v1/jobs/{job_id}/detections?limit=3"
            cursor: str | None = None
            while pages < 10:
                async with http.get(url + (f"&cursor={cursor}" if cursor else "")) as response:
                    assert response.status == 200, await response.text()
                    page = await response.json()
                pages += 1
                listed += [item["index"] for item in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
    finally:
        await runner.cleanup()
    assert listed == [0, 1, 2, 3, 8, 9, 10, 11]
    assert pages == 3
