"""End to end with the real detector: train from a Ground Truth manifest in S3, run, detect.

The dataset is drawn here: a small "acme" logo (a red square with a yellow
bar) pasted at random places on noisy backgrounds, with a few negatives.
The server runs the real training process (``detector.train``) and loads the
result with the real runtime (``detector.runtime``); nothing is faked.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.integration.test_model_server_support import (
    MODEL_SERVER_SRC,
    ModelServerHarness,
    rekognition,
    unique,
    version_status,
    wait_status,
)
from tests.support import Stack

DETECTOR = MODEL_SERVER_SRC / "brandlens_model_server" / "detector"
SIZE = (448, 256)
# The training budget in steps (about 100 s on an idle 2-core machine with the pretrained
# detector): the detector's quality on this data depends on it, not on how busy the CPU
# is. The time limit is a safety stop, generous for a busy machine.
TRAINING_STEPS = int(os.environ.get("MODEL_SERVER_E2E_TRAINING_STEPS", "120"))
TRAINING_SECONDS = 900

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(TRAINING_SECONDS + 600),
    pytest.mark.skipif(
        not ((DETECTOR / "runtime.py").exists() and (DETECTOR / "train.py").exists()),
        reason="the detector (detector/runtime.py, detector/train.py) is not there yet",
    ),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed"),
]


def draw_image(rng: random.Random, logo: bool) -> tuple[bytes, tuple[int, int, int, int] | None]:
    """A noisy background, with the acme logo at a random place if ``logo``; JPEG + its box."""
    base = tuple(rng.randrange(40, 200) for _ in range(3))
    img = Image.effect_noise(SIZE, rng.uniform(10, 40)).convert("RGB")
    img = Image.blend(img, Image.new("RGB", SIZE, base), 0.6)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(1, 4)):  # distractors: blue and green blobs
        x, y, s = (
            rng.randrange(0, SIZE[0] - 40),
            rng.randrange(0, SIZE[1] - 40),
            rng.randrange(15, 40),
        )
        draw.ellipse((x, y, x + s, y + s), fill=rng.choice([(30, 60, 200), (40, 170, 60)]))
    box = None
    if logo:
        s = rng.randrange(48, 88)
        x, y = rng.randrange(0, SIZE[0] - s), rng.randrange(0, SIZE[1] - s)
        draw.rectangle((x, y, x + s - 1, y + s - 1), fill=(220, 20, 30))
        draw.rectangle(
            (x + s // 5, y + 2 * s // 5, x + 4 * s // 5, y + 3 * s // 5), fill=(250, 220, 0)
        )
        box = (x, y, s, s)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=92)
    return out.getvalue(), box


def manifest_line(uri: str, box: tuple[int, int, int, int] | None) -> dict[str, Any]:
    annotations = (
        [{"class_id": 0, "left": box[0], "top": box[1], "width": box[2], "height": box[3]}]
        if box
        else []
    )
    return {
        "source-ref": uri,
        "bounding-box": {
            "image_size": [{"width": SIZE[0], "height": SIZE[1], "depth": 3}],
            "annotations": annotations,
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in annotations],
            "class-map": {"0": "acme"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-11-21T10:00:00",
            "job-name": "labeling-job/acme-e2e",
        },
    }


async def upload_split(stack: Stack, root: str, rng: random.Random, n: int, name: str) -> str:
    s3, bucket = stack.clients.s3, stack.names.media_bucket
    lines = []
    for i in range(n):
        data, box = draw_image(rng, logo=i % 6 != 5)
        key = f"{root}/{name}/{i:04d}.jpg"
        await s3.put_object(Bucket=bucket, Key=key, Body=data)
        lines.append(json.dumps(manifest_line(f"s3://{bucket}/{key}", box)))
    manifest = f"{root}/{name}.manifest"
    await s3.put_object(Bucket=bucket, Key=manifest, Body=("\n".join(lines) + "\n").encode())
    return manifest


def iou(a: dict[str, float], b: dict[str, float]) -> float:
    ax1, ay1 = a["Left"] + a["Width"], a["Top"] + a["Height"]
    bx1, by1 = b["Left"] + b["Width"], b["Top"] + b["Height"]
    w = max(0.0, min(ax1, bx1) - max(a["Left"], b["Left"]))
    h = max(0.0, min(ay1, by1) - max(a["Top"], b["Top"]))
    inter = w * h
    return inter / (a["Width"] * a["Height"] + b["Width"] * b["Height"] - inter)


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(
        stack,
        tmp_path,
        overrides={
            # the real detector, not the stand-ins
            "BRANDLENS_MODEL_SERVER_TRAINING_MODULE": "brandlens_model_server.detector.train",
            "BRANDLENS_MODEL_SERVER_RUNTIME_MODULE": "brandlens_model_server.detector.runtime",
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_STEPS": str(TRAINING_STEPS),
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_SECONDS": str(TRAINING_SECONDS),
            "BRANDLENS_MODEL_SERVER_TRAINING_STOP_GRACE_SECONDS": "10",
        },
    )
    yield h
    await h.stop_all()


async def test_train_run_and_detect_with_the_real_detector(
    harness: ModelServerHarness, stack: Stack
) -> None:
    rng = random.Random(7)
    root = unique("training/acme-e2e")
    train_key = await upload_split(stack, root, rng, 48, "train")
    test_key = await upload_split(stack, root, rng, 12, "test")
    bucket = stack.names.media_bucket
    server = await harness.start()
    async with rekognition(server) as client:
        project = (await client.create_project(ProjectName=unique("acme")))["ProjectArn"]
        created = await client.create_project_version(
            ProjectArn=project,
            VersionName="v1",
            OutputConfig={"S3Bucket": stack.names.artifacts_bucket, "S3KeyPrefix": "models"},
            TrainingData={
                "Assets": [
                    {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": train_key}}}
                ]
            },
            TestingData={
                "Assets": [
                    {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": test_key}}}
                ]
            },
        )
        arn = created["ProjectVersionArn"]
        trained = await wait_status(
            client,
            project,
            "v1",
            "TRAINING_COMPLETED",
            "TRAINING_FAILED",
            timeout=TRAINING_SECONDS + 120,
        )
        assert trained["Status"] == "TRAINING_COMPLETED", (
            trained.get("StatusMessage"),
            harness.log_text()[-3000:],
        )
        # the version's own test set (12 held-out images) says the logo is learnt
        assert trained["EvaluationResult"]["F1Score"] >= 0.8, trained["EvaluationResult"]
        summary = trained["EvaluationResult"]["Summary"]["S3Object"]
        got = await stack.clients.s3.get_object(Bucket=summary["Bucket"], Key=summary["Name"])
        report = json.loads(await got["Body"].read())
        assert report["AggregatedEvaluationResults"]["F1Score"] == pytest.approx(
            trained["EvaluationResult"]["F1Score"], abs=1e-5
        )

        await client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        running = await wait_status(client, project, "v1", "RUNNING", "FAILED", timeout=120)
        assert running["Status"] == "RUNNING", running.get("StatusMessage")

        hits = 0
        probe_rng = random.Random(1234)
        for _ in range(5):
            data, box = draw_image(probe_rng, logo=True)
            assert box is not None
            truth = {
                "Left": box[0] / SIZE[0],
                "Top": box[1] / SIZE[1],
                "Width": box[2] / SIZE[0],
                "Height": box[3] / SIZE[1],
            }
            found = await client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": data})
            labels = found["CustomLabels"]
            if any(
                label["Name"] == "acme" and iou(label["Geometry"]["BoundingBox"], truth) >= 0.5
                for label in labels
            ):
                hits += 1
        assert hits >= 4, (
            f"the logo was found in {hits} of 5 images; last answer {labels}; "
            f"training: {json.dumps(report.get('Training'))[:2000]}"
        )

        await client.stop_project_version(ProjectVersionArn=arn)
        stopped = await wait_status(client, project, "v1", "STOPPED")
        assert stopped["Status"] == "STOPPED"
        assert (await version_status(client, project, "v1"))["EvaluationResult"]
