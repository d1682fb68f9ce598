"""The labeler's Ground Truth path: real frames on the moto stack, SageMaker through
botocore's Stubber (requests checked against the service model, responses too).

Ground Truth itself cannot run here; the test plays its part: it checks the
CreateLabelingJob request, answers DescribeLabelingJob, writes the output manifest
(and, for video, the SeqLabel file) where Ground Truth would, and delivers the
state-change event the EventBridge rule would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from aiobotocore.stub import AioStubber

from brandlens_core.datasets import GROUP_FIELD, read_ground_truth
from brandlens_core.projects import GroundTruthOptions, LabelingBackend, Project, ProjectStore
from brandlens_framer.settings import FramerSettings, SamplingMode
from brandlens_labeler import ground_truth as gt
from brandlens_labeler.app import create_worker
from brandlens_labeler.settings import LabelerSettings
from brandlens_synth import default_brands
from brandlens_synth.video import Appearance, generate_video
from tests.support import (
    RunningWorker,
    Stack,
    eventually,
    fast_worker_settings,
    start_framer,
    start_ingest,
)

pytestmark = pytest.mark.integration

WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/logo-team"
ROLE = "arn:aws:iam::123456789012:role/brandlens-ground-truth"
WIDTH, HEIGHT = 320, 180
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/"
SOME_REQUEST = gt.create_request(
    name="brandlens-0123",
    project="p",
    batch_id="batch-0123",
    brands=["Acme"],
    options=GroundTruthOptions(workteam_arn=WORKTEAM, role_arn=ROLE),
    bucket="b",
    prefix="labeling/p/batch-0123/ground-truth",
    manifest_key="labeling/p/batch-0123/ground-truth/input.manifest",
    region="us-east-1",
    lambda_account=None,
    frame_count=4,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    (acme,) = default_brands(1)
    path = Path(tmp_path_factory.mktemp("gt")) / "clip.mp4"
    generate_video(
        path, brands=[acme], seconds=2.0, fps=10, width=WIDTH, height=HEIGHT, seed=3,
        schedule=[Appearance(acme, 0.0, 2.0, (0.1, 0.1, 0.3, 0.4))],
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture
async def sagemaker() -> AsyncIterator[tuple[Any, AioStubber]]:
    async with get_session().create_client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # a stubbed client sends nothing
    ) as client:
        with AioStubber(client) as stubber:
            yield client, stubber


def describe(
    request: dict[str, Any], status: str, labeled: int, output: str | None
) -> dict[str, Any]:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    response: dict[str, Any] = {
        "LabelingJobStatus": status,
        "LabelCounters": {"TotalLabeled": labeled, "HumanLabeled": labeled, "Unlabeled": 0},
        "CreationTime": now,
        "LastModifiedTime": now,
        "JobReferenceCode": "ref-1",
        "LabelingJobName": request["LabelingJobName"],
        "LabelingJobArn": ARN_PREFIX + request["LabelingJobName"],
        "LabelAttributeName": request["LabelAttributeName"],
        "InputConfig": request["InputConfig"],
        "OutputConfig": request["OutputConfig"],
        "RoleArn": request["RoleArn"],
        "HumanTaskConfig": request["HumanTaskConfig"],
        "Tags": request["Tags"],
    }
    if output:
        response["LabelingJobOutput"] = {"OutputDatasetS3Uri": output}
    return response


async def read(stack: Stack, bucket: str, key: str) -> bytes:
    response = await stack.clients.s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return bytes(await body.read())


@pytest.mark.parametrize("task_type", ["image", "video"])
async def test_ground_truth_job_to_dataset(
    stack: Stack, clip: bytes, sagemaker: tuple[Any, AioStubber], task_type: str
) -> None:
    client, stubber = sagemaker
    await stack.capture_events()
    project_name = "gt-" + task_type
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    await projects.create_project(
        Project(
            project=project_name,
            brands=["Acme"],
            labeling=LabelingBackend.GROUND_TRUTH,
            ground_truth=GroundTruthOptions(
                workteam_arn=WORKTEAM, role_arn=ROLE, task_type=task_type
            ),  # type: ignore[arg-type]
        )
    )
    settings = LabelerSettings(
        poll_interval_seconds=900, min_boxes_per_label=1, split_block_seconds=0.5
    )
    created: list[dict[str, Any]] = []

    async with AsyncExitStack() as exits:
        # Expected calls, in order. The request is checked against the service model by
        # botocore before the stub answers; its content is checked below.
        stubber.add_response(
            "create_labeling_job",
            {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x"},
        )
        client.meta.events.register(
            "provide-client-params.sagemaker.CreateLabelingJob",
            lambda params, **_: created.append(dict(params)),
        )
        workers = [
            await start_ingest(stack),
            await start_framer(
                stack, FramerSettings(training_mode=SamplingMode.INTERVAL, training_interval_ms=500)
            ),
        ]
        labeler = await create_worker(
            stack.clients, stack.names, settings, fast_worker_settings(), exits, sagemaker=client
        )
        # right after creating the job, the labeler looks once: still in progress
        stubber.add_response("describe_labeling_job", describe(SOME_REQUEST, "InProgress", 0, None))
        workers.append(RunningWorker(labeler))
        try:
            await stack.clients.s3.put_object(
                Bucket=stack.names.media_bucket, Key=f"training/{project_name}/clip.mp4", Body=clip
            )
            await eventually(lambda: _created(created), timeout=60, message="CreateLabelingJob")
            request = created[0]
            opened = await eventually(
                lambda: stack.events_of("LabelingJobOpened"), timeout=30, message="opened"
            )
            detail = opened[0]["detail"]
            assert detail["backend"] == "ground-truth"
            assert detail["external_id"] == request["LabelingJobName"]

            # what Ground Truth was asked to do
            assert request["HumanTaskConfig"]["WorkteamArn"] == WORKTEAM
            assert request["RoleArn"] == ROLE
            assert request["Tags"] == [
                {"Key": gt.TAG_PROJECT, "Value": project_name},
                {"Key": gt.TAG_BATCH, "Value": detail["batch_id"]},
            ]
            pre = request["HumanTaskConfig"]["PreHumanTaskLambdaArn"]
            kind = "BoundingBox" if task_type == "image" else "VideoObjectDetection"
            assert pre == f"arn:aws:lambda:us-east-1:432418664414:function:PRE-{kind}"
            artifacts = stack.names.artifacts_bucket
            categories = json.loads(
                await read(stack, artifacts, request["LabelCategoryConfigS3Uri"].split("/", 3)[3])
            )
            assert categories["labels"] == [{"label": "Acme"}]
            manifest_uri = request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
            input_lines = [
                json.loads(x)
                for x in (await read(stack, artifacts, manifest_uri.split("/", 3)[3]))
                .decode()
                .splitlines()
            ]
            output_prefix = request["OutputConfig"]["S3OutputPath"].split("/", 3)[3]
            output_key = (
                f"{output_prefix}{request['LabelingJobName']}/manifests/output/output.manifest"
            )
            job_name = f"labeling-job/{request['LabelingJobName']}"
            boxes: dict[str, dict[str, int]] = {}
            if task_type == "image":
                assert len(input_lines) == 4
                lines = []
                for n, line in enumerate(input_lines):
                    box = {"class_id": 0, "left": 10 + n, "top": 20, "width": 40, "height": 30}
                    boxes[line["source-ref"]] = box
                    lines.append(
                        line
                        | {
                            "brands": {
                                "image_size": [{"width": WIDTH, "height": HEIGHT, "depth": 3}],
                                "annotations": [box],
                            },
                            "brands-metadata": {
                                "objects": [{"confidence": 0.9}],
                                "class-map": {"0": "Acme"},
                                "type": "groundtruth/object-detection",
                                "human-annotated": "yes",
                                "creation-date": "2026-11-22T10:00:00",
                                "job-name": job_name,
                            },
                        }
                    )
                output = "\n".join(json.dumps(x) for x in lines) + "\n"
            else:
                assert len(input_lines) == 1  # one sequence for the one video
                seq_key = input_lines[0]["source-ref"].split("/", 3)[3]
                sequence = json.loads(await read(stack, artifacts, seq_key))
                assert sequence["number-of-frames"] == 4
                seq_label_key = (
                    f"{output_prefix}{request['LabelingJobName']}/annotations/"
                    "consolidated-annotation/output/0/SeqLabel.json"
                )
                detections = []
                for n, frame in enumerate(sequence["frames"]):
                    box = {"class-id": "0", "left": 10 + n, "top": 20, "width": 40, "height": 30}
                    boxes[sequence["prefix"] + frame["frame"]] = {
                        "left": 10 + n, "top": 20, "width": 40, "height": 30,
                    }  # fmt: skip
                    detections.append(
                        {
                            "frame-no": str(frame["frame-no"]),
                            "frame": frame["frame"],
                            "annotations": [box | {"label-category-attributes": {}}],
                        }
                    )
                await stack.clients.s3.put_object(
                    Bucket=artifacts,
                    Key=seq_label_key,
                    Body=json.dumps({"detection-annotations": detections}).encode(),
                )
                output = (
                    json.dumps(
                        input_lines[0]
                        | {
                            "brands-ref": f"s3://{artifacts}/{seq_label_key}",
                            "brands-ref-metadata": {
                                "class-map": {"0": "Acme"},
                                "type": "groundtruth/video-object-detection",
                                "human-annotated": "yes",
                                "creation-date": "2026-11-22T10:00:00",
                                "job-name": job_name,
                            },
                        }
                    )
                    + "\n"
                )
            await stack.clients.s3.put_object(
                Bucket=artifacts, Key=output_key, Body=output.encode()
            )

            # Ground Truth reports completion on EventBridge; the rule delivers it here.
            stubber.add_response(
                "describe_labeling_job",
                describe(request, "Completed", 4, f"s3://{artifacts}/{output_key}"),
            )
            stubber.add_response(
                "describe_labeling_job",
                describe(request, "Completed", 4, f"s3://{artifacts}/{output_key}"),
            )
            await stack.clients.sqs.send_message(
                QueueUrl=stack.queue_urls["labeler"],
                MessageBody=json.dumps(
                    {
                        "version": "0",
                        "id": "7e4c1b1e-0000-4000-8000-000000000001",
                        "detail-type": gt.STATE_CHANGE,
                        "source": "aws.sagemaker",
                        "account": "123456789012",
                        "time": "2026-11-22T10:00:00Z",
                        "region": "us-east-1",
                        "resources": [ARN_PREFIX + request["LabelingJobName"]],
                        "detail": {"LabelingJobStatus": "Completed"},
                    }
                ),
            )
            ready = await eventually(
                lambda: stack.events_of("DatasetReady"), timeout=30, message="DatasetReady"
            )
        finally:
            for worker in workers:
                await worker.stop()
    dataset = ready[0]["detail"]
    images = []
    for uri in (dataset["train_manifest_uri"], dataset["test_manifest_uri"]):
        text = (await read(stack, *uri[5:].split("/", 1))).decode()
        images.extend(read_ground_truth(text, group_field=GROUP_FIELD).images)
    assert len(images) == 4
    for image in images:
        (got,) = image.boxes
        want = boxes[image.source_ref]
        assert (got.label, got.left, got.top, got.width, got.height) == (
            "Acme", want["left"], want["top"], want["width"], want["height"],
        )  # fmt: skip
    assert dataset["labels"] == ["Acme"]
    assert not await stack.events_of("LabelingFailed")


async def _created(created: list[dict[str, Any]]) -> bool:
    return bool(created)


async def test_ground_truth_failure_fails_the_batch(
    stack: Stack, clip: bytes, sagemaker: tuple[Any, AioStubber]
) -> None:
    """A labelling job that AWS marks Failed ends the batch with its FailureReason."""
    client, stubber = sagemaker
    await stack.capture_events()
    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    await projects.create_project(
        Project(
            project="gt-fail",
            brands=["Acme"],
            labeling=LabelingBackend.GROUND_TRUTH,
            ground_truth=GroundTruthOptions(workteam_arn=WORKTEAM, role_arn=ROLE),
        )
    )
    created: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateLabelingJob",
        lambda params, **_: created.append(dict(params)),
    )
    stubber.add_response(
        "create_labeling_job",
        {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x"},
    )
    async with AsyncExitStack() as exits:
        workers = [
            await start_ingest(stack),
            await start_framer(
                stack, FramerSettings(training_mode=SamplingMode.INTERVAL, training_interval_ms=500)
            ),
        ]
        labeler = await create_worker(
            stack.clients,
            stack.names,
            LabelerSettings(poll_interval_seconds=1),
            fast_worker_settings(),
            exits,
            sagemaker=client,
        )
        failed = describe(SOME_REQUEST, "Failed", 0, None) | {
            "FailureReason": "ClientError: the workteam has no workers"
        }
        stubber.add_response("describe_labeling_job", failed)
        workers.append(RunningWorker(labeler))
        try:
            await stack.clients.s3.put_object(
                Bucket=stack.names.media_bucket, Key="training/gt-fail/clip.mp4", Body=clip
            )
            await eventually(lambda: _created(created), timeout=60, message="CreateLabelingJob")
            events = await eventually(
                lambda: stack.events_of("LabelingFailed"), timeout=30, message="LabelingFailed"
            )
        finally:
            for worker in workers:
                await worker.stop()
    assert "the workteam has no workers" in events[0]["detail"]["reason"]
    job_id = (await stack.events_of("LabelingJobOpened"))[0]["detail"]["job_ids"][0]
    job = await stack.clients.dynamodb.get_item(
        TableName=stack.names.table("jobs"), Key={"job_id": {"S": job_id}}
    )
    assert job["Item"]["status"]["S"] == "FAILED"
    assert "workteam has no workers" in job["Item"]["reason"]["S"]
