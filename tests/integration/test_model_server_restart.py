"""State survives the process: a new server on the same state ends every transition defined.

On start: TRAINING_IN_PROGRESS → TRAINING_FAILED ("the model server restarted
during training; train again"), RUNNING/STARTING → started again (RUNNING),
STOPPING → STOPPED. SIGTERM ends training processes (SIGTERM, wait, SIGKILL).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(stack, tmp_path)
    yield h
    await h.stop_all()


async def _progress_shown(client: object, project: str, name: str) -> bool:
    d = await version_status(client, project, name)
    return d.get("StatusMessage") == "training: 42%"


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
        failed = await version_status(client, project, training)
        assert failed["Status"] == "TRAINING_FAILED"
        assert failed["StatusMessage"] == RESTARTED
        assert failed["CreationTimestamp"] == before[training]["CreationTimestamp"]

        restarted = await wait_status(client, project, running, "RUNNING", "FAILED")
        assert restarted["Status"] == "RUNNING"
        assert restarted["MinInferenceUnits"] == 2
        found = await client.detect_custom_labels(
            ProjectVersionArn=running_arn, Image={"Bytes": png_with_red_square()}
        )
        assert found["CustomLabels"][0]["Name"] == "acme"

        kept = await version_status(client, project, trained)
        assert kept == before[trained]  # untouched: status, evaluation, manifests, timestamps


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
        assert (await version_status(client, project, training))["StatusMessage"] == RESTARTED
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
