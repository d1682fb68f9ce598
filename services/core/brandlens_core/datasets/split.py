"""Dataset statistics and leakage-free train/test splits."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from brandlens_core.datasets.base import Dataset, ImageAnnotations
from brandlens_core.datasets.errors import DatasetError

GroupKey = tuple[str, str]
_ATTEMPTS = 24
_MAX_PASSES = 20

BLOCK_MARK = "#block-"
"""Joins a group and a block number: ``s3://media/clip.mp4#block-00003``."""

FEW_MEDIA = 5
"""With fewer source media (videos) than this, splits keep time blocks of each video
together instead of whole videos: holding out one of two or three videos leaves a test
set (and a training set) that says little, and the validation split inside the training
part would have no video left to hold out."""

POSITION_BLOCKS = 10
"""Blocks per group when a group is cut by position (:func:`in_position_blocks`)."""


def group_key(image: ImageAnnotations) -> GroupKey:
    """The unit a split keeps together: the image's group, else the image itself."""
    return ("group", image.group) if image.group is not None else ("image", image.source_ref)


def media_of(group: str) -> str:
    """The media a group names, without its block: ``clip.mp4#block-00003`` -> ``clip.mp4``."""
    return group.split(BLOCK_MARK, 1)[0]


def is_block(group: str | None) -> bool:
    """Whether ``group`` is already a block of a media (:func:`in_blocks`)."""
    return group is not None and BLOCK_MARK in group


def media_count(dataset: Dataset) -> int:
    """Source media of the images: groups without their blocks; ungrouped images count alone."""
    return len(
        {
            ("group", media_of(i.group)) if i.group is not None else group_key(i)
            for i in dataset.images
        }
    )


def in_blocks(dataset: Dataset, block_of: Callable[[ImageAnnotations], int]) -> Dataset:
    """A copy whose grouped images belong to a block of their group, ``<group>#block-00003``.

    ``block_of`` gives the block number of an image (its time over the block length, for
    frames of a video). Images without a group stay their own group; ``dataset`` is not
    changed. A split of the copy keeps every block whole: neighbouring frames stay on one
    side, except where two blocks meet.
    """
    images = [
        dataclasses.replace(
            image, group=f"{media_of(image.group)}{BLOCK_MARK}{block_of(image):05d}"
        )
        if image.group is not None
        else image
        for image in dataset.images
    ]
    return Dataset(labels=list(dataset.labels), images=images)


def in_position_blocks(dataset: Dataset, blocks: int = POSITION_BLOCKS) -> Dataset:
    """:func:`in_blocks` when only the order is known: each group cut into ``blocks`` runs of
    consecutive images (in the dataset's order; the labeler writes a video's frames in time
    order), for manifests that name a group but no time."""
    counts = Counter(image.group for image in dataset.images if image.group is not None)
    seen: Counter[str] = Counter()
    block_by_image: dict[int, int] = {}
    for index, image in enumerate(dataset.images):
        if image.group is not None:
            block_by_image[index] = seen[image.group] * blocks // counts[image.group]
            seen[image.group] += 1
    position = {id(image): index for index, image in enumerate(dataset.images)}
    return in_blocks(dataset, lambda image: block_by_image[position[id(image)]])


@dataclass(frozen=True, slots=True)
class LabelStatistics:
    label: str
    boxes: int
    images: int
    groups: int
    """How many groups (videos; ungrouped images count alone) hold a box of this label."""


@dataclass(frozen=True, slots=True)
class DatasetStatistics:
    images: int
    boxes: int
    negatives: int
    groups: int
    labels: dict[str, LabelStatistics]

    @property
    def labels_without_boxes(self) -> list[str]:
        return [name for name, stats in self.labels.items() if stats.boxes == 0]

    @property
    def unsplittable_labels(self) -> list[str]:
        """Labels found in fewer than two groups: no group split can show them on both sides."""
        return [name for name, stats in self.labels.items() if stats.groups < 2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "boxes": self.boxes,
            "negatives": self.negatives,
            "groups": self.groups,
            "labels": {
                name: {"boxes": s.boxes, "images": s.images, "groups": s.groups}
                for name, s in self.labels.items()
            },
            "labels_without_boxes": self.labels_without_boxes,
            "unsplittable_labels": self.unsplittable_labels,
        }


def statistics(dataset: Dataset) -> DatasetStatistics:
    """Per-label box, image and group counts; negatives are images without boxes.

    Every label of ``dataset.labels`` is listed (with zeros when it has no boxes).
    """
    boxes: Counter[str] = Counter()
    images: Counter[str] = Counter()
    groups: dict[str, set[GroupKey]] = {label: set() for label in dataset.labels}
    all_groups: set[GroupKey] = set()
    negatives = 0
    for image in dataset.images:
        key = group_key(image)
        all_groups.add(key)
        if not image.boxes:
            negatives += 1
        seen = set()
        for box in image.boxes:
            boxes[box.label] += 1
            seen.add(box.label)
        for label in seen:
            images[label] += 1
            groups.setdefault(label, set()).add(key)
    names = list(dict.fromkeys([*dataset.labels, *boxes]))
    return DatasetStatistics(
        images=len(dataset.images),
        boxes=sum(boxes.values()),
        negatives=negatives,
        groups=len(all_groups),
        labels={
            name: LabelStatistics(name, boxes[name], images[name], len(groups.get(name, ())))
            for name in names
        },
    )


class _Splitter:
    def __init__(self, dataset: Dataset, test_fraction: float) -> None:
        self.members: dict[GroupKey, list[int]] = {}
        self.labels_of: dict[GroupKey, set[str]] = {}
        for index, image in enumerate(dataset.images):
            key = group_key(image)
            self.members.setdefault(key, []).append(index)
            self.labels_of.setdefault(key, set()).update(box.label for box in image.boxes)
        self.keys = sorted(self.members)  # independent of image order
        self.size = {key: len(indexes) for key, indexes in self.members.items()}
        self.groups_with: dict[str, list[GroupKey]] = {}
        for key in self.keys:
            for label in sorted(self.labels_of[key]):
                self.groups_with.setdefault(label, []).append(key)
        self.splittable = {label for label, keys in self.groups_with.items() if len(keys) >= 2}
        total = len(dataset.images)
        self.target = min(max(round(total * test_fraction), 1), total - 1)

    def attempt(self, order: list[GroupKey]) -> tuple[tuple[int, int], set[GroupKey]]:
        position = {key: index for index, key in enumerate(order)}
        test: set[GroupKey] = set()
        test_images = 0
        in_test: Counter[str] = Counter()
        in_train: Counter[str] = Counter(
            {label: len(keys) for label, keys in self.groups_with.items()}
        )

        def can_move(key: GroupKey) -> bool:
            if len(test) + 1 >= len(self.keys):
                return False  # the training side keeps at least one group
            return all(
                in_train[label] > 1 for label in self.labels_of[key] if label in self.splittable
            )

        def move(key: GroupKey) -> None:
            nonlocal test_images
            test.add(key)
            test_images += self.size[key]
            for label in self.labels_of[key]:
                in_test[label] += 1
                in_train[label] -= 1

        # 1. One group per label into the test side, rarest labels first, smallest groups.
        for label in sorted(self.splittable, key=lambda name: (len(self.groups_with[name]), name)):
            if in_test[label]:
                continue
            candidates = [
                key for key in self.groups_with[label] if key not in test and can_move(key)
            ]
            if candidates:
                move(min(candidates, key=lambda key: (self.size[key], position[key])))
        # 2. Fill up to the target size in shuffled order, never overshooting by more than
        #    the gap, and never taking a label's last training group.
        for key in order:
            if test_images >= self.target:
                break
            if key in test:
                continue
            after = test_images + self.size[key]
            if after > self.target and after - self.target >= self.target - test_images:
                continue
            if can_move(key):
                move(key)
        if not test:
            move(min(order, key=lambda key: (self.size[key], position[key])))
        missing = sum((in_test[label] == 0) + (in_train[label] == 0) for label in self.splittable)

        # 3. Hill-climb: flip single groups between the sides while that improves
        #    (labels missing from a side, distance from the target size).
        def flipped(key: GroupKey) -> tuple[int, int]:
            sign = -1 if key in test else 1
            change = 0
            for label in self.labels_of[key]:
                if label not in self.splittable:
                    continue
                before = (in_test[label] == 0) + (in_train[label] == 0)
                after = (in_test[label] + sign == 0) + (in_train[label] - sign == 0)
                change += after - before
            return missing + change, abs(test_images + sign * self.size[key] - self.target)

        score = (missing, abs(test_images - self.target))
        for _ in range(_MAX_PASSES):
            improved = False
            for key in order:
                if (key in test and len(test) == 1) or (
                    key not in test and len(test) + 1 == len(self.keys)
                ):
                    continue  # both sides keep at least one group
                candidate = flipped(key)
                if candidate < score:
                    if key in test:
                        test.discard(key)
                        test_images -= self.size[key]
                        for label in self.labels_of[key]:
                            in_test[label] -= 1
                            in_train[label] += 1
                    else:
                        move(key)
                    missing = candidate[0]
                    score = candidate
                    improved = True
            if not improved:
                break
        return score, test


def split_by_group(
    dataset: Dataset, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """``(train, test)`` with about ``test_fraction`` of the images in test.

    Images sharing a ``group`` (frames of one video) land on the same side; images
    without a group are their own group. The split is deterministic for a ``seed``
    (and independent of image order). It tries to put at least one box of every label
    on each side, which is possible for labels found in two or more groups; labels in
    a single group stay on one side (see :attr:`DatasetStatistics.unsplittable_labels`),
    which is reported, not refused. Label coverage comes before the exact size.
    Both sides keep the full label list and the images' original order.

    Raises :class:`DatasetError` when there are fewer than two groups.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    splitter = _Splitter(dataset, test_fraction)
    if len(splitter.keys) < 2:
        what = "no images" if not dataset.images else "all images belong to one group"
        raise DatasetError(
            f"cannot split: {what}; a test set needs images from another group (video)",
            field="images",
        )
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    best: tuple[tuple[int, int], set[GroupKey]] | None = None
    for _ in range(_ATTEMPTS):
        order = list(splitter.keys)
        rng.shuffle(order)
        result = splitter.attempt(order)
        if best is None or result[0] < best[0]:
            best = result
        if best[0] == (0, 0):
            break
    assert best is not None
    test_keys = best[1]
    train_images = [image for image in dataset.images if group_key(image) not in test_keys]
    test_images = [image for image in dataset.images if group_key(image) in test_keys]
    return (
        Dataset(labels=list(dataset.labels), images=train_images),
        Dataset(labels=list(dataset.labels), images=test_images),
    )
