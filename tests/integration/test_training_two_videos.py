"""Issue 17: a second training video trains. Two videos and their annotations dropped into
the media bucket become one dataset and a trained model version on the embedded stack
(every service its own process, the real detector). Before the fix the labeler held one
whole video out as the test set, and the model-server, left with a training set of one
video, failed to take a validation set from it ("cannot split: all images belong to one
group")."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from brandlens_cli.embedded import EmbeddedStack
from brandlens_core.aws import AwsClients
from brandlens_core.datasets import GROUP_FIELD, media_of, read_ground_truth
from brandlens_core.settings import AwsSettings
from brandlens_synth import default_brands
from brandlens_synth.video import generate_video, make_schedule
from tests.integration.test_labeler_import import coco_for
from tests.support import Stack, eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed"),
]

TRAINING_SECONDS = 45
VIDEO_SECONDS = 6.0


async def text_of(clients: AwsClients, uri: str) -> str:
    bucket, key = uri[5:].split("/", 1)
    response = await clients.s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return (await body.read()).decode()


async def test_two_training_videos_become_a_trained_model(tmp_path: Path) -> None:
    (acme,) = default_brands(1)
    videos = {}
    for name, seed in (("clip", 5), ("clip2", 6)):
        path = tmp_path / f"{name}.mp4"
        truth = generate_video(
            path, brands=[acme], seconds=VIDEO_SECONDS, fps=10, width=1600, height=900,
            seed=seed, schedule=make_schedule([acme], VIDEO_SECONDS, seed=seed),
        )  # fmt: skip
        videos[name] = (path.read_bytes(), coco_for(truth))
    embedded = EmbeddedStack(
        stack_name="two",
        state_dir=tmp_path / "state",
        services=("ingest", "framer", "labeler", "trainer", "model-server"),
        extra_env={
            "BRANDLENS_FRAMER_TRAINING_MODE": "interval",
            "BRANDLENS_FRAMER_TRAINING_INTERVAL_MS": "250",
            "BRANDLENS_LABELER_MIN_BOXES_PER_LABEL": "5",
            "BRANDLENS_LABELER_SPLIT_BLOCK_SECONDS": "2",
            "BRANDLENS_TRAINER_POLL_INTERVAL_SECONDS": "2",
            "BRANDLENS_TRAINER_POLL_MAX_INTERVAL_SECONDS": "5",
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_SECONDS": str(TRAINING_SECONDS),
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_STEPS": "60",
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
            for name, (video, annotations) in videos.items():
                await clients.s3.put_object(
                    Bucket=media, Key=f"training/shop/annotations/{name}.json", Body=annotations
                )
                await clients.s3.put_object(
                    Bucket=media, Key=f"training/shop/{name}.mp4", Body=video
                )

            async def two_video_training() -> list[dict[str, Any]]:
                datasets = [
                    e["detail"]
                    for e in await stack.events_of("DatasetReady")
                    if len(e["detail"]["job_ids"]) == 2
                ]
                if not datasets:
                    return []
                ids = {d["dataset_id"] for d in datasets}
                return [
                    e
                    for e in stack.captured
                    if e["detail-type"] in ("ModelTrained", "TrainingFailed")
                    and e["detail"].get("dataset_id") in ids
                ]

            (outcome,) = await eventually(
                two_video_training,
                timeout=TRAINING_SECONDS + 300,
                interval=1,
                message="the two-video dataset trained or failed",
            )
            assert outcome["detail-type"] == "ModelTrained", outcome["detail"].get("reason")
            dataset = next(
                e["detail"]
                for e in await stack.events_of("DatasetReady")
                if len(e["detail"]["job_ids"]) == 2
            )
            assert dataset["train_image_count"] + dataset["test_image_count"] == 48
            sides = {}
            for side in ("train", "test"):
                text = await text_of(clients, dataset[f"{side}_manifest_uri"])
                sides[side] = read_ground_truth(text, group_field=GROUP_FIELD).images
            # both videos train; time blocks, not whole videos, are held out
            assert {media_of(i.group or "") for i in sides["train"]} == {
                f"s3://{media}/training/shop/clip.mp4",
                f"s3://{media}/training/shop/clip2.mp4",
            }
            train_blocks = {i.group for i in sides["train"]}
            assert train_blocks.isdisjoint(i.group for i in sides["test"])
            detail = outcome["detail"]
            assert 0.0 <= detail["f1_score"] <= 1.0
            summary = json.loads(await text_of(clients, detail["evaluation_summary_uri"]))
            details = summary["EvaluationDetails"]
            assert details["NumberOfTrainingImages"] == dataset["train_image_count"]
            assert details["NumberOfTestingImages"] == dataset["test_image_count"]
    finally:
        await embedded.stop()
