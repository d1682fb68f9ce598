"""What a client sees while an analysis job's frames go through the model and after: the
job is ANALYZING (not FRAMED) once framing is over, and a completed job's progress adds up
(every frame framed and analysed, every batch counted), not the framer's last periodic
figures (243 of 360)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from brandlens_core.apikeys import ApiKeyStore
from brandlens_core.events import Purpose
from brandlens_core.jobs import Job, JobStatus, JobStore
from brandlens_core.messages import FrameBatch
from brandlens_core.projects import Project, ProjectStore
from brandlens_inferer.app import create_worker as create_inferer
from brandlens_inferer.handler import JobCheck, detections_key
from brandlens_inferer.settings import InfererSettings
from brandlens_ingest.app import start_api
from brandlens_ingest.settings import IngestSettings
from tests.support import RunningWorker, Stack, eventually, fast_worker_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SIZE = 4
FRAMES = 8
JOB_ID = "job-progress"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 180), (40, 90, 160)).save(out, "JPEG")
    return out.getvalue()


JPEG = _jpeg()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[tuple[str, str]]:
    key, _ = await ApiKeyStore(stack.clients.dynamodb, stack.names.table("apikeys")).create(
        "progress", admin=True
    )
    runner = await start_api(stack.clients, stack.names, IngestSettings(api_port=0))
    assert runner is not None
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", key
    await runner.cleanup()


async def _batch_analysed(stack: Stack, jobs: JobStore, b: int) -> None:
    """Batch ``b`` as the inferer leaves it: its detections written, then counted."""
    frames = [
        {"index": i, "key": f"frames/{JOB_ID}/{i:06d}.jpg", "timestamp_ms": i * 500.0,
         "width": 320, "height": 180,
         "labels": [{"name": "acme", "confidence": 90.0, "box": None}] if i % 2 else []}
        for i in range(b * SIZE, (b + 1) * SIZE)
    ]  # fmt: skip
    for frame in frames:  # the proof thumbnails are drawn on them
        await stack.clients.s3.put_object(
            Bucket=stack.names.artifacts_bucket, Key=frame["key"], Body=JPEG
        )
    body = {"batch_id": FrameBatch.make_id(JOB_ID, b), "model": "m", "frames": frames}
    await stack.clients.s3.put_object(
        Bucket=stack.names.artifacts_bucket, Key=detections_key(JOB_ID, b),
        Body=json.dumps(body).encode(),
    )  # fmt: skip
    assert await jobs.count_batch(JOB_ID, FrameBatch.make_id(JOB_ID, b))


async def test_a_job_is_analyzing_while_its_frames_are_analysed_and_its_progress_adds_up(
    stack: Stack, api: tuple[str, str]
) -> None:
    url, key = api
    jobs = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    await ProjectStore(stack.clients.dynamodb, stack.names.table("projects")).create_project(
        Project(project="acme", brands=["acme"])
    )
    manifest = "".join(
        json.dumps({"index": i, "key": f"frames/{JOB_ID}/{i:06d}.jpg", "timestamp_ms": i * 500.0,
                    "width": 320, "height": 180}) + "\n"
        for i in range(FRAMES)
    )  # fmt: skip
    await stack.clients.s3.put_object(
        Bucket=stack.names.artifacts_bucket, Key=f"frames/{JOB_ID}/manifest.jsonl",
        Body=manifest.encode(),
    )  # fmt: skip
    # framed as the framer leaves it: its last periodic progress was 3 of 8
    await jobs.create(
        Job(
            job_id=JOB_ID, project="acme", purpose=Purpose.ANALYSIS, status=JobStatus.FRAMED,
            media={"kind": "video"}, progress={"frames_done": 3, "frames_planned": FRAMES},
            framing={
                "frame_count": FRAMES, "frames_planned": FRAMES, "batch_count": 2,
                "batch_size_frames": SIZE, "manifest_key": f"frames/{JOB_ID}/manifest.jsonl",
                "artifacts_bucket": stack.names.artifacts_bucket,
            },
        )
    )  # fmt: skip
    await _batch_analysed(stack, jobs, 0)
    inferer = RunningWorker(
        await create_inferer(
            stack.clients, stack.names, InfererSettings(), fast_worker_settings(),
            rekognition=object(),
        )
    )  # fmt: skip

    async def check(round_: int) -> None:
        message = JobCheck(check_job_id=JOB_ID, round=round_, batches_done=0)
        await stack.clients.sqs.send_message(
            QueueUrl=stack.queue_urls["inferer"], MessageBody=message.model_dump_json()
        )

    async def view(http: aiohttp.ClientSession) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"}
        async with http.get(f"{url}/v1/jobs/{JOB_ID}", headers=headers) as response:
            assert response.status == 200
            got: dict[str, Any] = await response.json()
            return got

    try:
        async with aiohttp.ClientSession() as http:
            await check(1)

            async def analysing() -> dict[str, Any]:
                job = await view(http)
                return job if job["status"] != "FRAMED" else {}

            job = await eventually(analysing, timeout=60, message="the job left FRAMED")
            assert job["status"] == "ANALYZING"
            assert job["progress"]["stage"] == "analyzing"
            # framing is over: all 8 frames framed, not the stale 3 of 8
            assert (job["progress"]["frames_done"], job["progress"]["frames_planned"]) == (8, 8)
            assert (job["progress"]["batches_done"], job["progress"]["batch_count"]) == (1, 2)
            assert job["progress"]["percent"] == 75.0  # framed (50) + 1 of 2 batches
            row = await jobs.get(JOB_ID)
            assert row.progress == {"frames_done": 8, "frames_planned": 8}  # `brandlens job`

            await _batch_analysed(stack, jobs, 1)
            await check(2)

            async def ended() -> dict[str, Any]:
                job = await view(http)
                return job if job["status"] in ("COMPLETED", "FAILED") else {}

            job = await eventually(ended, timeout=60, message="the job ended")
    finally:
        await inferer.stop()
    assert job["status"] == "COMPLETED", job["reason"]
    progress = job["progress"]
    assert progress["stage"] == "completed"
    assert (progress["frames_done"], progress["frames_planned"]) == (8, 8)
    assert progress["frames_analysed"] == 8
    assert (progress["batches_done"], progress["batch_count"]) == (2, 2)
    assert progress["percent"] == 100.0
    assert (await jobs.get(JOB_ID)).progress == {
        "frames_done": 8, "frames_planned": 8, "frames_analysed": 8,
    }  # fmt: skip


async def _image_job(stack: Stack, jobs: JobStore, job_id: str, labels: list[Any]) -> None:
    """An image job as the framer leaves it, its one batch analysed with ``labels``."""
    frame = {"index": 0, "key": f"frames/{job_id}/000000.jpg", "timestamp_ms": 0.0,
             "width": 320, "height": 180}  # fmt: skip
    bucket = stack.names.artifacts_bucket
    await stack.clients.s3.put_object(Bucket=bucket, Key=frame["key"], Body=JPEG)
    await stack.clients.s3.put_object(
        Bucket=bucket, Key=f"frames/{job_id}/manifest.jsonl", Body=json.dumps(frame).encode()
    )
    await jobs.create(
        Job(
            job_id=job_id, project="acme", purpose=Purpose.ANALYSIS, status=JobStatus.FRAMED,
            media={"kind": "image"},
            framing={
                "frame_count": 1, "batch_count": 1, "batch_size_frames": SIZE,
                "manifest_key": f"frames/{job_id}/manifest.jsonl", "artifacts_bucket": bucket,
                "strategy": "image",
            },
        )
    )  # fmt: skip
    body = {"batch_id": FrameBatch.make_id(job_id, 0), "model": "m",
            "frames": [frame | {"labels": labels}]}  # fmt: skip
    await stack.clients.s3.put_object(
        Bucket=bucket, Key=detections_key(job_id, 0), Body=json.dumps(body).encode()
    )
    assert await jobs.count_batch(job_id, FrameBatch.make_id(job_id, 0))
    check = JobCheck(check_job_id=job_id, round=1, batches_done=0)
    await stack.clients.sqs.send_message(
        QueueUrl=stack.queue_urls["inferer"], MessageBody=check.model_dump_json()
    )


def _box(name: str, left: float) -> dict[str, Any]:
    box = {"left": left, "top": 0.2, "width": 0.2, "height": 0.2}
    return {"name": name, "confidence": 90.0, "box": box}


async def test_an_image_gets_figures_that_mean_something(
    stack: Stack, api: tuple[str, str]
) -> None:
    from brandlens_cli import main as cli_main
    from brandlens_cli.analyze import Analysis, print_analysis

    url, key = api
    jobs = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    await ProjectStore(stack.clients.dynamodb, stack.names.table("projects")).create_project(
        Project(project="acme", brands=["acme", "globex"])
    )
    await _image_job(stack, jobs, "job-one-brand", [_box("acme", 0.1)])
    await _image_job(
        stack, jobs, "job-two-brands", [_box("acme", 0.1), _box("acme", 0.5), _box("globex", 0.7)]
    )
    inferer = RunningWorker(
        await create_inferer(
            stack.clients, stack.names, InfererSettings(), fast_worker_settings(),
            rekognition=object(),
        )
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:

            async def get(path: str) -> Any:
                async with http.get(f"{url}{path}") as response:
                    assert response.status == 200, (path, await response.text())
                    return await (response.json() if "json" in response.content_type
                                  else response.text())  # fmt: skip

            async def completed() -> list[dict[str, Any]]:
                views = [await get(f"/v1/jobs/{j}") for j in ("job-one-brand", "job-two-brands")]
                return views if all(v["status"] == "COMPLETED" for v in views) else []

            one_view, two_view = await eventually(completed, timeout=60, message="completed")
            one = await get(one_view["links"]["summary"])
            two = await get(two_view["links"]["summary"])
            one_report = await get(one_view["links"]["report"])
            two_report = await get(two_view["links"]["report"])
    finally:
        await inferer.stop()
    # one brand in the image: all of the share of voice (videos give 100 %; it was 0)
    assert one["share_of_voice_basis"] == "detections"
    assert one["brands"]["acme"]["detections"] == 1
    assert one["brands"]["acme"]["share_of_voice"] == 1.0
    # two brands: shared by detections, 2 of acme's boxes against 1 of globex's
    assert two["brands"]["acme"]["detections"] == 2
    assert two["brands"]["acme"]["share_of_voice"] == pytest.approx(2 / 3, abs=1e-6)
    assert two["brands"]["globex"]["share_of_voice"] == pytest.approx(1 / 3, abs=1e-6)
    # the report says the same, and no time
    assert "<th>detections</th><th>share of voice</th>" in one_report
    assert "<td>acme</td><td>1</td><td>100.0 %</td>" in one_report
    assert "<td>acme</td><td>2</td><td>66.7 %</td>" in two_report
    assert "3 detections of 2 brands" in two_report
    assert "0.0 s" not in two_report
    # the CLI's table: detections and share of voice, no "screen time 0.0 s", no "over 0.0 s"
    with cli_main.console.capture() as captured:
        assert print_analysis(Analysis(two_view, two, None)) == 0
    printed = captured.get()
    assert "image analysed, 3 detections of 2 brands" in printed
    assert "0.0 s" not in printed
    assert "screen time" not in printed
    acme_row = next(line for line in printed.splitlines() if "acme" in line)
    cells = [cell.strip() for cell in acme_row.split("│")]
    assert cells[1:4] == ["acme", "2", "66.7 %"], acme_row
