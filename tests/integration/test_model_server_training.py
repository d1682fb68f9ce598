"""Training through CreateProjectVersion: a real process per version, speaking CONTRACT.md §1.

The training program here is the stand-in ``fake_trainer`` (see
test_model_server_support.py); test_model_server_e2e.py trains the real detector.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_model_server_support import (
    ModelServerHarness,
    boto3_rekognition,
    put_dataset,
    rekognition,
    train,
    unique,
    version_status,
    wait_status,
)
from tests.support import Stack, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(stack, tmp_path)
    yield h
    await h.stop_all()


async def release(stack: Stack, key: str) -> None:
    await stack.clients.s3.put_object(Bucket=stack.names.media_bucket, Key=key, Body=b"go")


async def test_training_reports_progress_then_completes_with_an_evaluation(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start()
    gate = unique("gates/release")
    directive = {"mode": "wait", "release_key": gate, "marker_dir": str(harness.markers)}
    async with rekognition(server) as client:
        project, version_arn, name = await train(client, stack, directive=directive, wait=False)
        assert version_arn.startswith(project.rsplit("/", 1)[0] + f"/version/{name}/")

        training = await eventually(
            lambda: _with_message(client, project, name, "training: 42%"),
            message="progress shown as StatusMessage",
        )
        assert training is not None
        assert training["Status"] == "TRAINING_IN_PROGRESS"
        # A training version can be neither stopped, nor started, nor deleted.
        for call in (
            client.stop_project_version(ProjectVersionArn=version_arn),
            client.start_project_version(ProjectVersionArn=version_arn, MinInferenceUnits=1),
            client.delete_project_version(ProjectVersionArn=version_arn),
            client.delete_project(ProjectArn=project),
        ):
            with pytest.raises(ClientError) as refused:
                await call
            assert refused.value.response["Error"]["Code"] == "ResourceInUseException"

        spec = json.loads((harness.markers / f"{name}.spec.json").read_text())
        assert spec["output_uri"] == (
            f"s3://{stack.names.artifacts_bucket}/models/{project.split('/')[1]}/{name}/"
        )
        assert spec["train_manifest_uri"].startswith(f"s3://{stack.names.media_bucket}/training/")
        assert spec["test_manifest_uri"].endswith("/test.manifest")
        assert Path(spec["work_dir"]).is_dir()

        await release(stack, gate)
        # boto3's own waiter, unchanged, sees the completion.
        waiter = boto3_rekognition(server).get_waiter("project_version_training_completed")
        await asyncio.to_thread(
            waiter.wait,
            ProjectArn=project,
            VersionNames=[name],
            WaiterConfig={"Delay": 1, "MaxAttempts": 60},
        )
        done = await version_status(client, project, name)

    assert done["Status"] == "TRAINING_COMPLETED"
    assert done["StatusMessage"] == "The model is ready to run."
    evaluation = done["EvaluationResult"]
    assert evaluation["F1Score"] == pytest.approx(0.9)
    summary = evaluation["Summary"]["S3Object"]
    assert summary["Bucket"] == stack.names.artifacts_bucket
    assert summary["Name"] == f"models/{project.split('/')[1]}/{name}/evaluation/summary.json"
    body = await stack.clients.s3.get_object(Bucket=summary["Bucket"], Key=summary["Name"])
    assert "AggregatedEvaluationResults" in json.loads(await body["Body"].read())
    assert done["OutputConfig"] == {
        "S3Bucket": stack.names.artifacts_bucket,
        "S3KeyPrefix": "models",
    }
    used = done["TrainingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    assert used["Name"].endswith(f"/{name}/manifests/train.manifest")
    assert done["TrainingDataResult"]["Input"]["Assets"][0]["GroundTruthManifest"]["S3Object"][
        "Name"
    ].endswith("/train.manifest")
    assert done["BillableTrainingTimeInSeconds"] >= 0
    assert done["TrainingEndTimestamp"] >= done["CreationTimestamp"]
    assert not Path(spec["work_dir"]).exists()  # the work dir is the server's to delete


async def _with_message(
    client: object, project: str, name: str, message: str
) -> dict[str, Any] | None:
    d = await version_status(client, project, name)
    return d if d.get("StatusMessage") == message else None


async def test_failed_and_crashed_trainings_say_why(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start(BRANDLENS_MODEL_SERVER_MAX_CONCURRENT_TRAININGS="2")
    async with rekognition(server) as client:
        project, _, failing = await train(client, stack, directive={"mode": "fail"}, wait=False)
        _, _, crashing = await train(
            client, stack, directive={"mode": "crash"}, project_arn=project, wait=False
        )
        failed = await wait_status(
            client, project, failing, "TRAINING_FAILED", "TRAINING_COMPLETED"
        )
        crashed = await wait_status(
            client, project, crashing, "TRAINING_FAILED", "TRAINING_COMPLETED"
        )
    assert failed["Status"] == "TRAINING_FAILED"
    assert failed["StatusMessage"] == "no image has a labelled box: label at least one logo"
    assert crashed["Status"] == "TRAINING_FAILED"
    assert crashed["StatusMessage"] == (
        "the training process crashed (exit code 1): RuntimeError: CUDA out of memory"
    )
    assert "EvaluationResult" not in failed


async def test_trainings_beyond_the_limit_wait_their_turn(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start(BRANDLENS_MODEL_SERVER_MAX_CONCURRENT_TRAININGS="1")
    gate = unique("gates/release")
    async with rekognition(server) as client:
        project, _, first = await train(
            client, stack, directive={"mode": "wait", "release_key": gate}, wait=False
        )
        await eventually(lambda: _with_message(client, project, first, "training: 42%"))
        _, _, second = await train(client, stack, project_arn=project, wait=False)

        queued = await version_status(client, project, second)
        assert queued["Status"] == "TRAINING_IN_PROGRESS"
        assert queued["StatusMessage"] == "queued: waiting for a training slot"
        health = await server.health()
        assert (health["trainings_running"], health["trainings_queued"]) == (1, 1)

        await release(stack, gate)
        for name in (first, second):
            await wait_status(client, project, name, "TRAINING_COMPLETED")
        # counted the moment the status says so (the record is visible while it is saved)
        health = await server.health()
        assert (health["trainings_running"], health["trainings_queued"]) == (0, 0)


async def test_testing_data_can_be_auto_created(harness: ModelServerHarness, stack: Stack) -> None:
    server = await harness.start()
    dataset = await put_dataset(stack, {"mode": "complete", "marker_dir": str(harness.markers)})
    async with rekognition(server) as client:
        project = (await client.create_project(ProjectName=unique("acme")))["ProjectArn"]
        name = unique("v")
        await client.create_project_version(
            ProjectArn=project,
            VersionName=name,
            OutputConfig=dataset["OutputConfig"],
            TrainingData=dataset["TrainingData"],
            TestingData={"AutoCreate": True},
        )
        done = await wait_status(client, project, name, "TRAINING_COMPLETED", "TRAINING_FAILED")
    assert done["Status"] == "TRAINING_COMPLETED"
    assert done["TestingDataResult"]["Input"]["AutoCreate"] is True
    spec = json.loads((harness.markers / f"{name}.spec.json").read_text())
    assert spec["test_manifest_uri"] is None
    assert spec["autocreate_test_percent"] == 20


async def test_version_names_are_unique_within_a_project(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start()
    async with rekognition(server) as client:
        project, _, name = await train(client, stack)
        dataset = await put_dataset(stack)
        with pytest.raises(client.exceptions.ResourceInUseException):
            await client.create_project_version(ProjectArn=project, VersionName=name, **dataset)
        # the same name in another project is fine
        other, _, _ = await train(client, stack)
        await client.create_project_version(ProjectArn=other, VersionName=name, **dataset)
        listed = await client.describe_project_versions(ProjectArn=other, MaxResults=1)
        assert len(listed["ProjectVersionDescriptions"]) == 1
        assert "NextToken" in listed
        rest = await client.describe_project_versions(
            ProjectArn=other, MaxResults=1, NextToken=listed["NextToken"]
        )
        assert len(rest["ProjectVersionDescriptions"]) == 1
        assert "NextToken" not in rest
        with pytest.raises(client.exceptions.InvalidPaginationTokenException):
            # a token of one project's listing is not valid for another's
            await client.describe_project_versions(
                ProjectArn=project, NextToken=listed["NextToken"]
            )
