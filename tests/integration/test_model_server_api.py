"""The model-server's API over HTTP: projects, validation, errors, pagination, wire format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from brandlens_model_server.launcher import ModelServerProcess
from tests.integration.test_model_server_support import (
    ModelServerHarness,
    boto3_rekognition,
    put_dataset,
    rekognition,
    unique,
)
from tests.support import Stack

pytestmark = pytest.mark.integration

ARN_PROJECT = r"^arn:aws:rekognition:us-east-1:123456789012:project/{name}/\d{{13}}$"


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(stack, tmp_path)
    yield h
    await h.stop_all()


@pytest.fixture
async def server(harness: ModelServerHarness) -> ModelServerProcess:
    return await harness.start()


def code_of(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


async def test_create_describe_and_delete_a_project(server: ModelServerProcess) -> None:
    async with rekognition(server) as client:
        name = unique("acme")
        created = await client.create_project(ProjectName=name)
        arn = created["ProjectArn"]
        assert arn.startswith(f"arn:aws:rekognition:us-east-1:123456789012:project/{name}/")
        assert len(arn.rsplit("/", 1)[1]) == 13  # epoch milliseconds, as AWS

        described = await client.describe_projects(ProjectNames=[name])
        [project] = described["ProjectDescriptions"]
        assert project["ProjectArn"] == arn
        assert project["Status"] == "CREATED"
        assert project["Feature"] == "CUSTOM_LABELS"
        assert project["CreationTimestamp"].tzinfo is not None  # parsed as a timestamp

        with pytest.raises(ClientError) as again:
            await client.create_project(ProjectName=name)
        assert code_of(again.value) == "ResourceInUseException"

        deleted = await client.delete_project(ProjectArn=arn)
        assert deleted["Status"] == "DELETING"
        assert (await client.describe_projects(ProjectNames=[name]))["ProjectDescriptions"] == []
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            await client.delete_project(ProjectArn=arn)


async def test_unknown_resources_are_not_found(server: ModelServerProcess) -> None:
    async with rekognition(server) as client:
        name = unique("acme")
        arn = (await client.create_project(ProjectName=name))["ProjectArn"]
        wrong_timestamp = arn.rsplit("/", 1)[0] + "/1000000000000"
        for call in (
            client.describe_project_versions(ProjectArn=wrong_timestamp),
            client.delete_project(ProjectArn=wrong_timestamp),
            client.start_project_version(
                ProjectVersionArn=f"{arn.rsplit('/', 1)[0]}/version/nope/1000000000000",
                MinInferenceUnits=1,
            ),
            client.detect_custom_labels(
                ProjectVersionArn=f"{arn.rsplit('/', 1)[0]}/version/nope/1000000000000",
                Image={"Bytes": b"\x89PNG"},
            ),
        ):
            with pytest.raises(ClientError) as error:
                await call
            assert code_of(error.value) == "ResourceNotFoundException"


async def test_requests_outside_the_input_shape_are_validation_errors(
    server: ModelServerProcess,
) -> None:
    # botocore validates parameters itself; turn that off to see what the server says.
    async with rekognition(server, validate=False) as client:
        with pytest.raises(ClientError) as bad_name:
            await client.create_project(ProjectName="has spaces")
        assert code_of(bad_name.value) == "ValidationException"
        assert bad_name.value.response["Error"]["Message"] == (
            "1 validation error detected: Value 'has spaces' at 'projectName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+"
        )
        with pytest.raises(ClientError) as missing:
            await client.describe_project_versions()
        assert code_of(missing.value) == "ValidationException"
        assert (
            "at 'projectArn' failed to satisfy constraint: Member must not be null"
            in (missing.value.response["Error"]["Message"])
        )
        with pytest.raises(ClientError) as page_size:
            await client.describe_projects(MaxResults=500)
        assert "Member must have value less than or equal to 100" in str(page_size.value)


async def test_errors_have_aws_json_shape_and_headers(server: ModelServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.endpoint_url + "/",
            data=json.dumps(
                {"ProjectArn": "arn:aws:rekognition:us-east-1:123456789012:project/x/1700000000000"}
            ),
            headers={
                "X-Amz-Target": "RekognitionService.DeleteProject",
                "Content-Type": "application/x-amz-json-1.1",
            },  # no Authorization header at all: accepted (loopback use, see README)
        ) as response:
            assert response.status == 400
            assert response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
            assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
            assert response.headers["x-amzn-RequestId"]
            body = await response.json(content_type=None)
            assert body["__type"] == "ResourceNotFoundException"
            assert "not found" in body["message"]
        async with http.post(
            server.endpoint_url + "/",
            data=b"{not json",
            headers={"X-Amz-Target": "RekognitionService.DescribeProjects"},
        ) as response:
            assert response.status == 400
            assert (await response.json(content_type=None))["__type"] == "ValidationException"
        async with http.post(
            server.endpoint_url + "/",
            data=b"{}",
            headers={"X-Amz-Target": "RekognitionService.DetectFaces"},
        ) as response:
            assert response.status == 400
            assert (await response.json(content_type=None))["__type"] == (
                "UnknownOperationException"
            )
        async with http.get(server.endpoint_url + "/health") as response:
            assert response.status == 200
            health = await response.json()
            assert health["status"] == "ok"


async def test_describe_projects_pages_and_filters(server: ModelServerProcess) -> None:
    names = [unique(f"p{i}") for i in range(5)]
    async with rekognition(server) as client:
        for name in names:
            await client.create_project(ProjectName=name)
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            kwargs: dict[str, Any] = {"MaxResults": 2}
            if token:
                kwargs["NextToken"] = token
            page = await client.describe_projects(**kwargs)
            pages += 1
            assert len(page["ProjectDescriptions"]) <= 2
            seen += [p["ProjectArn"].split("/")[1] for p in page["ProjectDescriptions"]]
            token = page.get("NextToken")
            if not token:
                break
        assert pages == 3
        assert seen == list(reversed(names))  # newest first

        paginator = client.get_paginator("describe_projects")
        everything = [
            p["ProjectArn"].split("/")[1]
            async for page in paginator.paginate(PaginationConfig={"PageSize": 2})
            for p in page["ProjectDescriptions"]
        ]
        assert everything == list(reversed(names))

        picked = await client.describe_projects(ProjectNames=[names[1], names[3], "absent"])
        assert sorted(
            p["ProjectArn"].split("/")[1] for p in picked["ProjectDescriptions"]
        ) == sorted([names[1], names[3]])
        moderation = await client.describe_projects(Features=["CONTENT_MODERATION"])
        assert moderation["ProjectDescriptions"] == []

        with pytest.raises(ClientError) as bad_token:
            await client.describe_projects(NextToken="garbage")
        assert code_of(bad_token.value) == "InvalidPaginationTokenException"


async def test_boto3_works_unchanged(server: ModelServerProcess) -> None:
    client = boto3_rekognition(server)
    name = unique("boto3")
    arn = (await asyncio.to_thread(client.create_project, ProjectName=name))["ProjectArn"]
    described = await asyncio.to_thread(client.describe_projects, ProjectNames=[name])
    assert [p["ProjectArn"] for p in described["ProjectDescriptions"]] == [arn]
    versions = await asyncio.to_thread(client.describe_project_versions, ProjectArn=arn)
    assert versions["ProjectVersionDescriptions"] == []
    with pytest.raises(client.exceptions.ResourceInUseException):
        await asyncio.to_thread(client.create_project, ProjectName=name)


async def test_create_project_version_validates_its_inputs(
    server: ModelServerProcess, stack: Stack
) -> None:
    dataset = await put_dataset(stack)
    async with rekognition(server) as client:
        project = (await client.create_project(ProjectName=unique("acme")))["ProjectArn"]

        async def create(**changes: Any) -> str:
            args = {"ProjectArn": project, "VersionName": unique("v")} | dataset | changes
            args = {k: v for k, v in args.items() if v is not None}
            with pytest.raises(ClientError) as error:
                await client.create_project_version(**args)
            return f"{code_of(error.value)}: {error.value.response['Error']['Message']}"

        missing = {"Bucket": stack.names.media_bucket, "Name": "training/none.manifest"}
        assert (
            await create(TrainingData={"Assets": [{"GroundTruthManifest": {"S3Object": missing}}]})
        ).startswith("InvalidS3ObjectException")
        assert (
            await create(TestingData={"Assets": [{"GroundTruthManifest": {"S3Object": missing}}]})
        ).startswith("InvalidS3ObjectException")
        assert (await create(OutputConfig={"S3Bucket": stack.names.artifacts_bucket})).startswith(
            "InvalidParameterException: OutputConfig.S3KeyPrefix"
        )
        assert (
            await create(OutputConfig={"S3Bucket": "no-such-bucket-x1", "S3KeyPrefix": "m"})
        ).startswith("InvalidParameterException")
        assert (await create(TrainingData=None)).startswith("InvalidParameterException")
        assert (await create(TestingData=None)).startswith("InvalidParameterException")
        both = dataset["TestingData"] | {"AutoCreate": True}
        assert (await create(TestingData=both)).startswith("InvalidParameterException")
        two = {"Assets": dataset["TrainingData"]["Assets"] * 2}
        assert (await create(TrainingData=two)).startswith("InvalidParameterException")
        other_project = project.replace("/acme-", "/gone-")
        assert (await create(ProjectArn=other_project)).startswith("ResourceNotFoundException")

        versions = await client.describe_project_versions(ProjectArn=project)
        assert versions["ProjectVersionDescriptions"] == []  # nothing was created
