"""Imported annotations: files dropped under training/<project>/annotations/ label the
frames of the training video they are named after, whichever arrives first."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from brandlens_core.datasets import GROUP_FIELD, is_block, read_ground_truth
from brandlens_framer.settings import FramerSettings, SamplingMode
from brandlens_labeler.app import create_worker
from brandlens_labeler.settings import LabelerSettings
from brandlens_synth import default_brands
from brandlens_synth.video import Appearance, FrameTruth, generate_video
from tests.support import (
    RunningWorker,
    Stack,
    eventually,
    fast_worker_settings,
    start_framer,
    start_ingest,
)

pytestmark = pytest.mark.integration

SOURCE_W, SOURCE_H = 1600, 900  # framed at 1280x720: boxes scale by 0.8
SCALE = 0.8


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, list[FrameTruth]]]:
    acme, globex = default_brands(2)
    out = {}
    for name, seed, schedule in (
        ("clip", 11, [Appearance(acme, 0.0, 3.0, (0.1, 0.1, 0.3, 0.3))]),
        ("second", 12, [Appearance(acme, 0.0, 3.0, (0.5, 0.5, 0.3, 0.3)),
                        Appearance(globex, 0.0, 3.0, (0.05, 0.55, 0.3, 0.3))]),
    ):  # fmt: skip
        path = Path(tmp_path_factory.mktemp("import")) / f"{name}.mp4"
        truth = generate_video(
            path, brands=[acme, globex], seconds=3.0, fps=10, width=SOURCE_W, height=SOURCE_H,
            seed=seed, schedule=schedule,
        )  # fmt: skip
        out[name] = (path.read_bytes(), truth)
    return out


def coco_for(truth: list[FrameTruth]) -> bytes:
    names = sorted({b.label for t in truth for b in t.boxes})
    ids = {name: 10 + i for i, name in enumerate(names)}
    images, annotations = [], []
    for t in truth:
        images.append(
            {"id": t.frame_index + 1, "file_name": f"frame_{t.frame_index:06d}.jpg",
             "width": SOURCE_W, "height": SOURCE_H}
        )  # fmt: skip
        for b in t.boxes:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": t.frame_index + 1,
                 "category_id": ids[b.label], "bbox": [b.left, b.top, b.width, b.height]}
            )  # fmt: skip
    categories = [{"id": i, "name": n} for n, i in ids.items()]
    return json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}
    ).encode()


def yolo_for(truth: list[FrameTruth], names: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("data.yaml", f"names: [{', '.join(names)}]\n")
        for t in truth:
            lines = [
                f"{names.index(b.label)} {(b.left + b.width / 2) / SOURCE_W:.6f} "
                f"{(b.top + b.height / 2) / SOURCE_H:.6f} {b.width / SOURCE_W:.6f} "
                f"{b.height / SOURCE_H:.6f}"
                for b in t.boxes
            ]
            archive.writestr(f"labels/frame_{t.frame_index:06d}.txt", "\n".join(lines))
    return out.getvalue()


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Stack]:
    await stack.capture_events()
    settings = LabelerSettings(min_boxes_per_label=2, split_block_seconds=1.0)
    framer = FramerSettings(training_mode=SamplingMode.INTERVAL, training_interval_ms=500)
    async with AsyncExitStack() as exits:
        workers = [await start_ingest(stack), await start_framer(stack, framer)]
        labeler = await create_worker(
            stack.clients, stack.names, settings, fast_worker_settings(), exits
        )
        workers.append(RunningWorker(labeler))
        try:
            yield stack
        finally:
            for worker in workers:
                await worker.stop()


async def text_of(stack: Stack, uri: str) -> str:
    bucket, key = uri[5:].split("/", 1)
    response = await stack.clients.s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return (await body.read()).decode()


async def put(stack: Stack, key: str, body: bytes) -> None:
    await stack.clients.s3.put_object(Bucket=stack.names.media_bucket, Key=key, Body=body)


async def dataset_images(stack: Stack, detail: dict[str, Any]) -> list[Any]:
    images = []
    for uri in (detail["train_manifest_uri"], detail["test_manifest_uri"]):
        images.extend(read_ground_truth(await text_of(stack, uri), group_field=GROUP_FIELD).images)
    return images


async def frame_truth(stack: Stack, job_id: str, truth: list[FrameTruth]) -> dict[str, list[tuple]]:
    manifest = await text_of(
        stack, f"s3://{stack.names.artifacts_bucket}/frames/{job_id}/manifest.jsonl"
    )
    expected = {}
    for line in map(json.loads, manifest.splitlines()):
        boxes = truth[line["source_frame"]].boxes
        expected[f"s3://{stack.names.artifacts_bucket}/{line['key']}"] = sorted(
            (b.label, round(b.left * SCALE, 2), round(b.top * SCALE, 2),
             round(b.width * SCALE, 2), round(b.height * SCALE, 2))
            for b in boxes
        )  # fmt: skip
    return expected


def boxes_of(image: Any) -> list[tuple]:
    return sorted((b.label, b.left, b.top, b.width, b.height) for b in image.boxes)


async def test_annotations_before_and_after_the_video(
    pipeline: Stack, videos: dict[str, tuple[bytes, list[FrameTruth]]]
) -> None:
    stack = pipeline
    clip, clip_truth = videos["clip"]
    # 1. COCO first, then the video it is named after
    await put(stack, "training/imp/annotations/clip.json", coco_for(clip_truth))
    await put(stack, "training/imp/clip.mp4", clip)
    ready = await eventually(
        lambda: stack.events_of("DatasetReady"), timeout=60, message="first dataset"
    )
    first = ready[0]["detail"]
    job_one = first["job_ids"][0]
    expected = await frame_truth(stack, job_one, clip_truth)
    images = await dataset_images(stack, first)
    assert len(images) == len(expected) == 6  # 3 s, a frame every 500 ms
    for image in images:
        assert boxes_of(image) == expected[image.source_ref]
    assert first["labels"] == ["acme"]
    # the annotations file is the labeler's: ingest made no job of it
    rows = (await stack.clients.dynamodb.scan(TableName=stack.names.table("jobs")))["Items"]
    assert [r["media"]["M"]["key"]["S"] for r in rows] == ["training/imp/clip.mp4"]

    # 2. the second video first: it waits, visibly, for its annotations
    second, second_truth = videos["second"]
    await put(stack, "training/imp/second.mp4", second)

    async def waiting() -> Any:
        jobs = await stack.clients.dynamodb.scan(TableName=stack.names.table("jobs"))
        for item in jobs["Items"]:
            if (
                item["media"]["M"]["key"]["S"].endswith("second.mp4")
                and item["status"]["S"] == "LABELING"
                and "progress" in item
            ):
                return item
        return None

    row = await eventually(waiting, timeout=60, message="second job waiting for labels")
    assert "waiting for annotations of second.mp4" in row["progress"]["M"]["note"]["S"]
    await put(
        stack, "training/imp/annotations/second.zip", yolo_for(second_truth, ["acme", "globex"])
    )

    async def two() -> list[dict[str, Any]]:
        return [
            e for e in await stack.events_of("DatasetReady") if len(e["detail"]["job_ids"]) == 2
        ]

    both = (await eventually(two, timeout=60, message="second dataset"))[0]["detail"]
    job_two = next(j for j in both["job_ids"] if j != job_one)
    expected |= await frame_truth(stack, job_two, second_truth)
    images = await dataset_images(stack, both)
    assert len(images) == 12
    for image in images:
        got, want = boxes_of(image), expected[image.source_ref]
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):  # YOLO keeps 6 decimals of a fraction
            assert g[0] == w[0]
            assert all(abs(a - b) <= 0.01 for a, b in zip(g[1:], w[1:], strict=True)), (g, w)
    assert both["labels"] == ["acme", "globex"]
    # two videos (fewer than SPLIT_MIN_VIDEOS): split by 1 s blocks of each video, no block
    # on both sides
    train = read_ground_truth(
        await text_of(stack, both["train_manifest_uri"]), group_field=GROUP_FIELD
    )
    test = read_ground_truth(
        await text_of(stack, both["test_manifest_uri"]), group_field=GROUP_FIELD
    )
    assert {i.group for i in train.images}.isdisjoint({i.group for i in test.images})
    assert all(is_block(i.group) for i in train.images + test.images)

    # 3. the same FramesExtracted delivered again: nothing happens twice
    framed = [
        e for e in await stack.events_of("FramesExtracted") if e["detail"]["job_id"] == job_one
    ]
    await stack.clients.sqs.send_message(
        QueueUrl=stack.queue_urls["labeler"], MessageBody=json.dumps(framed[0])
    )
    await stack.clients.sqs.send_message(
        QueueUrl=stack.queue_urls["labeler"], MessageBody=json.dumps(framed[0])
    )
    await eventually(lambda: _drained(stack), timeout=30, message="labeler queue drained")
    assert len(await stack.events_of("LabelingJobOpened")) == 2
    assert len(await stack.events_of("DatasetReady")) == 2
    assert not await stack.events_of("LabelingFailed")


async def _drained(stack: Stack) -> bool:
    return await stack.queue_depth(stack.queue_urls["labeler"]) == 0


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("clip.json", b'{"images": [', "not valid JSON"),
        ("clip.json", None, "extends past the image width"),
        ("clip.zip", b"not a zip at all", "not a valid zip"),
        ("clip.manifest", b'{"source-ref": "s3://x/frame_000001.jpg"}\n', "line 1"),
        # hostile contents (issue 10's corpus)
        ("clip.json", b"\xff\xfe{\x00 not utf-8 \x80\x81", "not UTF-8"),
        ("clip.json", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (
            "clip.json",
            b'{"images": [], "annotations": [], "categories": ' + b"{" * 5000,
            "not valid JSON",
        ),
        ("clip.json", "NaN", "must be a finite number"),
        ("clip.json", "unknown-category", "is not the id of a category"),
        ("clip.json", "script-name", "control character U+0007"),
        ("clip.json", "duplicate-ids", "duplicate image id"),
    ],
)
async def test_malformed_annotations_fail_the_job_with_the_reason(
    pipeline: Stack,
    videos: dict[str, tuple[bytes, list[FrameTruth]]],
    name: str,
    body: bytes | str | None,
    reason: str,
) -> None:
    stack = pipeline
    clip, truth = videos["clip"]
    if body is None:  # a box that lies far outside the image it is drawn on
        data = json.loads(coco_for(truth))
        data["annotations"][0]["bbox"] = [SOURCE_W + 500, 10, 50, 50]
        body = json.dumps(data).encode()
    elif isinstance(body, str):  # a valid COCO file made hostile in one place
        data = json.loads(coco_for(truth))
        if body == "NaN":
            data["annotations"][0]["bbox"] = [float("nan"), 10, 50, 50]
        elif body == "unknown-category":
            data["annotations"][0]["category_id"] = 999
        elif body == "script-name":
            data["categories"][0]["name"] = "<script>alert(1)</script>\u0007"
        elif body == "duplicate-ids":
            data["images"].append(dict(data["images"][0]))
        body = json.dumps(data).encode()
    await put(stack, f"training/bad/annotations/{name}", body)
    await put(stack, "training/bad/clip.mp4", clip)
    failed = await eventually(
        lambda: stack.events_of("LabelingFailed"), timeout=60, message="failed"
    )
    detail = failed[0]["detail"]
    assert f"training/bad/annotations/{name}" in detail["reason"]
    assert reason in detail["reason"]
    job_id = (await stack.events_of("LabelingJobOpened"))[0]["detail"]["job_ids"][0]
    job = await stack.clients.dynamodb.get_item(
        TableName=stack.names.table("jobs"), Key={"job_id": {"S": job_id}}
    )
    assert job["Item"]["status"]["S"] == "FAILED"
    assert reason in job["Item"]["reason"]["S"]
    assert not await stack.events_of("DatasetReady")
    dlq = await stack.dlq_url("labeler")
    assert await stack.queue_depth(dlq) == 0


def jpeg(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG")
    return out.getvalue()


async def test_manual_batches_gather_images_on_request(pipeline: Stack) -> None:
    """Image collections: frames wait until `brandlens label` gathers them into one batch."""
    from brandlens_cli.labeling import _label
    from brandlens_cli.target import Target
    from brandlens_core.projects import BatchMode, Project, ProjectStore

    stack = pipeline
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    await projects.create_project(
        Project(project="photos", brands=["acme"], batch_mode=BatchMode.MANUAL)
    )
    collection = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "shop/b.jpg", "width": 640, "height": 480},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [100, 120, 60, 50]},
        ],
        "categories": [{"id": 1, "name": "acme"}],
    }
    await put(stack, "training/photos/annotations/all.json", json.dumps(collection).encode())
    await put(stack, "training/photos/a.jpg", jpeg(640, 480, (200, 30, 30)))
    await put(stack, "training/photos/b.jpg", jpeg(640, 480, (30, 200, 30)))

    async def waiting() -> list[Any]:
        rows = (await stack.clients.dynamodb.scan(TableName=stack.names.table("jobs")))["Items"]
        ready = [r for r in rows if r["status"]["S"] == "LABELING" and "progress" in r]
        return ready if len(ready) == 2 else []

    rows = await eventually(waiting, timeout=60, message="two jobs waiting to be gathered")
    assert all("brandlens label photos" in r["progress"]["M"]["note"]["S"] for r in rows)
    assert not await stack.events_of("LabelingJobOpened")

    target = Target(aws=stack.clients.settings, names=stack.names, description="test")
    assert await _label(target, "photos", []) == 0
    ready = await eventually(lambda: stack.events_of("DatasetReady"), timeout=60, message="ready")
    detail = ready[0]["detail"]
    assert sorted(detail["job_ids"]) == sorted(r["job_id"]["S"] for r in rows)
    assert detail["train_image_count"] + detail["test_image_count"] == 2
    images = {i.source_ref: i for i in await dataset_images(stack, detail)}
    by_job = {r["job_id"]["S"]: r["media"]["M"]["key"]["S"] for r in rows}
    for ref, image in images.items():
        job_id = ref.split("/")[-2]
        (box,) = image.boxes
        if by_job[job_id].endswith("a.jpg"):
            assert (box.left, box.top, box.width, box.height) == (10, 20, 30, 40)
        else:
            assert (box.left, box.top, box.width, box.height) == (100, 120, 60, 50)
    (opened,) = await stack.events_of("LabelingJobOpened")
    assert opened["detail"]["task_count"] == 2


def renamed(coco: bytes, names: dict[str, str]) -> bytes:
    data = json.loads(coco)
    for category in data["categories"]:
        category["name"] = names.get(category["name"], category["name"])
    return json.dumps(data).encode()


async def job_row(stack: Stack, job_id: str) -> dict[str, Any]:
    response = await stack.clients.dynamodb.get_item(
        TableName=stack.names.table("jobs"), Key={"job_id": {"S": job_id}}
    )
    return response["Item"]


async def test_labels_match_brands_ignoring_case_and_unknown_ones_fail_visibly(
    pipeline: Stack, videos: dict[str, tuple[bytes, list[FrameTruth]]]
) -> None:
    """Issue 17: labels `ACME`/` globex ` for brands Acme/Globex train as Acme/Globex; a label
    that matches no brand fails its batch and job at once, naming it and the brands (it
    used to leave the batch OPEN 0/6 and the job LABELING, the error retried to nothing)."""
    from brandlens_core.projects import Project, ProjectStore
    from brandlens_labeler.batches import BatchStore

    stack = pipeline
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    for name in ("cased", "unknown"):
        await projects.create_project(Project(project=name, brands=["Acme", "Globex"]))
    second, truth = videos["second"]  # acme and globex
    await put(
        stack,
        "training/cased/annotations/second.json",
        renamed(coco_for(truth), {"acme": "ACME", "globex": " globex "}),
    )
    await put(
        stack,
        "training/unknown/annotations/second.json",
        renamed(coco_for(truth), {"globex": "initech"}),
    )
    await put(stack, "training/cased/second.mp4", second)
    await put(stack, "training/unknown/second.mp4", second)

    ready = await eventually(lambda: stack.events_of("DatasetReady"), timeout=60, message="ready")
    detail = ready[0]["detail"]
    assert detail["project"] == "cased"
    assert detail["labels"] == ["Acme", "Globex"]
    images = await dataset_images(stack, detail)
    assert len(images) == 6
    assert {b.label for i in images for b in i.boxes} == {"Acme", "Globex"}

    failed = await eventually(
        lambda: stack.events_of("LabelingFailed"), timeout=60, message="LabelingFailed"
    )
    (event,) = failed
    reason = event["detail"]["reason"]
    assert event["detail"]["project"] == "unknown"
    assert "'initech' match no brand of the project" in reason
    assert "its brands are 'Acme', 'Globex'" in reason
    (batch,) = await BatchStore(projects).all("unknown")
    assert batch.status.value == "FAILED"
    assert batch.reason == reason
    job = await job_row(stack, batch.job_ids[0])
    assert job["status"]["S"] == "FAILED"
    assert job["reason"]["S"] == reason
    # nothing was retried: the labeler's queue is empty and so is its DLQ
    await eventually(lambda: _drained(stack), timeout=30, message="labeler queue drained")
    assert await stack.queue_depth(await stack.dlq_url("labeler")) == 0
    assert len(await stack.events_of("DatasetReady")) == 1
