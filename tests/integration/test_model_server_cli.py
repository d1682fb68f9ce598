"""The AWS CLI, unchanged, against the model-server: ``aws rekognition ... --endpoint-url``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from brandlens_model_server.launcher import ModelServerProcess
from tests.integration.test_model_server_support import (
    ModelServerHarness,
    png_with_red_square,
    put_dataset,
    rekognition,
    unique,
    wait_status,
)
from tests.support import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI (`aws`) is not installed"),
]


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(stack, tmp_path)
    yield h
    await h.stop_all()


async def aws(server: ModelServerProcess, *args: str) -> tuple[int, Any, str]:
    """Run ``aws rekognition ARGS`` against ``server``; (exit code, parsed stdout, stderr)."""
    aws_cli = shutil.which("aws")
    assert aws_cli
    process = await asyncio.create_subprocess_exec(
        aws_cli,
        "rekognition",
        *args,
        "--endpoint-url",
        server.endpoint_url,
        "--region",
        "us-east-1",
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ) | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    out, err = await process.communicate()
    code = process.returncode
    assert code is not None
    return code, json.loads(out) if out.strip() else None, err.decode()


async def test_the_aws_cli_trains_starts_and_detects(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start()
    name = unique("cli")
    code, created, err = await aws(server, "create-project", "--project-name", name)
    assert code == 0, err
    project = created["ProjectArn"]

    code, described, err = await aws(server, "describe-projects", "--project-names", name)
    assert code == 0, err
    assert [p["ProjectArn"] for p in described["ProjectDescriptions"]] == [project]

    dataset = await put_dataset(stack)
    code, version, err = await aws(
        server,
        "create-project-version",
        "--project-arn",
        project,
        "--version-name",
        "v1",
        "--output-config",
        json.dumps(dataset["OutputConfig"]),
        "--training-data",
        json.dumps(dataset["TrainingData"]),
        "--testing-data",
        json.dumps({"AutoCreate": True}),
    )
    assert code == 0, err
    version_arn = version["ProjectVersionArn"]
    async with rekognition(server) as client:
        await wait_status(client, project, "v1", "TRAINING_COMPLETED")

    code, listed, err = await aws(
        server, "describe-project-versions", "--project-arn", project, "--version-names", "v1"
    )
    assert code == 0, err
    [description] = listed["ProjectVersionDescriptions"]
    assert description["Status"] == "TRAINING_COMPLETED"
    assert description["EvaluationResult"]["F1Score"] == pytest.approx(0.9)

    code, started, err = await aws(
        server,
        "start-project-version",
        "--project-version-arn",
        version_arn,
        "--min-inference-units",
        "1",
    )
    assert (code, started) == (0, {"Status": "STARTING"}), err
    async with rekognition(server) as client:
        await wait_status(client, project, "v1", "RUNNING")

    key = unique("analysis/cli/frame") + ".png"
    await stack.clients.s3.put_object(
        Bucket=stack.names.media_bucket, Key=key, Body=png_with_red_square()
    )
    code, found, err = await aws(
        server,
        "detect-custom-labels",
        "--project-version-arn",
        version_arn,
        "--image",
        json.dumps({"S3Object": {"Bucket": stack.names.media_bucket, "Name": key}}),
        "--min-confidence",
        "50",
    )
    assert code == 0, err
    [label] = found["CustomLabels"]
    assert label["Name"] == "acme"
    assert label["Geometry"]["BoundingBox"]["Left"] == pytest.approx(0.1)

    code, stopped, err = await aws(
        server, "stop-project-version", "--project-version-arn", version_arn
    )
    assert (code, stopped) == (0, {"Status": "STOPPING"}), err

    code, _, err = await aws(server, "describe-project-versions", "--project-arn", project + "0")
    assert code != 0
    assert "ResourceNotFoundException" in err
