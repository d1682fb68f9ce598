"""The whole pipeline on the embedded stack with a trained model: shared by the chaos test
(tests/chaos) and the load bench (bench/load.py).

:func:`trained_fleet` starts every service in its own process (moto server, model-server,
the supervisor that restarts what dies), drops a short labelled training video into the
media bucket as a producer would, and waits until the project has a TRAINED model. The
model is small and trained for :data:`BASE_TRAINING_STEPS`: what these runs measure is
the flow (every frame analysed once, nothing stuck), not detection quality.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brandlens_cli.embedded import LOCAL_CREDENTIALS, SERVICES, EmbeddedStack
from brandlens_core.aws import AwsClients
from brandlens_core.jobs import Job, JobStore
from brandlens_core.projects import ProjectStore
from brandlens_core.settings import AwsSettings
from brandlens_synth import default_brands
from brandlens_synth.brands import Brand
from brandlens_synth.demo import coco_annotations
from brandlens_synth.video import generate_video, make_schedule
from brandlens_trainer.models import ModelStatus, ModelStore, ModelVersion

BASE_PROJECT = "base"
# about 20 s of training on an idle 2-core machine (what the former 40 s budget gave)
BASE_TRAINING_STEPS = 75
WIDTH, HEIGHT = 640, 360


def worker_env(**values: str) -> dict[str, str]:
    """``BRANDLENS_<SERVICE>_WORKER_<NAME>`` for every queue-fed service."""
    env: dict[str, str] = {}
    for service in SERVICES:
        if service == "model-server":
            continue
        prefix = f"BRANDLENS_{service.upper().replace('-', '_')}_WORKER_"
        env |= {prefix + name.upper(): value for name, value in values.items()}
    return env


#: Settings for runs of many short jobs: short visibility (a killed worker's messages come
#: back in seconds), short retry delays and polls, small training, 250 ms analysis grid.
FLEET_ENV: dict[str, str] = {
    **worker_env(
        visibility_timeout_seconds="10",
        retry_base_delay_seconds="1",
        retry_max_delay_seconds="8",
        wait_time_seconds="2",
    ),
    "BRANDLENS_FRAMER_TRAINING_MODE": "interval",
    "BRANDLENS_FRAMER_TRAINING_INTERVAL_MS": "250",
    "BRANDLENS_FRAMER_ANALYSIS_MODE": "interval",
    "BRANDLENS_FRAMER_ANALYSIS_INTERVAL_MS": "250",
    "BRANDLENS_LABELER_MIN_BOXES_PER_LABEL": "5",
    "BRANDLENS_LABELER_SPLIT_BLOCK_SECONDS": "2",
    "BRANDLENS_TRAINER_POLL_INTERVAL_SECONDS": "2",
    "BRANDLENS_TRAINER_POLL_MAX_INTERVAL_SECONDS": "4",
    "BRANDLENS_MODEL_SERVER_MAX_TRAINING_STEPS": str(BASE_TRAINING_STEPS),
    "BRANDLENS_INFERER_WAIT_DELAY_SECONDS": "2",
    "BRANDLENS_INFERER_CHECK_INTERVAL_SECONDS": "20",
    "BRANDLENS_INFERER_AGGREGATION_CLAIM_SECONDS": "30",
}


def training_media(directory: Path, brands: list[Brand], *, seconds: float, seed: int) -> Path:
    """A labelled training video: ``<name>.mp4`` and its COCO ``<name>.json`` beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    video = directory / f"train{seed}.mp4"
    truth = generate_video(
        video, brands=brands, seconds=seconds, fps=8, width=WIDTH, height=HEIGHT, seed=seed,
        schedule=make_schedule(brands, seconds, seed=seed),
    )  # fmt: skip
    video.with_suffix(".json").write_bytes(coco_annotations(truth, WIDTH, HEIGHT))
    return video


def analysis_video(directory: Path, brands: list[Brand], *, seconds: float, seed: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    video = directory / f"clip{seed}.mp4"
    generate_video(
        video, brands=brands, seconds=seconds, fps=8, width=WIDTH, height=HEIGHT, seed=seed
    )
    return video


@dataclass
class Fleet:
    stack: EmbeddedStack
    clients: AwsClients
    brands: list[Brand]
    media_dir: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def jobs(self) -> JobStore:
        return JobStore(self.clients.dynamodb, self.stack.names.table("jobs"))

    @property
    def models(self) -> ModelStore:
        return ModelStore(ProjectStore(self.clients.dynamodb, self.stack.names.table("projects")))

    async def put(self, key: str, path: Path) -> None:
        await self.clients.s3.put_object(
            Bucket=self.stack.names.media_bucket, Key=key, Body=path.read_bytes()
        )

    async def submit_training(self, project: str, video: Path) -> None:
        """Annotations first (the labeler finds them when the frames are ready), then the video."""
        await self.put(
            f"training/{project}/annotations/{video.stem}.json", video.with_suffix(".json")
        )
        await self.put(f"training/{project}/{video.name}", video)

    async def wait_trained(self, project: str, timeout_seconds: float) -> ModelVersion:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            versions = await self.models.all(project)
            if versions and versions[-1].status is ModelStatus.TRAINED:
                return versions[-1]
            if versions and versions[-1].status is ModelStatus.FAILED:
                raise AssertionError(f"training {project!r} failed: {versions[-1].reason}")
            await asyncio.sleep(1)
        raise AssertionError(
            f"no trained model for {project!r} in {timeout_seconds:.0f}s; "
            f"logs in {self.stack.state_dir / 'logs'}"
        )

    async def all_jobs(self) -> list[Job]:
        """Every job row (a scan: test stacks hold a few hundred)."""
        table = self.stack.names.table("jobs")
        rows: list[Job] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = await self.clients.dynamodb.scan(**kwargs)
            rows.extend(Job.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def queue_depths(self) -> dict[str, int]:
        """Messages in each service queue and DLQ (visible + in flight + delayed)."""
        sqs, names = self.clients.sqs, self.stack.names
        depths: dict[str, int] = {}
        for service in SERVICES:
            if service == "model-server":
                continue
            for queue in (names.queue(service), names.dlq(service)):
                url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
                a = (
                    await sqs.get_queue_attributes(
                        QueueUrl=url,
                        AttributeNames=[
                            "ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed",
                        ],
                    )
                )["Attributes"]
                depths[queue.removeprefix(f"{names.stack_name}-")] = sum(int(v) for v in a.values())
        return depths

    async def read_json(self, bucket: str, key: str) -> Any:
        response = await self.clients.s3.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            return json.loads(await body.read())

    async def frame_tally(self, job: Job) -> FrameTally:
        """What happened to each frame of a completed analysis job: in the framer's manifest,
        in the per-batch detections, in the summary."""
        artifacts = self.stack.names.artifacts_bucket
        manifest_key = str(job.framing["manifest_key"])
        response = await self.clients.s3.get_object(Bucket=artifacts, Key=manifest_key)
        async with response["Body"] as body:
            text = (await body.read()).decode()
        manifest = [int(json.loads(line)["index"]) for line in text.splitlines() if line.strip()]
        batch_count = int(job.framing["batch_count"])
        detected: Counter[int] = Counter()
        for index in range(batch_count):
            batch = await self.read_json(artifacts, f"detections/{job.job_id}/{index:06d}.json")
            detected.update(int(f["index"]) for f in batch["frames"])
        summary = await self.read_json(artifacts, str(job.summary_key))
        return FrameTally(
            manifest=manifest,
            detected=detected,
            summary_indexes=[int(i) for i in summary["frame_indexes"]],
            summary_frame_count=int(summary["frame_count"]),
            batches=batch_count,
            batches_counted=job.batches_done,
        )


@dataclass
class FrameTally:
    manifest: list[int]
    detected: Counter[int]
    summary_indexes: list[int]
    summary_frame_count: int
    batches: int
    batches_counted: int

    def problems(self) -> list[str]:
        """Empty when every frame of the manifest was analysed exactly once."""
        out = []
        if len(set(self.manifest)) != len(self.manifest):
            out.append("the manifest repeats a frame")
        twice = sorted(i for i, n in self.detected.items() if n > 1)
        if twice:
            out.append(f"frames in more than one batch: {twice}")
        if set(self.detected) != set(self.manifest):
            out.append(
                f"detections cover {len(self.detected)} frames, the manifest {len(self.manifest)}"
            )
        if sorted(self.summary_indexes) != sorted(self.manifest):
            out.append("the summary's frames differ from the manifest's")
        if self.summary_frame_count != len(self.manifest):
            out.append(f"summary frame_count {self.summary_frame_count} != {len(self.manifest)}")
        if self.batches_counted != self.batches:
            out.append(f"{self.batches_counted} batches counted of {self.batches}")
        return out


@asynccontextmanager
async def trained_fleet(
    state_dir: Path,
    media_dir: Path,
    *,
    stack_name: str,
    extra_env: dict[str, str] | None = None,
    brands: int = 2,
    training_seconds: float = 12.0,
    timeout_seconds: float = 300.0,
    persist: bool = True,
) -> AsyncIterator[Fleet]:
    """Every service up, project :data:`BASE_PROJECT` trained; stops everything on exit.

    ``persist=False`` runs moto without a state dir (bench/persistence.py's baseline)."""
    chosen = default_brands(brands)
    stack = EmbeddedStack(
        stack_name=stack_name,
        state_dir=state_dir,
        extra_env=FLEET_ENV | (extra_env or {}),
        persist=persist,
    )
    started = time.monotonic()
    video, _ = await asyncio.gather(
        asyncio.to_thread(training_media, media_dir, chosen, seconds=training_seconds, seed=3),
        stack.start(),
    )
    try:
        settings = AwsSettings(endpoint_url=stack.endpoint_url)
        async with AwsClients(settings) as clients:
            fleet = Fleet(stack=stack, clients=clients, brands=chosen, media_dir=media_dir)
            fleet.timings["stack_and_media_seconds"] = time.monotonic() - started
            await fleet.submit_training(BASE_PROJECT, video)
            await fleet.wait_trained(BASE_PROJECT, timeout_seconds)
            fleet.timings["base_model_seconds"] = time.monotonic() - started
            yield fleet
    finally:
        await stack.stop()


__all__ = ["LOCAL_CREDENTIALS", "Fleet", "FrameTally", "trained_fleet"]
