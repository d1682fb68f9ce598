"""The trainer against Rekognition's own request and response shapes (botocore's Stubber),
with the rest (DynamoDB, S3, SQS, EventBridge) on the moto stack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiobotocore.session import get_session
from aiobotocore.stub import AioStubber

from brandlens_core.projects import ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_trainer.handler import TrainerContext, look, start_training
from brandlens_trainer.models import ModelStore
from brandlens_trainer.settings import TrainerSettings
from tests.support import Stack

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
PROJECT_ARN = f"arn:aws:rekognition:us-east-1:{ACCOUNT}:project/brandlens-s-acme/1700000000000"
REGION_ARN = f"arn:aws:rekognition:us-east-1:{ACCOUNT}"
VERSION_ARN = f"{REGION_ARN}:project/brandlens-s-acme/version/ds-0001/1700000000001"
NOW = datetime(2026, 11, 22, tzinfo=UTC)

# An evaluation summary as Rekognition Custom Labels writes it (field names and nesting).
SUMMARY = {
    "Version": 1,
    "AggregatedEvaluationResults": {
        "ConfusionMatrix": [],
        "F1Score": 0.871,
        "Precision": 0.9,
        "Recall": 0.844,
    },
    "EvaluationDetails": {
        "EvaluationEndTimestamp": "2026-11-22T10:00:00.000000",
        "Labels": ["acme", "globex"],
        "NumberOfTestingImages": 40,
        "NumberOfTrainingImages": 160,
        "ProjectVersionArn": VERSION_ARN,
    },
    "LabelEvaluationResults": [
        {
            "Label": "acme",
            "Metrics": {"F1Score": 0.9, "Precision": 0.95, "Recall": 0.855, "Threshold": 0.41},
            "NumberOfTestingImages": 22,
        },
        {
            "Label": "globex",
            "Metrics": {"F1Score": 0.84, "Precision": 0.85, "Recall": 0.83, "Threshold": 0.38},
            "NumberOfTestingImages": 18,
        },
    ],
}


@pytest.fixture
async def stubbed() -> AsyncIterator[tuple[Any, AioStubber]]:
    async with get_session().create_client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # a stubbed client sends nothing
    ) as client:
        with AioStubber(client) as stubber:
            yield client, stubber


def context(stack: Stack, client: Any) -> TrainerContext:
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    return TrainerContext(
        s3=stack.clients.s3,
        sqs=stack.clients.sqs,
        rekognition=client,
        projects=projects,
        models=ModelStore(projects),
        publisher=EventPublisher(stack.clients.events, stack.names.bus, "brandlens.trainer"),
        artifacts_bucket=stack.names.artifacts_bucket,
        queue_url=stack.queue_urls["trainer"],
        stack_name="s",
        settings=TrainerSettings(),
    )


def version(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "ProjectVersionDescriptions": [
            {
                "ProjectVersionArn": VERSION_ARN,
                "CreationTimestamp": NOW,
                "Status": status,
                "StatusMessage": extra.pop("StatusMessage", "The model is being trained."),
                **extra,
            }
        ]
    }


async def test_rekognition_shapes_from_create_to_trained(
    stack: Stack, stubbed: tuple[Any, AioStubber]
) -> None:
    client, stubber = stubbed
    await stack.capture_events()
    ctx = context(stack, client)
    artifacts = stack.names.artifacts_bucket
    summary_key = "models/acme/ds-0001/evaluation/summary.json"
    await stack.clients.s3.put_object(
        Bucket=artifacts, Key=summary_key, Body=json.dumps(SUMMARY).encode()
    )
    train = f"s3://{artifacts}/datasets/acme/ds-0001/train.manifest"
    test = f"s3://{artifacts}/datasets/acme/ds-0001/test.manifest"

    # the project exists already (a retry after a crash): CreateProject says so
    stubber.add_client_error(
        "create_project",
        service_error_code="ResourceInUseException",
        service_message="A project with that name already exists.",
        http_status_code=400,
        expected_params={"ProjectName": "brandlens-s-acme"},
    )
    stubber.add_response(
        "describe_projects",
        {
            "ProjectDescriptions": [
                {"ProjectArn": PROJECT_ARN, "CreationTimestamp": NOW, "Status": "CREATED"}
            ]
        },
        expected_params={"ProjectNames": ["brandlens-s-acme"]},
    )
    stubber.add_response(
        "create_project_version",
        {"ProjectVersionArn": VERSION_ARN},
        expected_params={
            "ProjectArn": PROJECT_ARN,
            "VersionName": "ds-0001",
            "OutputConfig": {"S3Bucket": artifacts, "S3KeyPrefix": "models/acme"},
            "TrainingData": {"Assets": [{"GroundTruthManifest": {"S3Object": {
                "Bucket": artifacts, "Name": "datasets/acme/ds-0001/train.manifest"}}}]},
            "TestingData": {"Assets": [{"GroundTruthManifest": {"S3Object": {
                "Bucket": artifacts, "Name": "datasets/acme/ds-0001/test.manifest"}}}]},
            "Tags": {"brandlens:project": "acme", "brandlens:dataset": "ds-0001"},
        },
    )  # fmt: skip
    await start_training("acme", "ds-0001", train, test, ctx)
    model = await ctx.models.get("acme", "ds-0001")
    assert model is not None
    assert (model.project_arn, model.version_arn, model.poll_seq) == (PROJECT_ARN, VERSION_ARN, 1)

    stubber.add_response(
        "describe_project_versions",
        version("TRAINING_IN_PROGRESS"),
        expected_params={"ProjectArn": PROJECT_ARN, "VersionNames": ["ds-0001"]},
    )
    assert await look(model, 2, ctx) is not None  # still training: the next look's plan
    stubber.add_response(
        "describe_project_versions",
        version(
            "TRAINING_COMPLETED",
            StatusMessage="The model is ready to run.",
            EvaluationResult={
                "F1Score": 0.871,
                "Summary": {"S3Object": {"Bucket": artifacts, "Name": summary_key}},
            },
            BillableTrainingTimeInSeconds=3600,
        ),
    )
    model = await ctx.models.get("acme", "ds-0001")
    assert model is not None
    assert await look(model, 2, ctx) is None  # ended: no next look
    stubber.assert_no_pending_responses()
    (event,) = await stack.events_of("ModelTrained")
    detail = event["detail"]
    assert detail["f1_score"] == pytest.approx(0.871)
    assert detail["labels"] == {
        "acme": {"precision": 0.95, "recall": 0.855, "f1_score": 0.9},
        "globex": {"precision": 0.85, "recall": 0.83, "f1_score": 0.84},
    }
    assert detail["evaluation_summary_uri"] == f"s3://{artifacts}/{summary_key}"
    project = await ctx.projects.get_project("acme")
    assert project.current_model_arn == VERSION_ARN
    assert project.rekognition_project_arn == PROJECT_ARN


async def test_training_failed_reports_the_status_message(
    stack: Stack, stubbed: tuple[Any, AioStubber]
) -> None:
    client, stubber = stubbed
    await stack.capture_events()
    ctx = context(stack, client)
    artifacts = stack.names.artifacts_bucket
    stubber.add_response("create_project", {"ProjectArn": PROJECT_ARN})
    stubber.add_response("create_project_version", {"ProjectVersionArn": VERSION_ARN})
    await start_training(
        "acme", "ds-0001", f"s3://{artifacts}/a.manifest", f"s3://{artifacts}/b.manifest", ctx
    )
    message = "The manifest file contains too many invalid data objects or is corrupted."
    stubber.add_response(
        "describe_project_versions", version("TRAINING_FAILED", StatusMessage=message)
    )
    model = await ctx.models.get("acme", "ds-0001")
    assert model is not None
    assert await look(model, 2, ctx) is None  # ended: no next look
    (event,) = await stack.events_of("TrainingFailed")
    assert event["detail"]["reason"] == message
    assert event["detail"]["project_version_arn"] == VERSION_ARN
    assert (await ctx.projects.get_project("acme")).current_model_arn is None


async def test_a_refused_dataset_fails_without_retrying(
    stack: Stack, stubbed: tuple[Any, AioStubber]
) -> None:
    client, stubber = stubbed
    await stack.capture_events()
    ctx = context(stack, client)
    stubber.add_response("create_project", {"ProjectArn": PROJECT_ARN})
    stubber.add_client_error(
        "create_project_version",
        service_error_code="InvalidParameterException",
        service_message="The manifest has no valid images.",
        http_status_code=400,
    )
    await start_training("acme", "ds-0001", "s3://bucket/t.manifest", "s3://bucket/u.manifest", ctx)
    (event,) = await stack.events_of("TrainingFailed")
    assert "The manifest has no valid images." in event["detail"]["reason"]
