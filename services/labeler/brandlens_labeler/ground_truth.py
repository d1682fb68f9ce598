"""SageMaker Ground Truth: bounding-box labelling jobs and their output manifests.

Image task type: one manifest line per frame, the built-in ``PRE-BoundingBox`` /
``ACS-BoundingBox`` Lambdas and a ``crowd-bounding-box`` template. Video task
type: one sequence file per source video (at most 2000 frames each), the
``VideoObjectDetection`` Lambdas and task UI; the output then points at a
SeqLabel.json per sequence. The labelling job carries the project and batch as
tags, so a state-change event leads back to its batch.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brandlens_core.datasets import (
    DatasetError,
    ImageAnnotations,
    read_ground_truth,
    read_ground_truth_video,
)
from brandlens_core.events import deterministic_id
from brandlens_core.projects import GroundTruthOptions
from brandlens_labeler.frames import Frame, LabelingError

# Accounts that own the built-in pre-annotation and consolidation Lambdas, per region
# (AWS SageMaker API reference, HumanTaskConfig.PreHumanTaskLambdaArn).
LAMBDA_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
HUMAN_TASK_UI_ACCOUNT = "394669845002"  # owner of the built-in video task UIs
MAX_SEQUENCE_FRAMES = 2000
IMAGE_ATTRIBUTE = "brands"
VIDEO_ATTRIBUTE = "brands-ref"  # video label attribute names must end in -ref
TAG_PROJECT = "brandlens:project"
TAG_BATCH = "brandlens:batch"
STATE_CHANGE = "SageMaker Ground Truth Labeling Job State Change"

BOUNDING_BOX_TEMPLATE = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-bounding-box
    name="boundingBox"
    src="{{ task.input.taskObject | grant_read_access }}"
    header="Draw a tight box around every visible logo"
    labels="{{ task.input.labels | to_json | escape }}"
  >
    <full-instructions header="Logo boxes">
      <p>Box every logo you can recognise, including partly hidden ones. Leave the image
      without boxes when no brand is visible.</p>
    </full-instructions>
    <short-instructions><p>One box per logo, tight around it.</p></short-instructions>
  </crowd-bounding-box>
</crowd-form>
"""


def lambda_arns(
    region: str, task_type: str, account_override: str | None = None
) -> tuple[str, str]:
    """(pre-annotation, consolidation) Lambda ARNs of the built-in task type."""
    account = account_override or LAMBDA_ACCOUNTS.get(region)
    if account is None:
        raise LabelingError(
            f"no built-in Ground Truth Lambdas are known for region {region}; set "
            "BRANDLENS_LABELER_GROUND_TRUTH_LAMBDA_ACCOUNT to the account AWS lists for it"
        )
    name = "BoundingBox" if task_type == "image" else "VideoObjectDetection"
    prefix = f"arn:aws:lambda:{region}:{account}:function"
    return f"{prefix}:PRE-{name}", f"{prefix}:ACS-{name}"


def job_name(project: str, batch_id: str) -> str:
    """A deterministic labelling job name (<= 63 chars, letters, digits and hyphens)."""
    return f"brandlens-{deterministic_id('gt', project, batch_id)[:32]}"


def label_category_config(brands: list[str]) -> str:
    return json.dumps({"document-version": "2018-11-28", "labels": [{"label": b} for b in brands]})


@dataclass(frozen=True)
class GroundTruthInputs:
    """Files the labelling job reads, as (key, body) in the artifacts bucket."""

    manifest_key: str
    files: list[tuple[str, bytes]]


def build_inputs(
    frames: list[Frame], brands: list[str], bucket: str, prefix: str, task_type: str
) -> GroundTruthInputs:
    files: list[tuple[str, bytes]] = [
        (f"{prefix}/label-categories.json", label_category_config(brands).encode()),
        (f"{prefix}/template.liquid.html", BOUNDING_BOX_TEMPLATE.encode()),
    ]
    lines: list[str] = []
    if task_type == "image":
        lines = [json.dumps({"source-ref": f.uri}) for f in frames]
    else:
        by_media: dict[str, list[Frame]] = {}
        for frame in frames:
            by_media.setdefault(frame.job_id, []).append(frame)
        seq = 0
        for job_frames in by_media.values():
            job_frames.sort(key=lambda f: f.index)
            folder = posixpath.dirname(job_frames[0].key)
            frames_bucket = job_frames[0].bucket
            for start in range(0, len(job_frames), MAX_SEQUENCE_FRAMES):
                chunk = job_frames[start : start + MAX_SEQUENCE_FRAMES]
                seq += 1
                sequence = {
                    "seq-no": seq,
                    "prefix": f"s3://{frames_bucket}/{folder}/",
                    "number-of-frames": len(chunk),
                    "frames": [
                        {"frame-no": n, "frame": posixpath.basename(f.key)}
                        for n, f in enumerate(chunk)
                    ],
                }
                key = f"{prefix}/sequences/seq-{seq:04d}.json"
                files.append((key, json.dumps(sequence).encode()))
                lines.append(json.dumps({"source-ref": f"s3://{bucket}/{key}"}))
    manifest_key = f"{prefix}/input.manifest"
    files.append((manifest_key, ("\n".join(lines) + "\n").encode()))
    return GroundTruthInputs(manifest_key, files)


def create_request(
    *,
    name: str,
    project: str,
    batch_id: str,
    brands: list[str],
    options: GroundTruthOptions,
    bucket: str,
    prefix: str,
    manifest_key: str,
    region: str,
    lambda_account: str | None,
    frame_count: int,
) -> dict[str, Any]:
    """The CreateLabelingJob request for a batch."""
    pre, acs = lambda_arns(region, options.task_type, lambda_account)
    ui: dict[str, str]
    if options.task_type == "image":
        ui = {"UiTemplateS3Uri": f"s3://{bucket}/{prefix}/template.liquid.html"}
    else:
        ui = {
            "HumanTaskUiArn": (
                f"arn:aws:sagemaker:{region}:{HUMAN_TASK_UI_ACCOUNT}:human-task-ui/"
                "VideoObjectDetection"
            )
        }
    return {
        "LabelingJobName": name,
        "LabelAttributeName": IMAGE_ATTRIBUTE if options.task_type == "image" else VIDEO_ATTRIBUTE,
        "InputConfig": {
            "DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{bucket}/{manifest_key}"}},
            "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
        },
        "OutputConfig": {"S3OutputPath": f"s3://{bucket}/{prefix}/output/"},
        "RoleArn": options.role_arn,
        "LabelCategoryConfigS3Uri": f"s3://{bucket}/{prefix}/label-categories.json",
        "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
        "HumanTaskConfig": {
            "WorkteamArn": options.workteam_arn,
            "UiConfig": ui,
            "PreHumanTaskLambdaArn": pre,
            "TaskKeywords": ["Images", "bounding box", "object detection", "logos"],
            "TaskTitle": f"Logo boxes: {project}"[:128],
            "TaskDescription": options.task_description,
            "NumberOfHumanWorkersPerDataObject": options.workers_per_object,
            "TaskTimeLimitInSeconds": options.task_time_limit_seconds,
            "TaskAvailabilityLifetimeInSeconds": options.task_availability_seconds,
            "MaxConcurrentTaskCount": min(options.max_concurrent_tasks, max(frame_count, 1)),
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": acs},
        },
        "Tags": [{"Key": TAG_PROJECT, "Value": project}, {"Key": TAG_BATCH, "Value": batch_id}],
    }


def job_name_from_event(resources: list[str], detail: Mapping[str, Any]) -> str | None:
    """The labelling job's name from a state-change event (its ARN in ``resources``)."""
    for arn in resources:
        if ":labeling-job/" in arn:
            return arn.rsplit("/", 1)[-1]
    name = detail.get("LabelingJobName")
    return name if isinstance(name, str) else None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise LabelingError(f"not an s3:// object URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def convert_image_output(
    text: bytes, frames: dict[str, Frame]
) -> tuple[list[ImageAnnotations], list[str]]:
    """An image bounding-box output manifest -> labelled frames (+ the job's labels)."""
    try:
        dataset = read_ground_truth(text, attribute=IMAGE_ATTRIBUTE, clip=True)
    except DatasetError as exc:
        raise LabelingError(
            f"the Ground Truth output manifest is invalid: {exc.describe()}"
        ) from None
    images = []
    for image in dataset.images:
        frame = frames.get(image.source_ref)
        if frame is None:
            raise LabelingError(
                f"the Ground Truth output names {image.source_ref}, which is not a frame of "
                "this batch"
            )
        images.append(_on_frame(image, frame))
    return images, dataset.labels


def convert_video_output(
    line: Mapping[str, Any],
    seq_label: bytes,
    sequence: bytes | None,
    frames: dict[str, Frame],
    line_number: int,
) -> list[ImageAnnotations]:
    """One video frame object detection output line (+ its SeqLabel) -> labelled frames."""
    sizes = {uri: (f.width, f.height) for uri, f in frames.items()}
    try:
        images = read_ground_truth_video(
            dict(line),
            seq_label,
            sequence,
            frame_sizes=sizes,
            clip=True,
            line=line_number,
        )
    except DatasetError as exc:
        raise LabelingError(f"the Ground Truth video output is invalid: {exc.describe()}") from None
    converted = []
    for image in images:
        frame = frames.get(image.source_ref)
        if frame is None:
            raise LabelingError(
                f"the Ground Truth output names {image.source_ref}, which is not a frame of "
                "this batch"
            )
        converted.append(_on_frame(image, frame))
    return converted


def _on_frame(image: ImageAnnotations, frame: Frame) -> ImageAnnotations:
    if (image.width, image.height) != (frame.width, frame.height):
        sx, sy = frame.width / image.width, frame.height / image.height
        boxes = [
            type(b)(b.label, b.left * sx, b.top * sy, b.width * sx, b.height * sy)
            for b in image.boxes
        ]
    else:
        boxes = list(image.boxes)
    return ImageAnnotations(frame.uri, frame.width, frame.height, boxes, group=frame.media_uri)
