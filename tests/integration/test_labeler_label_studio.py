"""The labeler against a real Label Studio on loopback.

A training video with known logos goes through ingest and the framer; the labeler
opens a Label Studio project and imports the frames as tasks; the test then acts
as a labeller through Label Studio's own API; the webhook (or the poll) tells the
labeler, and the dataset's boxes must be the ones drawn, pixel for pixel.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from brandlens_cli.embedded import free_port
from brandlens_cli.labelstudio import LabelStudioServer
from brandlens_core.datasets import GROUP_FIELD, read_ground_truth
from brandlens_core.projects import LabelingBackend, Project, ProjectStore
from brandlens_framer.settings import FramerSettings, SamplingMode
from brandlens_labeler.app import create_worker, start_webhook
from brandlens_labeler.settings import LabelerSettings
from brandlens_synth import default_brands
from brandlens_synth.video import Appearance, FrameTruth, generate_video
from tests.integration.test_model_server_support import (
    ModelServerHarness,
    png_with_red_square,
    rekognition,
    train,
    wait_status,
)
from tests.support import (
    RunningWorker,
    Stack,
    eventually,
    fast_worker_settings,
    start_framer,
    start_ingest,
)

pytestmark = pytest.mark.integration

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 10, 6.0


@pytest.fixture(scope="module")
def training_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[FrameTruth]]:
    acme, globex = default_brands(2)
    path = Path(tmp_path_factory.mktemp("video")) / "clip.mp4"
    truth = generate_video(
        path,
        brands=[acme, globex],
        seconds=SECONDS,
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        seed=7,
        schedule=[
            Appearance(acme, 0.0, SECONDS, (0.05, 0.05, 0.4, 0.4)),
            Appearance(globex, 1.0, 5.0, (0.55, 0.5, 0.4, 0.45)),
        ],
    )
    return path.read_bytes(), truth


async def s3_text(stack: Stack, uri: str) -> str:
    bucket, key = uri[5:].split("/", 1)
    response = await stack.clients.s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return (await body.read()).decode()


class Labeller:
    """A person at Label Studio, through its REST API."""

    def __init__(self, server: LabelStudioServer) -> None:
        self.server = server
        self.headers = {"Authorization": f"Token {server.token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with (
            aiohttp.ClientSession(headers=self.headers) as session,
            session.request(method, self.server.url + path, **kwargs) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()

    async def tasks(self, project_id: int, batch_id: str) -> list[dict[str, Any]]:
        data = await self.call(
            "GET", "/api/tasks", params={"project": project_id, "page_size": 1000, "fields": "all"}
        )
        return [t for t in data["tasks"] if t["data"].get("batch") == batch_id]

    async def annotate(self, task_id: int, boxes: list[Any], width: int, height: int) -> None:
        result = [
            {
                "from_name": "label",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": width,
                "original_height": height,
                "value": {
                    "x": b.left / width * 100,
                    "y": b.top / height * 100,
                    "width": b.width / width * 100,
                    "height": b.height / height * 100,
                    "rotation": 0,
                    "rectanglelabels": [b.label],
                },
            }
            for b in boxes
        ]
        await self.call("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})


@dataclass
class Pipeline:
    settings: LabelerSettings
    workers: list[RunningWorker]
    exits: AsyncExitStack
    stack: Stack

    async def restart_labeler(self) -> None:
        """Stop the labeler (as a deploy or a crash would) and start a fresh one."""
        await self.workers[-1].stop()
        labeler = await create_worker(
            self.stack.clients, self.stack.names, self.settings, fast_worker_settings(), self.exits
        )
        self.workers[-1] = RunningWorker(labeler)


@pytest.fixture
async def pipeline(
    stack: Stack, label_studio: LabelStudioServer, request: pytest.FixtureRequest
) -> AsyncIterator[Pipeline]:
    """ingest + framer + labeler (with its webhook endpoint) on the test's stack."""
    webhook = getattr(request, "param", True)
    port = free_port()
    settings = LabelerSettings(
        label_studio_url=label_studio.url,
        label_studio_token=label_studio.token,  # type: ignore[arg-type]
        webhook_url=f"http://127.0.0.1:{port}/label-studio/webhook" if webhook else None,
        webhook_port=port if webhook else 0,
        webhook_secret="s3cret" if webhook else None,  # type: ignore[arg-type]
        # with the webhook, polls are too slow to matter within the test
        poll_interval_seconds=900 if webhook else 1,
        min_boxes_per_label=3,
        split_block_seconds=2.0,
    )
    await stack.capture_events()
    framer_settings = FramerSettings(training_mode=SamplingMode.INTERVAL, training_interval_ms=500)
    async with AsyncExitStack() as exits:
        workers = [await start_ingest(stack), await start_framer(stack, framer_settings)]
        labeler = await create_worker(
            stack.clients, stack.names, settings, fast_worker_settings(), exits
        )
        workers.append(RunningWorker(labeler))
        runner = await start_webhook(stack.clients, stack.names, settings)
        try:
            yield Pipeline(settings, workers, exits, stack)
        finally:
            for worker in workers:
                await worker.stop()
            if runner is not None:
                await runner.cleanup()


async def _run_labelling(
    stack: Stack,
    label_studio: LabelStudioServer,
    video: tuple[bytes, list[FrameTruth]],
    pipeline: Pipeline,
    *,
    restart: bool = False,
) -> None:
    data, truth = video
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    project_name = "acme-" + stack.names.stack_name
    await projects.create_project(
        Project(
            project=project_name,
            brands=[b.name for b in default_brands(2)],
            labeling=LabelingBackend.LABEL_STUDIO,
        )
    )
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key=f"training/{project_name}/clip.mp4", Body=data
    )
    opened = await eventually(
        lambda: stack.events_of("LabelingJobOpened"), timeout=90, message="LabelingJobOpened"
    )
    detail = opened[0]["detail"]
    assert detail["backend"] == "label-studio"
    batch_id, ls_project = detail["batch_id"], int(detail["external_id"])
    if restart:  # the labeler's state is in DynamoDB: a new one follows the same batch
        await pipeline.restart_labeler()
    labeller = Labeller(label_studio)
    tasks = await labeller.tasks(ls_project, batch_id)
    assert len(tasks) == detail["task_count"] == 12  # 6 s, one frame every 500 ms

    # the labeller sees the frame through the presigned URL Label Studio was given
    async with aiohttp.ClientSession() as session, session.get(tasks[0]["data"]["image"]) as r:
        assert r.status == 200
        assert (await r.read())[:2] == b"\xff\xd8"

    # the frame manifest says which source frame each task shows
    job_id = opened[0]["detail"]["job_ids"][0]
    manifest = await s3_text(
        stack, f"s3://{stack.names.artifacts_bucket}/frames/{job_id}/manifest.jsonl"
    )
    source_frame = {
        f"s3://{stack.names.artifacts_bucket}/{line['key']}": line["source_frame"]
        for line in map(json.loads, manifest.splitlines())
    }
    drawn: dict[str, list[Any]] = {}
    for task in tasks:
        boxes = list(truth[source_frame[task["data"]["frame"]]].boxes)
        drawn[task["data"]["frame"]] = boxes
        await labeller.annotate(task["id"], boxes, WIDTH, HEIGHT)

    ready = await eventually(
        lambda: stack.events_of("DatasetReady"), timeout=60, message="DatasetReady"
    )
    dataset = ready[0]["detail"]
    train = read_ground_truth(
        await s3_text(stack, dataset["train_manifest_uri"]), group_field=GROUP_FIELD
    )
    test = read_ground_truth(
        await s3_text(stack, dataset["test_manifest_uri"]), group_field=GROUP_FIELD
    )
    assert dataset["train_image_count"] == len(train.images) > 0
    assert dataset["test_image_count"] == len(test.images) > 0
    assert len(train.images) + len(test.images) == 12
    # no block of frames on both sides of the split
    assert not {i.group for i in train.images} & {i.group for i in test.images}
    for image in train.images + test.images:
        expected = sorted(
            (b.label, b.left, b.top, b.width, b.height) for b in drawn[image.source_ref]
        )
        got = sorted((b.label, b.left, b.top, b.width, b.height) for b in image.boxes)
        assert got == expected, image.source_ref
        assert (image.width, image.height) == (WIDTH, HEIGHT)
    assert dataset["box_count"] == sum(len(b) for b in drawn.values())
    job = await stack.clients.dynamodb.get_item(
        TableName=stack.names.table("jobs"), Key={"job_id": {"S": job_id}}
    )
    assert job["Item"]["status"]["S"] == "COMPLETED"
    assert not await stack.events_of("LabelingFailed")
    # every annotation woke the labeler (a webhook or a poll each): one dataset all the same
    await eventually(lambda: _drained(stack), timeout=30, message="labeler queue drained")
    assert len(await stack.events_of("DatasetReady")) == 1
    assert len(await stack.events_of("LabelingJobOpened")) == 1


async def test_label_studio_labels_become_a_dataset_by_webhook(
    stack: Stack,
    label_studio: LabelStudioServer,
    pipeline: Pipeline,
    training_video: tuple[bytes, list[FrameTruth]],
) -> None:
    assert pipeline.settings.poll_interval_seconds == 900  # only the webhook can finish in time
    await _run_labelling(stack, label_studio, training_video, pipeline)


@pytest.mark.parametrize("pipeline", [False], indirect=True)
async def test_label_studio_labels_become_a_dataset_by_polling(
    stack: Stack,
    label_studio: LabelStudioServer,
    pipeline: Pipeline,
    training_video: tuple[bytes, list[FrameTruth]],
) -> None:
    """Without a webhook, and with the labeler restarted while the batch is open."""
    assert pipeline.settings.webhook_url is None
    await _run_labelling(stack, label_studio, training_video, pipeline, restart=True)


async def test_model_assisted_tasks_carry_the_current_models_boxes(
    stack: Stack, label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    """With a running model, frames reach Label Studio with its boxes as predictions."""
    harness = ModelServerHarness(stack, tmp_path)
    server = await harness.start()
    await stack.capture_events()
    try:
        async with rekognition(server) as client, AsyncExitStack() as exits:
            project_arn, version_arn, version = await train(client, stack)
            await client.start_project_version(ProjectVersionArn=version_arn, MinInferenceUnits=1)
            await wait_status(client, project_arn, version, "RUNNING")
            projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
            await projects.create_project(
                Project(
                    project="assist-" + stack.names.stack_name,
                    brands=["acme"],
                    labeling=LabelingBackend.LABEL_STUDIO,
                    current_model_arn=version_arn,
                )
            )
            settings = LabelerSettings(
                label_studio_url=label_studio.url,
                label_studio_token=label_studio.token,  # type: ignore[arg-type]
                poll_interval_seconds=900,
            )
            workers = [await start_ingest(stack), await start_framer(stack)]
            labeler = await create_worker(
                stack.clients, stack.names, settings, fast_worker_settings(), exits,
                rekognition=client,
            )  # fmt: skip
            workers.append(RunningWorker(labeler))
            try:
                await stack.clients.s3.put_object(
                    Bucket=stack.names.media_bucket,
                    Key=f"training/assist-{stack.names.stack_name}/shelf.png",
                    Body=png_with_red_square((200, 100), (20, 10, 60, 50)),
                )
                opened = await eventually(
                    lambda: _opened_in(stack, "assist-" + stack.names.stack_name),
                    timeout=60,
                    message="opened",
                )
            finally:
                for worker in workers:
                    await worker.stop()
    finally:
        await harness.stop_all()
    detail = opened[0]["detail"]
    (task,) = await Labeller(label_studio).tasks(int(detail["external_id"]), detail["batch_id"])
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == version
    (result,) = prediction["result"]  # the 12.5 % whole-frame box is below the floor
    value = result["value"]
    assert value["rectanglelabels"] == ["acme"]
    # the red square: x 20-60 of 200, y 10-50 of 100 (JPEG may blur an edge by a pixel)
    assert value["x"] == pytest.approx(10, abs=0.6)
    assert value["y"] == pytest.approx(10, abs=1.1)
    assert value["width"] == pytest.approx(20, abs=1.1)
    assert value["height"] == pytest.approx(40, abs=2.1)
    assert result["score"] == pytest.approx(0.95)


async def _drained(stack: Stack) -> bool:
    return await stack.queue_depth(stack.queue_urls["labeler"]) == 0


async def _opened_in(stack: Stack, project: str) -> list[dict[str, Any]]:
    # (the model-server's own training images sit under training/ too: other batches)
    return [
        e for e in await stack.events_of("LabelingJobOpened") if e["detail"]["project"] == project
    ]
