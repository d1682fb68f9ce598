"""Model-manager and inferer against the model-server (stand-in trainer and runtime).

- three jobs at once on a stopped model: one StartProjectVersion; the model stops
  within idle_grace + 30 s of the last job's end;
- an inferer killed in the middle of a job: the job completes, every frame once, and
  the model is not stopped while the job lives;
- the model-server killed in the middle of a job and back on the same address a while
  later: the batches wait for it (no receive used up, nothing in the DLQ) and the job
  completes, every frame once.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from brandlens_core.projects import Project, ProjectStore
from brandlens_core.runtime import ModelRuntimeStatus, RuntimeStore
from brandlens_framer.settings import FramerSettings
from brandlens_inferer.app import create_worker as create_inferer
from brandlens_inferer.settings import InfererSettings
from brandlens_model_manager.app import create_worker as create_manager
from brandlens_model_manager.app import run as run_manager
from brandlens_model_manager.settings import ModelManagerSettings
from brandlens_model_server.launcher import ModelServerProcess
from tests.integration.test_model_server_support import ModelServerHarness, rekognition, train
from tests.support import (
    RunningWorker,
    Stack,
    eventually,
    fast_worker_settings,
    make_mp4,
    start_framer,
    start_ingest,
    start_service,
)

pytestmark = pytest.mark.integration

IDLE_GRACE = 5.0


def red_square_jpeg(size: tuple[int, int] = (320, 180)) -> bytes:
    img = Image.new("RGB", size, (90, 90, 90))
    img.paste((255, 0, 0), (40, 30, 120, 110))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=95)
    return out.getvalue()


@dataclass
class Runtime:
    stack: Stack
    model: str
    start_calls: list[float]
    client: Any
    tmp_path: Path
    server_url: str
    harness: ModelServerHarness


@pytest.fixture
async def runtime(stack: Stack, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A trained (stopped) model of project acme, the model-manager running beside it."""
    harness = ModelServerHarness(stack, tmp_path)
    server = await harness.start()
    await stack.capture_events()
    try:
        async with rekognition(server, max_attempts=3) as client, AsyncExitStack() as exits:
            _, model, _ = await train(client, stack, directive={"sleep_seconds": 0.05})
            projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
            await projects.create_project(
                Project(project="acme", brands=["acme"], current_model_arn=model)
            )
            calls: list[float] = []
            client.meta.events.register(
                "before-call.rekognition.StartProjectVersion",
                lambda **_: calls.append(time.monotonic()),
            )
            manager = await create_manager(
                stack.clients,
                stack.names,
                ModelManagerSettings(
                    idle_grace_seconds=IDLE_GRACE, reap_interval_seconds=0.5,
                    poll_interval_seconds=1, poll_max_interval_seconds=1,
                ),
                fast_worker_settings(),
                rekognition=client,
            )  # fmt: skip
            task = asyncio.create_task(run_manager(manager, manager.ctx))
            exits.push_async_callback(_stop, manager, task)
            yield Runtime(stack, model, calls, client, tmp_path, server.endpoint_url, harness)
    finally:
        await harness.stop_all()


async def _stop(manager: Any, task: asyncio.Task[None]) -> None:
    manager.stop()
    await asyncio.wait_for(task, 30)


async def completed(stack: Stack, n: int) -> list[dict[str, Any]]:
    events = await stack.events_of("AnalysisCompleted")
    return events if len(events) >= n else []


async def test_three_jobs_one_start_and_a_stop_after_the_grace(runtime: Runtime) -> None:
    stack = runtime.stack
    workers = [await start_ingest(stack), await start_framer(stack)]
    inferer = await create_inferer(
        stack.clients, stack.names,
        InfererSettings(wait_delay_seconds=1, lease_seconds=30),
        fast_worker_settings(), rekognition=runtime.client,
    )  # fmt: skip
    workers.append(RunningWorker(inferer))
    try:
        state = await RuntimeStore(stack.clients.dynamodb, stack.names.table("runtime")).state(
            runtime.model
        )
        assert state.status is ModelRuntimeStatus.STOPPED
        await asyncio.gather(
            *(
                stack.clients.s3.put_object(
                    Bucket=stack.names.media_bucket,
                    Key=f"analysis/acme/shelf-{n}.jpg",
                    Body=red_square_jpeg(),
                )
                for n in range(3)
            )
        )
        done = await eventually(lambda: completed(stack, 3), timeout=90, message="3 jobs done")
        ended = time.monotonic()
        assert len(runtime.start_calls) == 1  # three jobs, one StartProjectVersion
        for event in done:
            bucket = stack.names.artifacts_bucket
            response = await stack.clients.s3.get_object(
                Bucket=bucket, Key=event["detail"]["summary_key"]
            )
            summary = json.loads(await response["Body"].read())
            assert summary["frame_count"] == 1
            assert summary["brands"]["acme"]["frames"] == 1
            (image,) = summary["images"]  # an image job: the gallery shows it, boxes drawn
            assert [x["name"] for x in image["labels"]] == ["acme"]
            drawn = await stack.clients.s3.get_object(Bucket=bucket, Key=image["thumbnail_key"])
            assert (await drawn["Body"].read())[:2] == b"\xff\xd8"  # a JPEG
            report = await stack.clients.s3.get_object(
                Bucket=bucket, Key=event["detail"]["report_key"]
            )
            html = (await report["Body"].read()).decode()
            assert html.startswith("<!doctype html>")
            assert "class='gallery-image' src='data:image/jpeg;base64," in html  # embedded
        stopped = await eventually(
            lambda: stack.events_of("ModelStopped"), timeout=IDLE_GRACE + 30, interval=0.2,
            message="the model stopped",
        )  # fmt: skip
        assert time.monotonic() - ended <= IDLE_GRACE + 30
        assert stopped[0]["detail"]["running_seconds"] > 0
        (running,) = await stack.events_of("ModelRunning")
        assert running["detail"]["project_version_arn"] == runtime.model
        state = await RuntimeStore(stack.clients.dynamodb, stack.names.table("runtime")).state(
            runtime.model
        )
        assert state.status is ModelRuntimeStatus.STOPPED
        assert state.start_calls == 1
        assert state.running_seconds > 0
        assert state.busy_seconds > 0
    finally:
        for worker in workers:
            await worker.stop()


async def test_a_killed_inferer_the_job_still_completes_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    stack = runtime.stack
    workers = [
        await start_ingest(stack),
        await start_framer(stack, FramerSettings(analysis_interval_ms=100, batch_size_frames=4)),
    ]
    env = stack.env() | {
        "BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL": runtime.server_url,
        "BRANDLENS_INFERER_WAIT_DELAY_SECONDS": "1",
        "BRANDLENS_INFERER_LEASE_SECONDS": "20",
        "BRANDLENS_INFERER_MAX_IN_FLIGHT_FRAMES": "2",
        "BRANDLENS_INFERER_RATE_PER_INFERENCE_UNIT": "4",
        "BRANDLENS_INFERER_WORKER_MAX_IN_FLIGHT_MESSAGES": "1",
        "BRANDLENS_INFERER_WORKER_WAIT_TIME_SECONDS": "1",
        "BRANDLENS_INFERER_WORKER_VISIBILITY_TIMEOUT_SECONDS": "5",
    }
    runtime_store = RuntimeStore(stack.clients.dynamodb, stack.names.table("runtime"))
    first = await start_service("brandlens_inferer", env, tmp_path / "inferer-1.log")
    second = None
    try:
        video = make_mp4(tmp_path / "clip.mp4", seconds=4.0, size="320x180")
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/clip.mp4", Body=video
        )

        async def some_batches_done() -> Any:
            rows = (await stack.clients.dynamodb.scan(TableName=stack.names.table("jobs")))["Items"]
            return [r for r in rows if int(r.get("batches_done", {}).get("N", "0")) >= 2]

        (row,) = await eventually(some_batches_done, timeout=90, message="two batches analysed")
        job_id = row["job_id"]["S"]
        first.send_signal(signal.SIGKILL)
        await first.wait()
        # the job is alive, its lease too: the model keeps running
        await asyncio.sleep(IDLE_GRACE + 2)
        assert (await runtime_store.state(runtime.model)).status is ModelRuntimeStatus.RUNNING
        assert not await stack.events_of("ModelStopped")
        second = await start_service("brandlens_inferer", env, tmp_path / "inferer-2.log")
        done = await eventually(lambda: completed(stack, 1), timeout=120, message="job completed")
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
        for worker in workers:
            await worker.stop()
    detail = done[0]["detail"]
    assert detail["job_id"] == job_id
    response = await stack.clients.s3.get_object(
        Bucket=stack.names.artifacts_bucket, Key=detail["summary_key"]
    )
    summary = json.loads(await response["Body"].read())
    framed = next(
        e for e in await stack.events_of("FramesExtracted") if e["detail"]["job_id"] == job_id
    )
    frame_count = framed["detail"]["frame_count"]
    assert frame_count == 40  # 4 s, a frame every 100 ms
    assert summary["frame_count"] == frame_count
    assert summary["frame_indexes"] == list(range(frame_count))  # every frame, once
    assert len(await stack.events_of("AnalysisCompleted")) == 1


async def test_a_killed_model_server_the_job_waits_and_completes_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A model-server restart in the middle of a job loses nothing (that a refused
    connection waits rather than fails is pinned by tests/unit/test_inferer_unreachable)."""
    stack = runtime.stack
    workers = [
        await start_ingest(stack),
        await start_framer(stack, FramerSettings(analysis_interval_ms=100, batch_size_frames=4)),
    ]
    env = stack.env() | {
        "BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL": runtime.server_url,
        "BRANDLENS_INFERER_WAIT_DELAY_SECONDS": "1",
        "BRANDLENS_INFERER_MAX_IN_FLIGHT_FRAMES": "2",
        "BRANDLENS_INFERER_RATE_PER_INFERENCE_UNIT": "4",
        "BRANDLENS_INFERER_WORKER_MAX_IN_FLIGHT_MESSAGES": "2",
        "BRANDLENS_INFERER_WORKER_WAIT_TIME_SECONDS": "1",
        # a failing batch would be received again within a second: 8 receives in seconds
        "BRANDLENS_INFERER_WORKER_RETRY_BASE_DELAY_SECONDS": "0.2",
        "BRANDLENS_INFERER_WORKER_RETRY_MAX_DELAY_SECONDS": "0.5",
    }
    inferer = await start_service("brandlens_inferer", env, tmp_path / "inferer.log")
    (server,) = runtime.harness.servers
    try:
        video = make_mp4(tmp_path / "clip.mp4", seconds=4.0, size="320x180")
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/clip.mp4", Body=video
        )

        async def a_batch_done() -> Any:
            rows = (await stack.clients.dynamodb.scan(TableName=stack.names.table("jobs")))["Items"]
            return [r for r in rows if int(r.get("batches_done", {}).get("N", "0")) >= 1]

        await eventually(a_batch_done, timeout=90, message="a batch analysed")
        await server.kill()
        await asyncio.sleep(8)  # down for a while
        again = ModelServerProcess(
            env=runtime.harness.env(), log_path=tmp_path / "model-server-again.log",
            port=server.port,
        )  # fmt: skip
        runtime.harness.servers.append(again)
        await again.start()
        done = await eventually(lambda: completed(stack, 1), timeout=120, message="job completed")
    finally:
        if inferer.returncode is None:
            inferer.send_signal(signal.SIGTERM)
            await inferer.wait()
        for worker in workers:
            await worker.stop()
    summary = json.loads(
        await (
            await stack.clients.s3.get_object(
                Bucket=stack.names.artifacts_bucket, Key=done[0]["detail"]["summary_key"]
            )
        )["Body"].read()
    )
    assert summary["frame_indexes"] == list(range(40))  # 4 s every 100 ms, each once
    assert await stack.queue_depth(await stack.dlq_url("inferer")) == 0


async def test_a_lost_batch_is_sent_again_from_the_manifest(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A batch message that never arrives (moved to the DLQ, purged) does not strand the job:
    the inferer's delayed job check rebuilds it from the framer's manifest."""
    stack = runtime.stack
    workers = [
        await start_ingest(stack),
        await start_framer(stack, FramerSettings(analysis_interval_ms=100, batch_size_frames=4)),
    ]
    inferer_url = stack.queue_urls["inferer"]
    try:
        video = make_mp4(tmp_path / "clip.mp4", seconds=4.0, size="320x180")
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/clip.mp4", Body=video
        )
        await eventually(lambda: stack.events_of("FramesExtracted"), timeout=90, message="framed")
        lost = None
        while lost is None:  # take batch 3 off the queue: it is lost
            r = await stack.clients.sqs.receive_message(
                QueueUrl=inferer_url, MaxNumberOfMessages=10, VisibilityTimeout=30
            )
            for m in r.get("Messages", []):
                if json.loads(m["Body"]).get("batch_index") == 3:
                    lost = m
                    await stack.clients.sqs.delete_message(
                        QueueUrl=inferer_url, ReceiptHandle=m["ReceiptHandle"]
                    )
                else:
                    await stack.clients.sqs.change_message_visibility(
                        QueueUrl=inferer_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
        env = stack.env() | {
            "BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL": runtime.server_url,
            "BRANDLENS_INFERER_WAIT_DELAY_SECONDS": "1",
            "BRANDLENS_INFERER_CHECK_INTERVAL_SECONDS": "2",
            "BRANDLENS_INFERER_WORKER_WAIT_TIME_SECONDS": "1",
        }
        inferer = await start_service("brandlens_inferer", env, tmp_path / "inferer.log")
        try:
            done = await eventually(
                lambda: completed(stack, 1), timeout=120, message="job completed"
            )
        finally:
            inferer.send_signal(signal.SIGTERM)
            await inferer.wait()
    finally:
        for worker in workers:
            await worker.stop()
    assert done[0]["detail"]["job_id"] == json.loads(lost["Body"])["job_id"]
    summary = json.loads(
        await (
            await stack.clients.s3.get_object(
                Bucket=stack.names.artifacts_bucket, Key=done[0]["detail"]["summary_key"]
            )
        )["Body"].read()
    )
    assert summary["frame_indexes"] == list(range(40))  # batch 3's frames included, once
    resent = [
        json.loads(line)
        for line in (tmp_path / "inferer.log").read_text().splitlines()
        if '"job.batches_resent"' in line
    ]
    assert [r["batches"] for r in resent] == [[3]]  # the lost one only


async def test_a_project_without_a_model_fails_its_analysis_with_the_reason(
    runtime: Runtime,
) -> None:
    stack = runtime.stack
    workers = [await start_ingest(stack), await start_framer(stack)]
    inferer = await create_inferer(
        stack.clients, stack.names, InfererSettings(), fast_worker_settings(),
        rekognition=runtime.client,
    )  # fmt: skip
    workers.append(RunningWorker(inferer))
    try:
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/fresh/shelf.jpg", Body=red_square_jpeg()
        )
        failed = await eventually(
            lambda: stack.events_of("AnalysisFailed"), timeout=60, message="AnalysisFailed"
        )
    finally:
        for worker in workers:
            await worker.stop()
    reason = failed[0]["detail"]["reason"]
    assert "has no trained model yet" in reason
    assert "brandlens train fresh" in reason
    assert not runtime.start_calls
