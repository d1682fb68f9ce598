"""The stack's event patterns, checked by delivery: events put on the bus (moto server)
reach the queue of the rule meant for them, and others do not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Stack, receive_all

pytestmark = pytest.mark.integration


async def put(
    stack: Stack, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]
) -> None:
    answer = await stack.clients.events.put_events(
        Entries=[{
            "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail),
            "Resources": resources, "EventBusName": "default",
        }]
    )  # fmt: skip
    assert answer["FailedEntryCount"] == 0, answer


async def delivered(stack: Stack, queue: str) -> list[dict[str, Any]]:
    return await receive_all(stack, stack.queue_urls[queue])


async def test_ground_truth_events_of_other_jobs_are_left_alone(stack: Stack) -> None:
    for name in ("brandlens-0123abcd", "another-teams-job"):
        await put(
            stack, "aws.sagemaker", "SageMaker Ground Truth Labeling Job State Change",
            {"LabelingJobStatus": "Completed"},
            [f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{name}"],
        )  # fmt: skip
    got = await delivered(stack, "labeler")
    assert [e["resources"][0].rsplit("/", 1)[1] for e in got] == ["brandlens-0123abcd"]


async def test_annotations_go_to_the_labeler_and_media_to_ingest(stack: Stack) -> None:
    media = stack.names.media_bucket
    for bucket, key in (
        (media, "training/p/annotations/a.json"),
        (media, "analysis/p/a.mp4"),
        ("someone-elses-bucket", "analysis/p/b.mp4"),
    ):
        await put(
            stack, "aws.s3", "Object Created",
            {"bucket": {"name": bucket}, "object": {"key": key}}, [f"arn:aws:s3:::{bucket}"],
        )  # fmt: skip
    labeler = [e["detail"]["object"]["key"] for e in await delivered(stack, "labeler")]
    ingest = [e["detail"]["object"]["key"] for e in await delivered(stack, "ingest")]
    assert labeler == ["training/p/annotations/a.json"]
    # ingest sees every object of the media bucket (it ignores annotation keys itself)
    assert sorted(ingest) == ["analysis/p/a.mp4", "training/p/annotations/a.json"]
