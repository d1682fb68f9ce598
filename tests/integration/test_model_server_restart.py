"""State survives the process: a new server on the same state ends every transition defined.

On start: TRAINING_IN_PROGRESS → trained again from scratch ("restarted after a
model-server restart (attempt 2 of 3)"), TRAINING_FAILED once restarts cut
MAX_TRAINING_ATTEMPTS runs (or for a record of an older server: "the model server
restarted during training; train again"), RUNNING/STARTING → started again
(RUNNING), STOPPING → STOPPED. SIGTERM ends training processes (SIGTERM, wait,
SIGKILL).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from brandlens_model_server.settings import ModelServerSettings
from tests.integration.test_model_server_support import (
    ModelServerHarness,
    pid_alive,
    png_with_red_square,
    rekognition,
    train,
    unique,
    version_status,
    wait_status,
)
from tests.support import Stack, eventually

pytestmark = pytest.mark.integration

RESTARTED = "the model server restarted during training; train again"
QUEUED = "queued: waiting for a training slot"
REQUEUED = f"{QUEUED}; queued again after a model-server restart"


def retry_note(attempt: int, limit: int = 3) -> str:
    return f"restarted after a model-server restart (attempt {attempt} of {limit})"


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(stack, tmp_path)
    yield h
    await h.stop_all()


async def _progress_shown(client: object, project: str, name: str, note: str = "") -> bool:
    d = await version_status(client, project, name)
    return d.get("StatusMessage") == "training: 42%" + (f"; {note}" if note else "")


async def _release(stack: Stack, key: str) -> None:
    """Lets the fake trainer waiting on ``key`` finish."""
    await stack.clients.s3.put_object(Bucket=stack.names.media_bucket, Key=key, Body=b"")


async def test_sigterm_ends_training_and_a_new_server_recovers_everything(
    harness: ModelServerHarness, stack: Stack
) -> None:
    first = await harness.start()
    directive = {
        "mode": "wait",
        "release_key": unique("gates/never"),
        "marker_dir": str(harness.markers),
    }
    async with rekognition(first) as client:
        project, running_arn, running = await train(client, stack)
        await client.start_project_version(ProjectVersionArn=running_arn, MinInferenceUnits=2)
        await wait_status(client, project, running, "RUNNING")
        _, _, trained = await train(client, stack, project_arn=project)
        _, _, training = await train(
            client, stack, directive=directive, project_arn=project, wait=False
        )
        await eventually(lambda: _progress_shown(client, project, training))
        before = {
            name: await version_status(client, project, name)
            for name in (running, trained, training)
        }
    trainer_pid = int((harness.markers / f"{training}.pid").read_text())
    assert pid_alive(trainer_pid)

    assert await first.stop() == 0, harness.log_text()
    assert (harness.markers / f"{training}.sigterm").exists()  # ended by SIGTERM, not killed
    assert not pid_alive(trainer_pid)

    # The state is plain JSON at deterministic keys in the artifacts bucket.
    listed = await stack.clients.s3.list_objects_v2(
        Bucket=stack.names.artifacts_bucket, Prefix="model-server/state/"
    )
    project_name = project.split("/")[1]
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
        [f"model-server/state/projects/{project_name}/project.json"]
        + [
            f"model-server/state/projects/{project_name}/versions/{name}.json"
            for name in (running, trained, training)
        ]
    )

    second = await harness.start()
    async with rekognition(second) as client:
        [described] = (await client.describe_projects(ProjectNames=[project_name]))[
            "ProjectDescriptions"
        ]
        assert described["ProjectArn"] == project
        # the training SIGTERM ended runs again from scratch, the same version
        retried = await version_status(client, project, training)
        assert retried["Status"] == "TRAINING_IN_PROGRESS", retried
        assert retried["CreationTimestamp"] == before[training]["CreationTimestamp"]
        await eventually(lambda: _progress_shown(client, project, training, retry_note(2)))

        restarted = await wait_status(client, project, running, "RUNNING", "FAILED")
        assert restarted["Status"] == "RUNNING"
        assert restarted["MinInferenceUnits"] == 2
        found = await client.detect_custom_labels(
            ProjectVersionArn=running_arn, Image={"Bytes": png_with_red_square()}
        )
        assert found["CustomLabels"][0]["Name"] == "acme"

        kept = await version_status(client, project, trained)
        assert kept == before[trained]  # untouched: status, evaluation, manifests, timestamps

        await _release(stack, directive["release_key"])
        done = await wait_status(client, project, training, "TRAINING_COMPLETED", "TRAINING_FAILED")
        assert done["Status"] == "TRAINING_COMPLETED", done
        assert done["StatusMessage"] == "The model is ready to run."


async def test_a_killed_server_loses_nothing(harness: ModelServerHarness, stack: Stack) -> None:
    first = await harness.start()
    directive = {
        "mode": "wait",
        "release_key": unique("gates/never"),
        "marker_dir": str(harness.markers),
    }
    async with rekognition(first) as client:
        project, running_arn, running = await train(client, stack)
        await client.start_project_version(ProjectVersionArn=running_arn, MinInferenceUnits=1)
        await wait_status(client, project, running, "RUNNING")
        _, _, stopping = await train(client, stack, project_arn=project)
        _, _, training = await train(
            client, stack, directive=directive, project_arn=project, wait=False
        )
        await eventually(lambda: _progress_shown(client, project, training))
    trainer_pid = int((harness.markers / f"{training}.pid").read_text())

    await first.kill()
    # The orphaned training process notices its server is gone and ends by itself.
    await eventually(lambda: _gone(trainer_pid), message="orphaned trainer gone")

    # A server killed between StopProjectVersion's two writes leaves STOPPING behind.
    s3 = stack.clients.s3
    key = f"model-server/state/projects/{project.split('/')[1]}/versions/{stopping}.json"
    record = json.loads(
        await (await s3.get_object(Bucket=stack.names.artifacts_bucket, Key=key))["Body"].read()
    )
    record["status"] = "STOPPING"
    await s3.put_object(Bucket=stack.names.artifacts_bucket, Key=key, Body=json.dumps(record))

    second = await harness.start()
    async with rekognition(second) as client:
        await eventually(lambda: _progress_shown(client, project, training, retry_note(2)))
        assert (await version_status(client, project, training))["Status"] == (
            "TRAINING_IN_PROGRESS"
        )
        assert (await version_status(client, project, stopping))["Status"] == "STOPPED"
        assert (await wait_status(client, project, running, "RUNNING", "FAILED"))[
            "Status"
        ] == "RUNNING"
        # the recovered versions are usable: the stopped one starts again
        stopped_arn = (await version_status(client, project, stopping))["ProjectVersionArn"]
        await client.start_project_version(ProjectVersionArn=stopped_arn, MinInferenceUnits=1)
        await wait_status(client, project, stopping, "RUNNING")


async def _gone(pid: int) -> bool:
    return not pid_alive(pid)


async def test_restarts_train_a_version_again_until_the_attempt_limit(
    harness: ModelServerHarness, stack: Stack
) -> None:
    """MAX_TRAINING_ATTEMPTS=2: the second run cut by a restart fails the version.

    A version queued behind it through both restarts never ran, so it loses no
    attempt and trains once the slot is free; a record written by an older server
    (no training budget, no attempt count) fails as before.
    """
    limit = {"BRANDLENS_MODEL_SERVER_MAX_TRAINING_ATTEMPTS": "2"}
    directive = {
        "mode": "wait",
        "release_key": unique("gates/never"),
        "marker_dir": str(harness.markers),
    }
    first = await harness.start(**limit)
    async with rekognition(first) as client:
        project, _, _ = await train(client, stack)
        _, _, training = await train(
            client, stack, directive=directive, project_arn=project, wait=False
        )
        await eventually(lambda: _progress_shown(client, project, training))
        _, _, queued = await train(client, stack, project_arn=project, wait=False)
        _, _, legacy = await train(client, stack, project_arn=project, wait=False)
        assert (await version_status(client, project, legacy))["StatusMessage"] == QUEUED
    await first.kill()

    # ``legacy`` as an older server wrote it: no budget, no attempt count
    s3 = stack.clients.s3
    key = f"model-server/state/projects/{project.split('/')[1]}/versions/{legacy}.json"
    record = json.loads(
        await (await s3.get_object(Bucket=stack.names.artifacts_bucket, Key=key))["Body"].read()
    )
    assert record["training_budget"] == {
        "max_training_steps": ModelServerSettings().max_training_steps,  # the default
        "max_training_seconds": 3600,
        "seed": 0,
    }
    assert record["training_attempts"] == 0
    del record["training_budget"], record["training_attempts"]
    await s3.put_object(Bucket=stack.names.artifacts_bucket, Key=key, Body=json.dumps(record))

    second = await harness.start(**limit)
    async with rekognition(second) as client:
        failed = await version_status(client, project, legacy)
        assert (failed["Status"], failed["StatusMessage"]) == ("TRAINING_FAILED", RESTARTED)
        await eventually(lambda: _progress_shown(client, project, training, retry_note(2, 2)))
        assert (await version_status(client, project, queued))["StatusMessage"] == REQUEUED
    await second.kill()

    third = await harness.start(**limit)
    async with rekognition(third) as client:
        failed = await version_status(client, project, training)
        assert failed["Status"] == "TRAINING_FAILED", failed
        assert failed["StatusMessage"] == (
            "the model server restarted during training 2 times (a version is trained at "
            "most 2 times: BRANDLENS_MODEL_SERVER_MAX_TRAINING_ATTEMPTS); train again"
        )
        assert "TrainingEndTimestamp" in failed
        done = await wait_status(client, project, queued, "TRAINING_COMPLETED", "TRAINING_FAILED")
        assert (done["Status"], done["StatusMessage"]) == (
            "TRAINING_COMPLETED",
            "The model is ready to run.",
        )
    assert not list((harness.tmp_path / "cache" / "training").glob("*"))
