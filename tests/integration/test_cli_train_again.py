"""`brandlens train PROJECT --again`: another version of a dataset that already has one.

The CLI against the stack, the trainer (in process) and the model-server (with the
stand-in training program of its tests) on loopback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from brandlens_core.projects import ProjectStore
from brandlens_trainer.app import create_worker
from brandlens_trainer.handler import Command
from brandlens_trainer.models import ModelStore, retrain_version_name
from tests.integration.test_cli_submit import brandlens, write_local_state
from tests.integration.test_model_server_support import ModelServerHarness, rekognition
from tests.integration.test_trainer import SETTINGS, dataset_event, send
from tests.support import RunningWorker, Stack, eventually, fast_worker_settings

pytestmark = pytest.mark.integration

DATASET = "ds-000007"


async def test_train_again_makes_one_new_version_per_request(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the CLI's tables on one line a row
    state = tmp_path / "state"
    write_local_state(state, stack)
    at = ("--state-dir", str(state))
    await stack.capture_events()
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    models = ModelStore(projects)
    harness = ModelServerHarness(stack, tmp_path)
    server = await harness.start()
    try:
        async with rekognition(server, max_attempts=3) as client:
            worker = RunningWorker(
                await create_worker(
                    stack.clients, stack.names, SETTINGS, fast_worker_settings(), rekognition=client
                )
            )
            try:
                # given: a dataset (as the labeler records it) trained once, on DatasetReady
                event = await dataset_event(stack, "shop", DATASET)
                detail = event["detail"]
                await projects.put_new(
                    "shop",
                    f"dataset#{DATASET}",
                    {
                        "project": "shop", "dataset_id": DATASET, "batch_ids": [],
                        "job_ids": [], "labels": ["acme"],
                        "train_manifest_uri": detail["train_manifest_uri"],
                        "test_manifest_uri": detail["test_manifest_uri"],
                        "statistics_uri": "s3://b/s", "train_image_count": 2,
                        "test_image_count": 1, "box_count": 3,
                        "created_at": "2026-11-22T01:00:00+00:00",
                    },
                )  # fmt: skip
                await send(stack, event)
                await eventually(
                    lambda: _trained_events(stack, 1), timeout=60, message="first ModelTrained"
                )

                # without --again: the version it has, and how to train again
                code, out = await brandlens("train", "shop", *at)
                assert code == 0, out
                assert f"dataset {DATASET} already has version {DATASET} (TRAINED)" in out
                assert f"brandlens train shop --dataset {DATASET} --again" in " ".join(out.split())

                # with --again: a new version, named in the output, trained and evaluated
                code, out = await brandlens("train", "shop", "--again", *at)
                assert code == 0, out
                match = re.search(rf"version ({DATASET}\.again-[0-9a-f]+)", out)
                assert match, out
                again = match.group(1)
                trained = await eventually(
                    lambda: _trained_events(stack, 2), timeout=60, message="second ModelTrained"
                )
                assert again in [e["detail"]["project_version_arn"].split("/")[-2] for e in trained]

                retrain = await models.get("shop", again)
                assert retrain is not None
                assert (retrain.dataset_id, retrain.status.value) == (DATASET, "TRAINED")
                assert retrain.request_id is not None
                assert again == retrain_version_name(DATASET, retrain.request_id)
                # promotion as for any version: F1 0.9 is not below the current 0.9
                assert retrain.promoted is True
                assert retrain.promotion_note == "F1 0.9 >= the current version's 0.9"
                project = await projects.get_project("shop")
                assert project.current_model_arn == retrain.version_arn

                # `brandlens models` says what holds today, not what held at training time
                code, out = await brandlens("models", "shop", *at)
                assert code == 0, out
                flat = " ".join(out.split())  # the promotion time, then why (issue 19)
                assert re.search(r"current since it was trained, [^(]+\(F1 0\.9 >=", flat), out
                assert "another version is current now" in " ".join(out.split())
                assert "no current version" not in out

                # the same request delivered again makes no third version
                repeat = Command(
                    command="train", project="shop", dataset_id=DATASET,
                    request_id=retrain.request_id, again=True,
                )  # fmt: skip
                await send(stack, repeat.model_dump(mode="json"))
                await eventually(
                    lambda: _drained(stack), timeout=30, message="the trainer queue drained"
                )
                assert [m.version for m in await models.all("shop")] == [DATASET, again]
                described = await client.describe_project_versions(
                    ProjectArn=project.rekognition_project_arn
                )
                assert sorted(
                    v["ProjectVersionArn"].split("/")[-2]
                    for v in described["ProjectVersionDescriptions"]
                ) == sorted([DATASET, again])
                assert len(await stack.events_of("ModelTrained")) == 2
            finally:
                await worker.stop()
    finally:
        await harness.stop_all()


async def _trained_events(stack: Stack, count: int) -> list[dict[str, object]] | None:
    events = await stack.events_of("ModelTrained")
    return events if len(events) >= count else None


async def _drained(stack: Stack) -> bool:
    return await stack.queue_depth(stack.queue_urls["trainer"]) == 0
