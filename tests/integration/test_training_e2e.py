"""End to end on the embedded stack (every service its own process, the real detector):
a training video and its annotations dropped into the media bucket become frames, a
dataset, a trained and evaluated model version and a ModelTrained event; nothing is
triggered by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from brandlens_cli.embedded import EmbeddedStack
from brandlens_core.aws import AwsClients
from brandlens_core.projects import ProjectStore
from brandlens_core.settings import AwsSettings
from brandlens_synth import default_brands
from brandlens_synth.video import generate_video, make_schedule
from brandlens_trainer.models import ModelStore
from tests.integration.test_labeler_import import coco_for
from tests.support import Stack, eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed"),
]

# The step budget (about 25 s on an idle 2-core machine); the timeouts allow a busy one.
TRAINING_STEPS = 90


async def test_video_and_annotations_become_a_trained_model(tmp_path: Path) -> None:
    (acme,) = default_brands(1)
    video = tmp_path / "clip.mp4"
    truth = generate_video(
        video, brands=[acme], seconds=10.0, fps=10, width=1600, height=900, seed=5,
        schedule=make_schedule([acme], 10.0, seed=5),
    )  # fmt: skip
    embedded = EmbeddedStack(
        stack_name="e2e",
        state_dir=tmp_path / "state",
        services=("ingest", "framer", "labeler", "trainer", "model-server"),
        extra_env={
            "BRANDLENS_FRAMER_TRAINING_MODE": "interval",
            "BRANDLENS_FRAMER_TRAINING_INTERVAL_MS": "250",
            "BRANDLENS_LABELER_MIN_BOXES_PER_LABEL": "5",
            "BRANDLENS_LABELER_SPLIT_BLOCK_SECONDS": "2",
            "BRANDLENS_TRAINER_POLL_INTERVAL_SECONDS": "2",
            "BRANDLENS_TRAINER_POLL_MAX_INTERVAL_SECONDS": "5",
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_STEPS": str(TRAINING_STEPS),
        },
    )
    await embedded.start()
    try:
        settings = AwsSettings(endpoint_url=embedded.endpoint_url)  # type: ignore[arg-type]
        async with AwsClients(settings) as clients:
            stack = Stack(
                names=embedded.names, queue_urls={}, clients=clients,
                endpoint_url=embedded.endpoint_url,
            )  # fmt: skip
            await stack.capture_events()
            media = embedded.names.media_bucket
            # the producer's side: annotations (COCO, named after the video) and the video
            await clients.s3.put_object(
                Bucket=media, Key="training/shop/annotations/clip.json", Body=coco_for(truth)
            )
            await clients.s3.put_object(
                Bucket=media, Key="training/shop/clip.mp4", Body=video.read_bytes()
            )
            trained = await eventually(
                lambda: stack.events_of("ModelTrained"),
                timeout=480,
                interval=1,
                message="ModelTrained",
            )
            seen = [e["detail-type"] for e in stack.captured]
            for step in ("MediaAccepted", "FramesExtracted", "LabelingJobOpened", "DatasetReady"):
                assert step in seen, seen
            detail = trained[0]["detail"]
            assert isinstance(detail["f1_score"], float)
            assert 0.0 <= detail["f1_score"] <= 1.0
            assert set(detail["labels"]) == {"acme"}
            assert detail["labels"]["acme"]["precision"] is not None
            bucket, key = detail["evaluation_summary_uri"][5:].split("/", 1)
            summary = json.loads(
                await (await clients.s3.get_object(Bucket=bucket, Key=key))["Body"].read()
            )
            assert summary["AggregatedEvaluationResults"]["F1Score"] == pytest.approx(
                detail["f1_score"]
            )
            projects = ProjectStore(clients.dynamodb, embedded.names.table("projects"))
            (model,) = await ModelStore(projects).all("shop")
            assert model.status.value == "TRAINED"
            assert model.version_arn == detail["project_version_arn"]
            assert (await projects.get_project("shop")).current_model_arn == model.version_arn
            dataset = next(e for e in stack.captured if e["detail-type"] == "DatasetReady")
            assert (
                dataset["detail"]["train_image_count"] + dataset["detail"]["test_image_count"] == 40
            )
    finally:
        await embedded.stop()
