"""The inferer against a model-server of known capacity: throughput, throttling, loss.

Starts a moto server and the model-server on loopback, the model-server limited to
C DetectCustomLabels per second (one inference unit x C), with the model-server
tests' stand-in runtime (it decodes each JPEG and boxes its red pixels: the bench
measures flow control, not detection). A version is trained and started through
the model-manager; N frames go to the inferer as frame batches for one analysis
job; the inferer runs in this process with its adaptive rate starting at
``--start-factor`` x C (above capacity: it has to find it).

Prints: sustained throughput (frames/s over the second half of the run) against
C, the share of throttled calls at steady state (second half), frames in the
summary against frames sent, and peak calls in flight against the bound.
Writes bench/results/inferer.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "inferer.json"
sys.path.insert(0, str(ROOT.parent))


def red_frame(i: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (320, 180), (80 + i % 50, 90, 90))
    img.paste((255, 0, 0), (20 + i % 100, 30, 80 + i % 100, 90))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.integration.test_model_server_support import ModelServerHarness, rekognition, train
    from tests.support import Stack

    from brandlens_cli.embedded import LOCAL_CREDENTIALS, MotoServer
    from brandlens_core.aws import AwsClients
    from brandlens_core.events import Purpose
    from brandlens_core.jobs import Job, JobStatus, JobStore
    from brandlens_core.messages import FrameBatch, FrameRef
    from brandlens_core.projects import Project, ProjectStore
    from brandlens_core.settings import AwsSettings, WorkerSettings
    from brandlens_core.stack import StackNames, define, deploy
    from brandlens_inferer.app import create_worker as create_inferer
    from brandlens_inferer.settings import InfererSettings
    from brandlens_model_manager.app import create_worker as create_manager
    from brandlens_model_manager.app import run as run_manager
    from brandlens_model_manager.settings import ModelManagerSettings

    os.environ.update(LOCAL_CREDENTIALS | {"AWS_DEFAULT_REGION": "us-east-1"})
    moto = MotoServer()
    moto.start()
    work = Path(tempfile.mkdtemp(prefix="brandlens-bench-inferer-"))
    names = StackNames("bench" + uuid.uuid4().hex[:8])
    settings = AwsSettings(endpoint_url=moto.endpoint_url)  # type: ignore[arg-type]
    try:
        async with AwsClients(settings) as clients:
            queues = await deploy(clients, define(names))
            stack = Stack(names, queues, clients, moto.endpoint_url)
            harness = ModelServerHarness(
                stack,
                work,
                overrides={
                    "BRANDLENS_MODEL_SERVER_RATE_PER_INFERENCE_UNIT_PER_SECOND": str(args.capacity),
                    "BRANDLENS_LOG_LEVEL": "WARNING",
                },
            )
            server = await harness.start()
            try:
                async with rekognition(server, max_attempts=1) as client:
                    return await measure(args, stack, client, names, Project, ProjectStore,
                                         Job, JobStatus, JobStore, Purpose, FrameBatch, FrameRef,
                                         WorkerSettings, create_inferer, InfererSettings,
                                         create_manager, run_manager, ModelManagerSettings,
                                         train)  # fmt: skip
            finally:
                await harness.stop_all()
    finally:
        moto.stop()


async def measure(
    args: argparse.Namespace, stack: Any, client: Any, names: Any, *deps: Any
) -> dict[str, Any]:
    (Project, ProjectStore, Job, JobStatus, JobStore, Purpose, FrameBatch, FrameRef,
     WorkerSettings, create_inferer, InfererSettings, create_manager, run_manager,
     ModelManagerSettings, train) = deps  # fmt: skip
    clients = stack.clients
    _, model, _ = await train(client, stack)
    await ProjectStore(clients.dynamodb, names.table("projects")).create_project(
        Project(project="bench", brands=["acme"], current_model_arn=model)
    )
    bucket = names.artifacts_bucket
    job_id = "job-bench" + uuid.uuid4().hex[:8]
    frames = []
    for i in range(args.frames):
        key = f"frames/{job_id}/{i:06d}.jpg"
        await clients.s3.put_object(Bucket=bucket, Key=key, Body=red_frame(i))
        frames.append(FrameRef(index=i, key=key, timestamp_ms=i * 1000.0, width=320, height=180))
    batches = [frames[i : i + 16] for i in range(0, len(frames), 16)]
    jobs = JobStore(clients.dynamodb, names.table("jobs"))
    await jobs.create(
        Job(job_id=job_id, project="bench", purpose=Purpose.ANALYSIS, status=JobStatus.FRAMED,
            framing={"batch_count": len(batches), "frame_count": len(frames)})
    )  # fmt: skip
    worker_settings = WorkerSettings(
        max_in_flight_messages=4, wait_time_seconds=1, visibility_timeout_seconds=60
    )
    manager = await create_manager(
        clients, names,
        ModelManagerSettings(idle_grace_seconds=600, reap_interval_seconds=1,
                             poll_interval_seconds=1, poll_max_interval_seconds=1),
        worker_settings, rekognition=client,
    )  # fmt: skip
    manager_task = asyncio.create_task(run_manager(manager, manager.ctx))
    inferer_settings = InfererSettings(
        rate_per_inference_unit=args.capacity * args.start_factor,
        max_in_flight_frames=args.max_in_flight,
        wait_delay_seconds=1,
    )
    inferer = await create_inferer(
        clients, names, inferer_settings, worker_settings, rekognition=client
    )
    # record every call's outcome and time, at the client
    calls: list[tuple[float, bool]] = []

    def after_call(http_response: Any = None, **_: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        calls.append((time.monotonic(), status != 200))

    client.meta.events.register("after-call.rekognition.DetectCustomLabels", after_call)
    for n, chunk in enumerate(batches):
        batch = FrameBatch(batch_id=FrameBatch.make_id(job_id, n), batch_index=n, job_id=job_id,
                           project="bench", artifacts_bucket=bucket, frames=chunk)  # fmt: skip
        await clients.sqs.send_message(
            QueueUrl=stack.queue_urls["inferer"], MessageBody=batch.model_dump_json()
        )
    inferer_task = asyncio.create_task(inferer.run())
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        job = await jobs.get(job_id)
        if job.status is JobStatus.COMPLETED:
            break
        await asyncio.sleep(0.5)
    inferer.stop()
    manager.stop()
    await asyncio.gather(inferer_task, manager_task)
    job = await jobs.get(job_id)
    summary: dict[str, Any] = {}
    if job.summary_key:
        response = await clients.s3.get_object(Bucket=bucket, Key=job.summary_key)
        summary = json.loads(await response["Body"].read())
    ok = [t for t, throttled in calls if not throttled]
    start, end = ok[0], ok[-1]
    half = start + (end - start) / 2
    second_half = [c for c in calls if c[0] >= half]
    steady_ok = sum(1 for _, th in second_half if not th)
    throughput = steady_ok / max(end - half, 1e-9)
    throttled_share = sum(1 for _, th in second_half if th) / max(len(second_half), 1)
    limiter = next(iter(inferer.ctx.limiters.values()))[1]
    return {
        "capacity_rps": args.capacity,
        "frames_sent": len(frames),
        "frames_in_summary": summary.get("frame_count"),
        "frames_unique": len(set(summary.get("frame_indexes", []))),
        "calls": len(calls),
        "throttled_calls": sum(1 for _, th in calls if th),
        "steady_throughput_rps": round(throughput, 2),
        "throughput_ratio": round(throughput / args.capacity, 3),
        "steady_throttled_share": round(throttled_share, 4),
        "peak_in_flight": limiter.peak_in_flight,
        "max_in_flight": args.max_in_flight,
        "final_rate": round(limiter.rate, 2),
        "job_status": job.status.value,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=float, default=20.0, help="model-server calls/s")
    parser.add_argument("--frames", type=int, default=800)
    parser.add_argument("--start-factor", type=float, default=1.5)
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    from brandlens_core.logging import configure_logging

    configure_logging("bench", "WARNING", json_output=False)
    result = asyncio.run(run(args))
    ok = (
        result["throughput_ratio"] >= 0.9
        and result["steady_throttled_share"] <= 0.05
        and result["frames_in_summary"] == result["frames_sent"] == result["frames_unique"]
        and result["peak_in_flight"] <= result["max_in_flight"]
    )
    print(f"capacity C                 {result['capacity_rps']:.1f} calls/s")
    print(f"sustained throughput       {result['steady_throughput_rps']:.2f} frames/s "
          f"= {result['throughput_ratio']:.3f} x C  (>= 0.9)")  # fmt: skip
    print(f"throttled at steady state  {100 * result['steady_throttled_share']:.2f} %  (<= 5 %)")
    print(f"frames                     {result['frames_in_summary']} in the summary, "
          f"{result['frames_unique']} unique, of {result['frames_sent']} sent")  # fmt: skip
    print(
        f"peak calls in flight       {result['peak_in_flight']} (bound {result['max_in_flight']})"
    )
    print(f"all calls / throttled      {result['calls']} / {result['throttled_calls']}")
    print("PASS" if ok else "FAIL")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(result | {"pass": ok, "at": datetime.now(UTC).isoformat()}, indent=2)
    )
    return 0  # a bench measures; PASS/FAIL above says how it went


if __name__ == "__main__":
    sys.exit(main())
