"""Running models: Start/Stop, DetectCustomLabels, its errors, and throttling past capacity.

The model here is loaded by the stand-in ``fake_runtime`` (CONTRACT.md §2,
see test_model_server_support.py), which boxes pure red pixels; the real
detector runs in test_model_server_e2e.py.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from tests.integration.test_model_server_support import (
    ModelServerHarness,
    boto3_rekognition,
    png_with_red_square,
    rekognition,
    train,
    unique,
    version_status,
    wait_status,
)
from tests.support import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(stack, tmp_path)
    yield h
    await h.stop_all()


def code_of(error: BaseException) -> str:
    assert isinstance(error, ClientError), error
    return str(error.response["Error"]["Code"])


async def start_running(client: Any, project: str, name: str, arn: str, units: int = 1) -> None:
    started = await client.start_project_version(
        ProjectVersionArn=arn, MinInferenceUnits=units, MaxInferenceUnits=units + 1
    )
    assert started["Status"] == "STARTING"
    await wait_status(client, project, name, "RUNNING")


async def test_a_started_model_detects_until_it_is_stopped(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start()
    async with rekognition(server) as client:
        project, arn, name = await train(client, stack)
        with pytest.raises(ClientError) as not_running:
            await client.detect_custom_labels(
                ProjectVersionArn=arn, Image={"Bytes": png_with_red_square()}
            )
        assert code_of(not_running.value) == "ResourceNotReadyException"

        started = await client.start_project_version(
            ProjectVersionArn=arn, MinInferenceUnits=2, MaxInferenceUnits=3
        )
        assert started["Status"] == "STARTING"
        waiter = boto3_rekognition(server).get_waiter("project_version_running")
        await asyncio.to_thread(
            waiter.wait,
            ProjectArn=project,
            VersionNames=[name],
            WaiterConfig={"Delay": 1, "MaxAttempts": 60},
        )
        running = await version_status(client, project, name)
        assert (running["Status"], running["MinInferenceUnits"], running["MaxInferenceUnits"]) == (
            "RUNNING",
            2,
            3,
        )
        with pytest.raises(ClientError) as twice:
            await client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        assert code_of(twice.value) == "ResourceInUseException"
        with pytest.raises(ClientError) as in_use:
            await client.delete_project_version(ProjectVersionArn=arn)
        assert code_of(in_use.value) == "ResourceInUseException"

        # Bytes: the red square at (20, 10)-(60, 50) of a 200x100 image, as ratios.
        image = png_with_red_square()
        found = await client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
        [label] = found["CustomLabels"]
        assert label["Name"] == "acme"
        assert label["Confidence"] == pytest.approx(95.0)
        assert label["Geometry"]["BoundingBox"] == pytest.approx(
            {"Left": 0.1, "Top": 0.1, "Width": 0.2, "Height": 0.4}
        )
        # MinConfidence 0 returns everything, MaxResults caps, highest confidence first.
        everything = await client.detect_custom_labels(
            ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=0
        )
        assert [c["Confidence"] for c in everything["CustomLabels"]] == [95.0, 12.5]
        capped = await client.detect_custom_labels(
            ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=0, MaxResults=1
        )
        assert [c["Confidence"] for c in capped["CustomLabels"]] == [95.0]

        # S3Object: a JPEG in the media bucket.
        jpeg = io.BytesIO()
        Image.open(io.BytesIO(image)).save(jpeg, format="JPEG", quality=95)
        key = unique("analysis/acme/frame") + ".jpg"
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key=key, Body=jpeg.getvalue()
        )
        from_s3 = await client.detect_custom_labels(
            ProjectVersionArn=arn,
            Image={"S3Object": {"Bucket": stack.names.media_bucket, "Name": key}},
        )
        assert from_s3["CustomLabels"][0]["Geometry"]["BoundingBox"]["Left"] == pytest.approx(
            0.1, abs=0.02
        )

        stopping = await client.stop_project_version(ProjectVersionArn=arn)
        assert stopping["Status"] == "STOPPING"
        stopped = await wait_status(client, project, name, "STOPPED")
        assert stopped["StatusMessage"] == "The model is stopped."
        with pytest.raises(ClientError) as after_stop:
            await client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
        assert code_of(after_stop.value) == "ResourceNotReadyException"
        with pytest.raises(ClientError) as stop_again:
            await client.stop_project_version(ProjectVersionArn=arn)
        assert code_of(stop_again.value) == "ResourceInUseException"

        # A stopped model starts again.
        await start_running(client, project, name, arn)
        await client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
        await client.stop_project_version(ProjectVersionArn=arn)
        await wait_status(client, project, name, "STOPPED")

        assert (await client.delete_project_version(ProjectVersionArn=arn))["Status"] == "DELETING"
        assert (await client.describe_project_versions(ProjectArn=project))[
            "ProjectVersionDescriptions"
        ] == []
        assert (await client.delete_project(ProjectArn=project))["Status"] == "DELETING"
    assert not (harness.tmp_path / "cache" / "models" / project.split("/")[1] / name).exists()


async def test_bad_images_get_the_errors_aws_returns(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start()
    async with rekognition(server) as client:
        project, arn, name = await train(client, stack)
        await start_running(client, project, name, arn)

        async def detect_error(image: dict[str, Any]) -> str:
            with pytest.raises(ClientError) as error:
                await client.detect_custom_labels(ProjectVersionArn=arn, Image=image)
            return code_of(error.value)

        assert await detect_error({"Bytes": b"GIF89a not a jpeg or png"}) == (
            "InvalidImageFormatException"
        )
        # PNG magic, undecodable body: the detector's InvalidImageError
        assert await detect_error({"Bytes": b"\x89PNG\r\n\x1a\n" + b"\0" * 64}) == (
            "InvalidImageFormatException"
        )
        too_large = png_with_red_square() + b"\0" * (4 * 1024 * 1024)
        assert await detect_error({"Bytes": too_large}) == "ImageTooLargeException"
        missing = {"Bucket": stack.names.media_bucket, "Name": "analysis/none.jpg"}
        assert await detect_error({"S3Object": missing}) == "InvalidS3ObjectException"
        no_bucket = {"Bucket": "no-such-bucket-zz", "Name": "x.jpg"}
        assert await detect_error({"S3Object": no_bucket}) == "InvalidS3ObjectException"
        both = {"Bytes": png_with_red_square(), "S3Object": missing}
        assert await detect_error(both) == "InvalidParameterException"


async def test_start_refuses_what_cannot_run(harness: ModelServerHarness, stack: Stack) -> None:
    server = await harness.start()
    async with rekognition(server) as client:
        project, arn, name = await train(client, stack)
        with pytest.raises(ClientError) as bad_units:
            await client.start_project_version(
                ProjectVersionArn=arn, MinInferenceUnits=3, MaxInferenceUnits=2
            )
        assert code_of(bad_units.value) == "InvalidParameterException"
        _, failed_arn, failed = await train(
            client, stack, directive={"mode": "fail"}, project_arn=project, wait=False
        )
        await wait_status(client, project, failed, "TRAINING_FAILED")
        with pytest.raises(ClientError) as untrained:
            await client.start_project_version(ProjectVersionArn=failed_arn, MinInferenceUnits=1)
        assert code_of(untrained.value) == "InvalidParameterException"
        assert (await version_status(client, project, name))["Status"] == "TRAINING_COMPLETED"


async def test_a_model_that_cannot_load_fails_with_the_reason(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start(BRANDLENS_MODEL_SERVER_RUNTIME_MODULE="no_such_runtime")
    async with rekognition(server) as client:
        project, arn, name = await train(client, stack)
        await client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        failed = await wait_status(client, project, name, "FAILED", "RUNNING")
    assert failed["Status"] == "FAILED"
    assert "no_such_runtime" in failed["StatusMessage"]


async def test_requests_past_the_inference_units_are_throttled(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start(
        BRANDLENS_MODEL_SERVER_RATE_PER_INFERENCE_UNIT_PER_SECOND="2",
        BRANDLENS_MODEL_SERVER_BURST_SECONDS="1",
    )
    image = png_with_red_square()
    async with rekognition(server, max_attempts=1) as client:
        project, arn, name = await train(client, stack)
        await start_running(client, project, name, arn, units=1)

        async def burst(n: int) -> tuple[int, list[str], float]:
            started = time.monotonic()
            results = await asyncio.gather(
                *(
                    client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
                    for _ in range(n)
                ),
                return_exceptions=True,
            )
            errors = [code_of(r) for r in results if isinstance(r, BaseException)]
            return n - len(errors), errors, time.monotonic() - started

        # 1 unit x 2 requests/s, a bucket of 2: a burst of 10 gets the 2 tokens in the
        # bucket, plus what refills while the burst lasts; the rest is refused at once.
        served, refused, seconds = await burst(10)
        assert 2 <= served <= 2 + int(2 * seconds), (served, refused, seconds)
        assert refused
        assert set(refused) == {"ProvisionedThroughputExceededException"}

        # Three units serve three times as much.
        await client.stop_project_version(ProjectVersionArn=arn)
        await wait_status(client, project, name, "STOPPED")
        await start_running(client, project, name, arn, units=3)
        served, refused, seconds = await burst(12)
        assert 6 <= served <= 6 + int(6 * seconds), (served, refused, seconds)
        assert refused
        assert set(refused) == {"ProvisionedThroughputExceededException"}

    # A client that backs off and retries (botocore's standard mode) gets every answer.
    async with rekognition(server, max_attempts=20) as patient:
        await asyncio.sleep(1.0)  # let the bucket refill
        answers = await asyncio.gather(
            *(
                patient.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
                for _ in range(12)
            )
        )
    assert all(a["CustomLabels"][0]["Name"] == "acme" for a in answers)


async def test_requests_past_the_inference_threads_get_throttling_exception(
    harness: ModelServerHarness, stack: Stack
) -> None:
    server = await harness.start(
        BRANDLENS_MODEL_SERVER_RATE_PER_INFERENCE_UNIT_PER_SECOND="1000",
        BRANDLENS_MODEL_SERVER_INFERENCE_THREADS="1",
        BRANDLENS_MODEL_SERVER_MAX_QUEUED_DETECTIONS="1",
    )
    image = png_with_red_square()
    async with rekognition(server, max_attempts=1) as client:
        project, arn, name = await train(client, stack, directive={"sleep_seconds": 1.0})
        await start_running(client, project, name, arn)
        results = await asyncio.gather(
            *(
                client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
                for _ in range(6)
            ),
            return_exceptions=True,
        )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(results) - len(errors) == 2  # one detecting, one waiting for the thread
    assert {code_of(e) for e in errors} == {"ThrottlingException"}
    assert all(e.response["ResponseMetadata"]["HTTPStatusCode"] == 500 for e in errors)  # type: ignore[attr-defined]
