"""Issue 17: training works with any number of source videos, 1 and up.

The labeler's dataset split and the model-server's validation split inside its
training part, chained as in a real training: with 2 videos the labeler used to put
one whole video on each side, and the model-server then had a single group to take a
validation set from and failed ("cannot split: all images belong to one group").
"""

from __future__ import annotations

import numpy as np
import pytest

from brandlens_core.datasets import Box, Dataset, ImageAnnotations
from brandlens_labeler import dataset as datasets
from brandlens_labeler.settings import LabelerSettings
from brandlens_model_server.detector.fit import Example
from brandlens_model_server.detector.train import _validation_split, auto_test_split

SECONDS, FPS = 60, 2  # a minute of training video sampled every 500 ms


def videos(count: int) -> tuple[list[ImageAnnotations], dict[str, float]]:
    images, stamps = [], {}
    for v in range(count):
        for f in range(SECONDS * FPS):
            ref = f"s3://artifacts/frames/job-{v}/{f:06d}.jpg"
            labels = ["acme", "globex"] if (f // 7 + v) % 2 else ["acme"]
            boxes = [Box(label, 10 + 40 * i, 10, 30, 30) for i, label in enumerate(labels)]
            images.append(ImageAnnotations(ref, 1280, 720, boxes, group=f"s3://media/v{v}.mp4"))
            stamps[ref] = f * 1000 / FPS
    return images, stamps


def time_blocks(images: list[ImageAnnotations], stamps: dict[str, float]) -> set[tuple[str, int]]:
    """(video, 10 s block) of each frame: what must not be on both sides of a split."""
    return {(i.source_ref.split("/")[-2], int(stamps[i.source_ref] // 10_000)) for i in images}


def examples_of(dataset: Dataset) -> list[Example]:
    pixel = np.zeros((1, 1, 3), np.uint8)
    return [Example(image=pixel, boxes=[], group=i.group or "") for i in dataset.images]


@pytest.mark.parametrize("count", [1, 2, 3, 10])
def test_any_number_of_videos_trains_with_a_validation_set(count: int) -> None:
    settings = LabelerSettings()  # the defaults a new user runs with
    images, stamps = videos(count)
    built = datasets.build(
        images,
        stamps,
        ["acme", "globex"],
        dataset_id="ds-1",
        min_boxes_per_label=settings.min_boxes_per_label,
        test_fraction=settings.test_fraction,
        split_block_seconds=settings.split_block_seconds,
        split_min_videos=settings.split_min_videos,
    )
    train, test = built.train, built.test
    total = len(train.images) + len(test.images)
    assert total == len(images)
    assert 0.1 <= len(test.images) / total <= 0.3, built.statistics["split_unit"]
    assert time_blocks(train.images, stamps).isdisjoint(time_blocks(test.images, stamps))
    assert built.statistics["test_labels_missing"] == []

    # the model-server's validation split of the training part (train.py)
    examples = examples_of(train)
    fit_part, val = _validation_split(train, examples, seed=0)
    assert val, "no validation set: early stopping and the threshold have nothing to go on"
    assert len(fit_part) + len(val) == len(train.images)
    assert 0.05 <= len(val) / len(train.images) <= 0.3
    by_example = {id(e): i for e, i in zip(examples, train.images, strict=True)}
    fit_images = [by_example[id(e)] for e in fit_part]
    val_images = [by_example[id(e)] for e in val]
    assert time_blocks(fit_images, stamps).isdisjoint(time_blocks(val_images, stamps))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_training_sets_of_whole_videos_are_validated_on_runs_of_frames(count: int) -> None:
    """A manifest whose training part is one to three whole videos (datasets built before
    the labeler split few videos by blocks, or anyone's manifest) still gets a validation
    set, of runs of consecutive frames."""
    images, _ = videos(count)
    train = Dataset(["acme", "globex"], images)
    examples = examples_of(train)
    fit_part, val = _validation_split(train, examples, seed=0)
    assert val
    assert 0.05 <= len(val) / len(images) <= 0.3
    by_example = {id(e): i for e, i in zip(examples, images, strict=True)}
    val_refs = sorted(by_example[id(e)].source_ref for e in val)
    fit_refs = {by_example[id(e)].source_ref for e in fit_part}
    assert not fit_refs & set(val_refs)
    # runs of neighbours: a held-out frame's neighbours are held out, except at a run's ends
    runs = sum(
        1
        for ref in val_refs
        if ref.replace(f"{int(ref[-10:-4]):06d}", f"{int(ref[-10:-4]) - 1:06d}") not in val_refs
    )
    assert runs <= 3 * count


@pytest.mark.parametrize("count", [1, 2, 3])
def test_an_auto_created_test_set_of_few_videos_is_runs_of_frames(count: int) -> None:
    """CreateProjectVersion with TestingData AutoCreate over one video's manifest failed
    the same way ("all images belong to one group")."""
    images, stamps = videos(count)
    train, test = auto_test_split(Dataset(["acme", "globex"], images), 0.2, seed=0)
    assert len(train.images) + len(test.images) == len(images)
    assert 0.1 <= len(test.images) / len(images) <= 0.3
    assert {i.source_ref for i in train.images}.isdisjoint(i.source_ref for i in test.images)
    # each video is cut in 10 runs: held-out runs are whole (6 s of 60 s here)
    held_out = {
        (i.source_ref.split("/")[-2], int(stamps[i.source_ref] // 6_000)) for i in test.images
    }
    kept = {(i.source_ref.split("/")[-2], int(stamps[i.source_ref] // 6_000)) for i in train.images}
    assert held_out.isdisjoint(kept)
