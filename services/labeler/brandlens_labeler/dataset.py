"""From labelled frames to a dataset that can train: checks, a leakage-free split, files.

Groups keep frames of one video on one side of the split. With few videos
(fewer than ``split_min_videos``), holding whole videos out does not work: one
video cannot be split at all, and with two the test set is one whole video and
the training set a single group that the model-server cannot take a validation
set from. Each video is then cut into blocks of ``split_block_seconds`` and
blocks are kept together instead: neighbouring frames (near duplicates) never
straddle the split, except at the block edges. The group written into the
manifests (``brandlens-group``) is the one the split used, so the model-server's
own validation split follows it too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from brandlens_core.datasets import (
    GROUP_FIELD,
    Dataset,
    DatasetError,
    ImageAnnotations,
    in_blocks,
    media_count,
    split_by_group,
    statistics,
    validate_dataset,
    write_ground_truth,
)
from brandlens_labeler.frames import Frame, LabelingError


@dataclass(frozen=True)
class LabelledFrame:
    frame: Frame
    image: ImageAnnotations  # source_ref = the frame's s3:// URI, group = its media URI


@dataclass(frozen=True)
class BuiltDataset:
    dataset_id: str
    labels: list[str]
    train: Dataset
    test: Dataset
    statistics: dict[str, Any]

    @property
    def box_count(self) -> int:
        return sum(len(i.boxes) for i in self.train.images + self.test.images)


def labels_manifest(images: list[ImageAnnotations], labels: list[str], job_name: str) -> str:
    """A batch's converted labels as a Ground Truth manifest (group = the media)."""
    return write_ground_truth(
        Dataset(labels=labels, images=images),
        job_name=job_name,
        group_field=GROUP_FIELD,
        class_map="all",
    )


def to_brands(images: list[ImageAnnotations], brands: list[str]) -> list[ImageAnnotations]:
    """The images with every box label spelt as the project's brand it names.

    Labels match brands ignoring case and surrounding spaces (brand names are unique that
    way), so ``acme `` labels the brand ``Acme``. A label that matches no brand is a
    LabelingError naming every such label and listing the brands. A project without
    brands takes the labels as they are.
    """
    if not brands:
        return images
    canonical = {brand.strip().casefold(): brand for brand in brands}
    seen = dict.fromkeys(b.label for i in images for b in i.boxes)
    unknown = [label for label in seen if label.strip().casefold() not in canonical]
    if unknown:
        raise LabelingError(
            f"label(s) {', '.join(map(repr, unknown))} match no brand of the project; its "
            f"brands are {', '.join(map(repr, brands))} (labels are matched ignoring case "
            "and surrounding spaces). Rename the labels in the annotations, or add the "
            "brands to the project (brandlens project create PROJECT --update, every "
            "--brand again); then submit the training media again"
        )
    if all(label in brands for label in seen):
        return images
    return [
        dataclasses.replace(
            image,
            boxes=[
                dataclasses.replace(box, label=canonical[box.label.strip().casefold()])
                for box in image.boxes
            ],
        )
        for image in images
    ]


def content_id(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:24]


def build(
    images: list[ImageAnnotations],
    timestamps_ms: dict[str, float],
    brands: list[str],
    *,
    dataset_id: str,
    min_boxes_per_label: int,
    test_fraction: float,
    split_block_seconds: float,
    split_min_videos: int,
) -> BuiltDataset:
    """Validate, check that every brand can train, split. LabelingError says why not."""
    if not images:
        raise LabelingError("no labelled frames: nothing to build a dataset from")
    images = to_brands(images, brands)
    seen = list(dict.fromkeys(b.label for i in images for b in i.boxes))
    labels = list(brands) if brands else sorted(seen)
    if not labels:
        raise LabelingError(
            f"the {len(images)} labelled frames hold no boxes at all: a detector needs at "
            "least one labelled brand"
        )
    try:
        dataset = validate_dataset(Dataset(labels=labels, images=images), source_ref_scheme="s3")
    except DatasetError as exc:
        raise LabelingError(f"the labels are invalid: {exc.describe()}") from None
    stats = statistics(dataset)
    empty = stats.labels_without_boxes
    if empty:
        raise LabelingError(
            f"brand(s) {', '.join(empty)} have no boxes in the labelled frames; label them "
            "or remove them from the project"
        )
    few = {name: s.boxes for name, s in stats.labels.items() if s.boxes < min_boxes_per_label}
    if few:
        listed = ", ".join(f"{name} ({count})" for name, count in few.items())
        raise LabelingError(
            f"too few boxes to train: {listed}; every brand needs at least "
            f"{min_boxes_per_label} (BRANDLENS_LABELER_MIN_BOXES_PER_LABEL)"
        )
    videos = media_count(dataset)
    if videos < split_min_videos:
        block_ms = split_block_seconds * 1000

        def block_of(image: ImageAnnotations) -> int:
            return int(timestamps_ms.get(image.source_ref, 0.0) // block_ms)

        dataset = in_blocks(dataset, block_of)
        split_unit = (
            f"blocks of {split_block_seconds:g} s within each of {videos} source media "
            f"(fewer than {split_min_videos})"
        )
    else:
        split_unit = "source media"
    try:
        train, test = split_by_group(dataset, test_fraction)
    except DatasetError as exc:
        raise LabelingError(
            f"cannot hold out a test set: {exc.describe()}; label frames from more videos"
        ) from None
    summary = stats.to_dict() | {
        "split_unit": split_unit,
        "train_images": len(train.images),
        "test_images": len(test.images),
        "train_boxes": sum(len(i.boxes) for i in train.images),
        "test_boxes": sum(len(i.boxes) for i in test.images),
        "test_labels_missing": [
            label
            for label in labels
            if not any(b.label == label for i in test.images for b in i.boxes)
        ],
    }
    return BuiltDataset(dataset_id, labels, train, test, summary)


def manifest_text(dataset: Dataset, job_name: str) -> str:
    return write_ground_truth(dataset, job_name=job_name, group_field=GROUP_FIELD, class_map="all")


def statistics_json(built: BuiltDataset) -> str:
    return json.dumps(
        {"dataset_id": built.dataset_id, "labels": built.labels} | built.statistics, indent=2
    )
