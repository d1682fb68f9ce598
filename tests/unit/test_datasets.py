"""Dataset formats: Ground Truth (image and video), COCO, YOLO; validation; splits."""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brandlens_core.datasets import (
    MAX_BOXES_PER_IMAGE,
    MAX_LABELS,
    Box,
    Dataset,
    DatasetError,
    ImageAnnotations,
    in_blocks,
    in_position_blocks,
    is_block,
    media_count,
    read_coco,
    read_data_yaml,
    read_ground_truth,
    read_ground_truth_video,
    read_yolo,
    split_by_group,
    statistics,
    validate_dataset,
    write_coco,
    write_data_yaml,
    write_ground_truth,
    write_yolo,
    yolo_label_name,
)
from brandlens_core.datasets.split import group_key

FIXTURES = Path(__file__).parent.parent / "events" / "datasets"
DOC_LINE = (FIXTURES / "rekognition-echo.manifest").read_text().splitlines()[0]
FORMATS_LINE = {
    "source-ref": "s3://bucket/frames/job1/000012.jpg",
    "bounding-box": {
        "image_size": [{"width": 1280, "height": 720, "depth": 3}],
        "annotations": [{"class_id": 0, "left": 86, "top": 65, "width": 220, "height": 334}],
    },
    "bounding-box-metadata": {
        "objects": [{"confidence": 1}],
        "class-map": {"0": "acme"},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2026-11-21T10:00:00",
        "job-name": "labeling-job/acme-1",
    },
}


def gt_line(
    *,
    ref: str = "s3://bucket/frames/job1/000012.jpg",
    annotations: list[dict[str, Any]] | None = None,
    class_map: dict[str, str] | None = None,
    size: tuple[int, int] = (1280, 720),
    attribute: str = "bounding-box",
) -> dict[str, Any]:
    """A Ground Truth line (as a dict) to tweak in tests."""
    annotations = (
        [{"class_id": 0, "left": 86, "top": 65, "width": 220, "height": 334}]
        if annotations is None
        else annotations
    )
    return {
        "source-ref": ref,
        attribute: {
            "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
            "annotations": annotations,
        },
        f"{attribute}-metadata": {
            "objects": [{"confidence": 1} for _ in annotations],
            "class-map": {"0": "acme"} if class_map is None else class_map,
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-11-21T10:00:00",
            "job-name": "labeling-job/acme-1",
        },
    }


def manifest(*lines: dict[str, Any] | str) -> str:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"


def gt_error(text: str, **kwargs: Any) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        read_ground_truth(text, **kwargs)
    return info.value


def image(
    ref: str, *boxes: Box, size: tuple[int, int] = (1280, 720), group: str | None = None
) -> ImageAnnotations:
    return ImageAnnotations(ref, size[0], size[1], list(boxes), group)


def random_dataset(seed: int, *, max_groups: int = 10, max_labels: int = 6) -> Dataset:
    """Videos (groups) of frames plus ungrouped stills; float boxes; some negatives."""
    rng = random.Random(seed)
    labels = [f"brand-{index}" for index in range(rng.randint(1, max_labels))]
    images: list[ImageAnnotations] = []
    for video in range(rng.randint(1, max_groups)):
        width, height = rng.choice([(1280, 720), (640, 480), (1920, 1080), (333, 517)])
        for frame in range(rng.randint(1, 8)):
            images.append(
                _random_image(
                    rng,
                    f"s3://bucket/frames/v{video}/{frame:06d}.jpg",
                    width,
                    height,
                    labels,
                    f"s3://bucket/media/v{video}.mp4",
                )
            )
    for still in range(rng.randint(0, 6)):
        images.append(
            _random_image(rng, f"s3://bucket/stills/img-{still}.png", 800, 600, labels, None)
        )
    rng.shuffle(images)
    return Dataset(labels=labels, images=images)


def _random_image(
    rng: random.Random, ref: str, width: int, height: int, labels: list[str], group: str | None
) -> ImageAnnotations:
    boxes = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5])):
        box_width = rng.uniform(1, width / 2)
        box_height = rng.uniform(1, height / 2)
        left = rng.uniform(0, width - box_width)
        top = rng.uniform(0, height - box_height)
        if rng.random() < 0.3:  # some integral boxes, as Ground Truth writes them
            left, top = float(int(left)), float(int(top))
            box_width, box_height = float(int(box_width) or 1), float(int(box_height) or 1)
        boxes.append(Box(rng.choice(labels), left, top, box_width, box_height))
    return ImageAnnotations(ref, width, height, boxes, group)


def assert_same_boxes(
    a: Dataset, b: Dataset, *, tolerance: float, normalised: bool = False
) -> None:
    """Same labels, images and boxes; ``tolerance`` in pixels, or in image fractions."""
    assert a.labels == b.labels
    by_ref = {im.source_ref: im for im in b.images}
    assert [im.source_ref for im in a.images] == [im.source_ref for im in b.images]
    for im in a.images:
        other = by_ref[im.source_ref]
        assert (im.width, im.height) == (other.width, other.height)
        assert len(im.boxes) == len(other.boxes)
        for mine, theirs in zip(im.boxes, other.boxes, strict=True):
            assert mine.label == theirs.label
            for name, size in (
                ("left", im.width),
                ("top", im.height),
                ("width", im.width),
                ("height", im.height),
            ):
                scale = size if normalised else 1
                assert getattr(mine, name) == pytest.approx(
                    getattr(theirs, name), abs=tolerance * scale
                ), name


# -- Ground Truth bounding-box manifests ------------------------------------------------------


def test_reads_the_rekognition_documentation_manifest_with_a_negative() -> None:
    dataset = read_ground_truth((FIXTURES / "rekognition-echo.manifest").read_text())
    assert dataset.labels == ["Echo", "Echo Dot", "acme"]
    echo, frame, negative = dataset.images
    assert (echo.source_ref, echo.width, echo.height) == (
        "s3://bucket/images/IMG_1186.png",
        640,
        480,
    )
    assert echo.boxes == [Box("Echo Dot", 399, 251, 155, 101), Box("Echo", 86, 65, 220, 334)]
    assert frame.boxes == [Box("acme", 86, 65, 220, 334)]
    assert negative.is_negative
    assert negative.source_ref.endswith("000013.jpg")
    assert all(im.group is None for im in dataset.images)


def test_writes_lines_exactly_in_the_documented_shape() -> None:
    dataset = Dataset(
        ["acme"],
        [image("s3://bucket/frames/job1/000012.jpg", Box("acme", 86.0, 65.0, 220.0, 334.0))],
    )
    text = write_ground_truth(
        dataset, job_name="labeling-job/acme-1", creation_date="2026-11-21T10:00:00"
    )
    assert text.endswith("\n")
    assert text.count("\n") == 1
    line = json.loads(text)
    assert line == FORMATS_LINE
    assert list(line) == list(FORMATS_LINE)
    assert list(line["bounding-box-metadata"]) == list(FORMATS_LINE["bounding-box-metadata"])
    assert '"left": 86,' in text  # integral floats are written as JSON integers
    assert read_ground_truth(text) == dataset


def test_writes_negatives_floats_class_maps_and_a_utc_date() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    dataset = Dataset(
        ["acme", "globex"],
        [
            image("s3://b/a.jpg", Box("globex", 0.5, 1.25, 10.125, 20)),
            image("s3://b/neg.jpg"),
        ],
    )
    moment = datetime(2026, 11, 21, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    first, second = (
        json.loads(x)
        for x in write_ground_truth(dataset, "logos", creation_date=moment).splitlines()
    )
    assert first["logos"]["annotations"] == [
        {"class_id": 1, "left": 0.5, "top": 1.25, "width": 10.125, "height": 20}
    ]
    assert first["logos-metadata"]["class-map"] == {"1": "globex"}  # the classes it uses
    assert first["logos-metadata"]["creation-date"] == "2026-11-21T10:00:00"
    assert second["logos"]["annotations"] == []
    assert second["logos-metadata"]["objects"] == []
    assert second["logos-metadata"]["class-map"] == {}
    assert read_ground_truth(write_ground_truth(dataset)).labels == ["globex"]
    full = [json.loads(x) for x in write_ground_truth(dataset, class_map="all").splitlines()]
    assert [line["bounding-box-metadata"]["class-map"] for line in full] == [
        {"0": "acme", "1": "globex"}
    ] * 2
    assert read_ground_truth(write_ground_truth(dataset, class_map="all")) == dataset
    default = json.loads(write_ground_truth(dataset).splitlines()[0])
    written = datetime.fromisoformat(default["bounding-box-metadata"]["creation-date"]).replace(
        tzinfo=UTC
    )
    assert abs(written - datetime.now(UTC)) < timedelta(minutes=1)
    no_human = json.loads(write_ground_truth(dataset, human_annotated=False).splitlines()[0])
    assert no_human["bounding-box-metadata"]["human-annotated"] == "no"


def test_the_label_attribute_is_found_from_its_metadata_type() -> None:
    line = gt_line(attribute="acme-logos")
    line["unrelated"] = {"x": 1}
    line["unrelated-metadata"] = {"type": "groundtruth/image-classification"}
    dataset = read_ground_truth(manifest(line))
    assert dataset.images[0].boxes == [Box("acme", 86, 65, 220, 334)]
    assert read_ground_truth(manifest(line), attribute="acme-logos") == dataset


def test_a_line_with_two_detection_attributes_needs_attribute() -> None:
    line = gt_line()
    line["bounding-box-adjusted"] = line["bounding-box"]
    line["bounding-box-adjusted-metadata"] = line["bounding-box-metadata"]
    error = gt_error(manifest(line))
    assert str(error) == (
        "line 1: several label attributes of type groundtruth/object-detection "
        "(bounding-box, bounding-box-adjusted); pass attribute= to choose one"
    )
    assert read_ground_truth(manifest(line), attribute="bounding-box-adjusted").images


def test_labels_merge_by_name_across_per_line_class_maps() -> None:
    one = gt_line(ref="s3://b/1.jpg", class_map={"0": "acme", "1": "globex"})
    two = gt_line(
        ref="s3://b/2.jpg",
        class_map={"0": "initech", "4": "acme"},
        annotations=[{"class_id": 4, "left": 1, "top": 2, "width": 3, "height": 4}],
    )
    dataset = read_ground_truth(manifest(one, two))
    assert dataset.labels == ["acme", "globex", "initech"]
    assert dataset.images[1].boxes == [Box("acme", 1, 2, 3, 4)]


def test_ground_truth_round_trip_keeps_groups_when_asked() -> None:
    for seed in range(20):
        dataset = random_dataset(seed)
        text = write_ground_truth(dataset, group_field="brandlens-group", class_map="all")
        again = read_ground_truth(text, group_field="brandlens-group")
        assert again == dataset
        without = read_ground_truth(write_ground_truth(dataset))
        assert all(im.group is None for im in without.images)
        used = {box.label for im in dataset.images for box in im.boxes}
        assert without.labels == [label for label in dataset.labels if label in used]
        assert_same_boxes(without, Dataset(without.labels, dataset.images), tolerance=0)


def test_blank_lines_crlf_and_a_bom_are_accepted() -> None:
    text = "\ufeff" + json.dumps(gt_line()) + "\r\n\r\n   \n"
    assert len(read_ground_truth(text).images) == 1
    assert len(read_ground_truth(text.encode("utf-8")).images) == 1


def test_a_raw_line_separator_inside_a_label_does_not_split_the_line() -> None:
    line = json.dumps(gt_line(class_map={"0": "ac\u2028me"}), ensure_ascii=False)
    assert read_ground_truth(line).labels == ["ac\u2028me"]


# -- validation: every error path, with its message -------------------------------------------


def test_the_error_names_line_field_and_reason() -> None:
    lines = [gt_line(ref=f"s3://b/{i}.jpg") for i in range(12)]
    lines[11] = gt_line(
        ref="s3://b/11.jpg",
        annotations=[{"class_id": 0, "left": 10, "top": 10, "width": 5, "height": 5}] * 3
        + [{"class_id": 0, "left": 1200, "top": 65, "width": 100, "height": 50}],
    )
    error = gt_error(manifest(*lines))
    assert str(error) == (
        "line 12, field 'bounding-box.annotations[3].left': box extends past the image width "
        "(1280): left 1200 + width 100 = 1300"
    )
    assert (error.line, error.field, error.message.split(":")[0]) == (
        12,
        "bounding-box.annotations[3].left",
        "box extends past the image width (1280)",
    )
    assert error.errors[0].line == 12
    assert len(error.errors) == 1


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda line: line.pop("source-ref"), "line 1, field 'source-ref': missing required field"),
        (
            lambda line: line.update({"source-ref": "frames/000012.jpg"}),
            "line 1, field 'source-ref': must be an s3://bucket/key URI of an image, got "
            "'frames/000012.jpg'",
        ),
        (
            lambda line: line.update({"source-ref": "s3://bucket-only"}),
            "line 1, field 'source-ref': must be an s3://bucket/key URI of an image, got "
            "'s3://bucket-only'",
        ),
        (
            lambda line: line.update({"source-ref": ""}),
            "line 1, field 'source-ref': must be a non-empty image reference, got an empty string",
        ),
        (
            lambda line: line.pop("bounding-box-metadata"),
            "line 1: no label attribute: no key has a '<attribute>-metadata' sibling of type "
            "groundtruth/object-detection",
        ),
        (
            lambda line: line["bounding-box-metadata"].pop("class-map"),
            "line 1, field 'bounding-box-metadata.class-map': missing required field",
        ),
        (
            lambda line: line["bounding-box-metadata"].update({"class-map": ["acme"]}),
            "line 1, field 'bounding-box-metadata.class-map': must be an object, got a list",
        ),
        (
            lambda line: line["bounding-box-metadata"].update({"class-map": {"zero": "acme"}}),
            "line 1, field 'bounding-box-metadata.class-map': class-map keys must be non-negative "
            "integers, got 'zero'",
        ),
        (
            lambda line: line["bounding-box-metadata"].update({"class-map": {"0": ""}}),
            "line 1, field 'bounding-box-metadata.class-map.0': class 0 must map to a non-empty "
            "label name, got a string",
        ),
        (
            lambda line: line["bounding-box"].pop("image_size"),
            "line 1, field 'bounding-box.image_size': missing required field",
        ),
        (
            lambda line: line["bounding-box"].update({"image_size": []}),
            "line 1, field 'bounding-box.image_size': must be a list holding one "
            "{width, height, depth} object",
        ),
        (
            lambda line: line["bounding-box"]["image_size"][0].pop("height"),
            "line 1, field 'bounding-box.image_size[0].height': missing required field",
        ),
        (
            lambda line: line["bounding-box"]["image_size"][0].update({"width": 0}),
            "line 1, field 'bounding-box.image_size[0].width': must be a positive integer, got 0",
        ),
        (
            lambda line: line["bounding-box"]["image_size"][0].update({"height": -720}),
            "line 1, field 'bounding-box.image_size[0].height': must be a positive integer, got "
            "-720",
        ),
        (
            lambda line: line["bounding-box"]["image_size"][0].update({"width": 1280.5}),
            "line 1, field 'bounding-box.image_size[0].width': must be a positive integer, got "
            "a number",
        ),
        (
            lambda line: line["bounding-box"].pop("annotations"),
            "line 1, field 'bounding-box.annotations': missing required field",
        ),
        (
            lambda line: line["bounding-box"].update({"annotations": {}}),
            "line 1, field 'bounding-box.annotations': must be a list, got an object",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].pop("top"),
            "line 1, field 'bounding-box.annotations[0].top': missing required field",
        ),
        (
            lambda line: line["bounding-box"]["annotations"].append("box"),
            "line 1, field 'bounding-box.annotations[1]': must be an object, got a string",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"class_id": 3}),
            "line 1, field 'bounding-box.annotations[0].class_id': class id 3 is not in the "
            "class-map (ids: 0)",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"class_id": "0"}),
            "line 1, field 'bounding-box.annotations[0].class_id': must be a non-negative integer "
            "class id, got '0'",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"left": "86"}),
            "line 1, field 'bounding-box.annotations[0].left': must be a number, got a string",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"top": True}),
            "line 1, field 'bounding-box.annotations[0].top': must be a number, got a boolean",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"width": 0}),
            "line 1, field 'bounding-box.annotations[0].width': box width must be positive, got 0",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"height": -3.5}),
            "line 1, field 'bounding-box.annotations[0].height': box height must be positive, "
            "got -3.5",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"left": -2}),
            "line 1, field 'bounding-box.annotations[0].left': box starts left of the image: "
            "left -2 < 0",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"top": -1.5}),
            "line 1, field 'bounding-box.annotations[0].top': box starts above the image: top "
            "-1.5 < 0",
        ),
        (
            lambda line: line["bounding-box"]["annotations"][0].update({"top": 400}),
            "line 1, field 'bounding-box.annotations[0].top': box extends past the image height "
            "(720): top 400 + height 334 = 734",
        ),
        (
            lambda line: line["bounding-box-metadata"].update(
                {"type": "groundtruth/image-classification"}
            ),
            "line 1: no label attribute: no key has a '<attribute>-metadata' sibling of type "
            "groundtruth/object-detection",
        ),
        (
            lambda line: line["bounding-box-metadata"].update({"objects": []}),
            "line 1, field 'bounding-box-metadata.objects': must list one {confidence} object per "
            "annotation: 1 annotations, objects is 0",
        ),
        (
            lambda line: line["bounding-box"]["annotations"].extend(
                [{"class_id": 0, "left": 1, "top": 1, "width": 1, "height": 1}]
                * MAX_BOXES_PER_IMAGE
            ),
            "line 1, field 'bounding-box.annotations': the image has 51 boxes; at most 50 are "
            "allowed",
        ),
    ],
)
def test_each_ground_truth_problem_is_reported_with_its_location(
    mutate: Callable[[dict[str, Any]], object], expected: str
) -> None:
    line = gt_line()
    mutate(line)
    if len(line.get("bounding-box", {}).get("annotations", [])) > 1:
        line["bounding-box-metadata"]["objects"] = [{"confidence": 1}] * len(
            line["bounding-box"]["annotations"]
        )
    assert str(gt_error(manifest(line))) == expected


def test_explicit_attribute_problems() -> None:
    line = gt_line()
    line["bounding-box-metadata"]["type"] = "groundtruth/image-classification"
    assert str(gt_error(manifest(line), attribute="bounding-box")) == (
        "line 1, field 'bounding-box-metadata.type': expected 'groundtruth/object-detection', "
        "got 'groundtruth/image-classification'"
    )
    del line["bounding-box-metadata"]["type"]
    assert str(gt_error(manifest(line), attribute="bounding-box")) == (
        "line 1, field 'bounding-box-metadata.type': missing required field"
    )
    error = gt_error(manifest(gt_line()), attribute="logos")
    assert [e.describe() for e in error.errors] == [
        "line 1, field 'logos': missing required field (the label attribute)",
        "line 1, field 'logos-metadata': missing required field",
    ]
    broken = gt_line()
    broken["bounding-box"] = [1]
    assert str(gt_error(manifest(broken), attribute="bounding-box")) == (
        "line 1, field 'bounding-box': must be an object, got a list"
    )


def test_malformed_json_and_non_objects_name_their_line() -> None:
    error = gt_error(manifest(gt_line(), '{"source-ref": "s3://b/x.jpg",', "[1, 2]", "null"))
    assert [e.describe() for e in error.errors] == [
        "line 2: malformed JSON: Expecting property name enclosed in double quotes (column 31)",
        "line 3: expected a JSON object, got a list",
        "line 4: expected a JSON object, got null",
    ]
    assert str(error) == "; ".join(e.describe() for e in error.errors)


def test_non_finite_numbers_are_refused() -> None:
    text = (
        json.dumps(gt_line())
        .replace('"left": 86', '"left": NaN')
        .replace('"top": 65', '"top": Infinity')
    )
    assert [e.describe() for e in gt_error(text).errors] == [
        "line 1, field 'bounding-box.annotations[0].left': must be a finite number, got nan",
        "line 1, field 'bounding-box.annotations[0].top': must be a finite number, got inf",
    ]


def test_not_utf8_bytes() -> None:
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_ground_truth(b"\xff\xfe{}")


def test_duplicate_images_are_refused() -> None:
    error = gt_error(manifest(gt_line(), gt_line(ref="s3://b/other.jpg"), gt_line()))
    assert str(error) == (
        "line 3, field 'source-ref': duplicate image 's3://bucket/frames/job1/000012.jpg' "
        "(first on line 1)"
    )


def test_source_ref_scheme_is_configurable() -> None:
    line = gt_line(ref="frames/000012.jpg")
    assert (
        read_ground_truth(manifest(line), source_ref_scheme=None).images[0].source_ref
        == "frames/000012.jpg"
    )
    https = gt_line(ref="https://host/x.jpg")
    assert read_ground_truth(manifest(https), source_ref_scheme="https").images
    with pytest.raises(DatasetError, match="must be an s3://bucket/key URI"):
        write_ground_truth(Dataset(["acme"], [image("frames/x.jpg")]))
    assert write_ground_truth(Dataset(["acme"], [image("frames/x.jpg")]), source_ref_scheme=None)


def test_label_count_limits() -> None:
    negative = gt_line(annotations=[], class_map={})
    assert str(gt_error(manifest(negative))) == "field 'labels': a dataset needs at least one label"
    many = {str(i): f"brand-{i}" for i in range(MAX_LABELS + 1)}
    assert str(gt_error(manifest(gt_line(class_map=many)))) == (
        "field 'labels': 251 labels; a dataset has at most 250"
    )
    exactly = {str(i): f"brand-{i}" for i in range(MAX_LABELS)}
    assert len(read_ground_truth(manifest(gt_line(class_map=exactly))).labels) == MAX_LABELS


def test_an_empty_manifest_is_refused() -> None:
    assert str(gt_error("\n \n")) == (
        "field 'labels': a dataset needs at least one label; the dataset has no images"
    )


def test_edge_tolerance_clamps_and_clip_clips() -> None:
    nudged = gt_line(
        annotations=[{"class_id": 0, "left": -0.75, "top": 0, "width": 1281, "height": 720.5}]
    )
    (box,) = read_ground_truth(manifest(nudged)).images[0].boxes
    assert box == Box("acme", 0, 0, 1280, 720)
    over = gt_line(
        annotations=[{"class_id": 0, "left": 1200, "top": -30, "width": 200, "height": 100}]
    )
    with pytest.raises(DatasetError, match="extends past the image width"):
        read_ground_truth(manifest(over))
    (clipped,) = read_ground_truth(manifest(over), clip=True).images[0].boxes
    assert clipped == Box("acme", 1200, 0, 80, 70)
    outside = gt_line(
        annotations=[{"class_id": 0, "left": 1300, "top": 10, "width": 20, "height": 20}]
    )
    assert str(gt_error(manifest(outside), clip=True)) == (
        "line 1, field 'bounding-box.annotations[0]': box lies outside the 1280x720 image"
    )


def test_errors_are_collected_up_to_max_errors() -> None:
    bad = [gt_line(ref=f"s3://b/{i}.jpg", size=(0, 720)) for i in range(30)]
    error = gt_error(manifest(*bad))
    assert len(error.errors) == 20
    assert error.truncated
    assert [e.line for e in error.errors] == list(range(1, 21))
    assert str(error) == (
        "line 1, field 'bounding-box.image_size[0].width': must be a positive integer, got 0; "
        "line 2, field 'bounding-box.image_size[0].width': must be a positive integer, got 0; "
        "line 3, field 'bounding-box.image_size[0].width': must be a positive integer, got 0 "
        "(and 17 more errors); stopped after 20 errors"
    )
    few = gt_error(manifest(*bad[:5]), max_errors=3)
    assert len(few.errors) == 3
    some = gt_error(manifest(*bad[:4]))
    assert not some.truncated
    assert str(some).endswith("(and 1 more error)")
    with pytest.raises(ValueError, match="max_errors"):
        read_ground_truth(manifest(gt_line()), max_errors=0)


def test_write_refuses_bad_attributes_and_invalid_datasets() -> None:
    dataset = Dataset(["acme"], [image("s3://b/x.jpg")])
    for attribute in ("", "source-ref", "boxes-metadata", "boxes-ref"):
        with pytest.raises(DatasetError, match="label attribute name") as info:
            write_ground_truth(dataset, attribute)
        assert info.value.field == "attribute"
    with pytest.raises(DatasetError, match="collides"):
        write_ground_truth(dataset, group_field="source-ref")
    bad = Dataset(
        ["acme", "acme"],
        [
            image("s3://b/x.jpg", Box("initech", 1, 1, 1, 1), Box("acme", 1270, 1, 20, 1)),
            image("s3://b/x.jpg", size=(0, 720)),
        ],
    )
    with pytest.raises(DatasetError) as info:
        write_ground_truth(bad)
    assert [e.describe() for e in info.value.errors] == [
        "field 'labels[1]': duplicate label 'acme'",
        "s3://b/x.jpg: field 'images[0].boxes[0].label': label 'initech' is not one of the "
        "dataset's labels",
        "s3://b/x.jpg: field 'images[0].boxes[1].left': box extends past the image width (1280): "
        "left 1270 + width 20 = 1290",
        "s3://b/x.jpg: field 'images[1].source_ref': duplicate image 's3://b/x.jpg' (also "
        "images[0])",
        "s3://b/x.jpg: field 'images[1].width': must be a positive integer, got 0",
    ]


def test_validate_dataset_clamps_clips_and_checks_everything() -> None:
    dataset = Dataset(
        ["acme"],
        [image("s3://b/x.jpg", Box("acme", -0.5, 0, 10, 10), Box("acme", 1275, 700, 10, 30))],
    )
    with pytest.raises(DatasetError, match="extends past the image height"):
        validate_dataset(dataset)
    clipped = validate_dataset(dataset, clip=True)
    assert clipped.images[0].boxes == [Box("acme", 0, 0, 9.5, 10), Box("acme", 1275, 700, 5, 20)]
    assert dataset.images[0].boxes[0].left == -0.5  # the input is not modified
    with pytest.raises(DatasetError, match="the dataset has no images"):
        validate_dataset(Dataset(["acme"], []))
    too_many = Dataset(["acme"], [image("s3://b/x.jpg", *[Box("acme", 1, 1, 1, 1)] * 51)])
    with pytest.raises(DatasetError, match="51 boxes; at most 50"):
        validate_dataset(too_many)
    with pytest.raises(DatasetError, match="non-empty string"):
        validate_dataset(Dataset([" "], [image("s3://b/x.jpg")]))
    with pytest.raises(DatasetError, match="not valid UTF-8"):
        validate_dataset(Dataset(["\udcff"], [image("s3://b/x.jpg")]))
    with pytest.raises(DatasetError, match="group must be a string"):
        validate_dataset(Dataset(["a"], [ImageAnnotations("s3://b/x.jpg", 1, 1, [], 3)]))  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="must be a finite number"):
        validate_dataset(Dataset(["a"], [image("s3://b/x.jpg", Box("a", float("nan"), 1, 1, 1))]))


def test_dataset_error_pickles_and_renders_without_location() -> None:
    error = DatasetError("bad", 3, "x.y", source="s3://b/k.jpg")
    assert str(error) == "s3://b/k.jpg: line 3, field 'x.y': bad"
    assert str(DatasetError("plain")) == "plain"
    assert str(DatasetError("only source", source="data.yaml")) == "data.yaml: only source"
    again = pickle.loads(
        pickle.dumps(
            gt_error(manifest(*[gt_line(ref=f"s3://b/{i}.jpg", size=(0, 1)) for i in range(4)]))
        )
    )
    assert isinstance(again, DatasetError)
    assert len(again.errors) == 4
    assert again.line == 1
    assert isinstance(again, ValueError)


# -- Ground Truth video frame object detection ------------------------------------------------


def video_inputs() -> tuple[str, str, str]:
    return (
        (FIXTURES / "video-manifest-line.json").read_text(),
        (FIXTURES / "video-SeqLabel.json").read_text(),
        (FIXTURES / "video-sequence.json").read_text(),
    )


def test_reads_video_frames_in_frame_order_with_the_sequence_as_group() -> None:
    line, seq_label, sequence = video_inputs()
    frames = read_ground_truth_video(line, seq_label, sequence, default_size=(640, 480))
    assert [f.source_ref for f in frames] == [
        "s3://bucket/frames/job1/000000.jpg",
        "s3://bucket/frames/job1/000001.jpg",
    ]
    assert {f.group for f in frames} == {"s3://bucket/frames/job1/seq-1.json"}
    assert frames[0].boxes == [Box("globex", 339, 152, 53, 41), Box("acme", 183, 148, 37, 24)]
    assert frames[1].boxes == [Box("acme", 177, 141, 37, 24)]
    assert all((f.width, f.height) == (640, 480) for f in frames)
    # Without the sequence file the prefix is the folder of the manifest line's source-ref.
    assert [
        f.source_ref for f in read_ground_truth_video(line, seq_label, default_size=(640, 480))
    ] == [f.source_ref for f in frames]


def test_video_frame_sizes_come_from_the_first_source_that_has_them() -> None:
    line, seq_label, sequence = video_inputs()
    frames = read_ground_truth_video(
        json.loads(line),
        json.loads(seq_label),
        sequence,
        frame_sizes={"s3://bucket/frames/job1/000001.jpg": (1280, 720), "000000.jpg": (800, 600)},
        default_size=(1, 1),
    )
    assert [(f.width, f.height) for f in frames] == [(800, 600), (1280, 720)]
    sized = json.loads(sequence) | {"width": 1920, "height": 1080}
    sized["frames"][1]["width"], sized["frames"][1]["height"] = 1000, 500
    frames = read_ground_truth_video(line, seq_label, json.dumps(sized), default_size=(1, 1))
    assert [(f.width, f.height) for f in frames] == [(1920, 1080), (1000, 500)]
    with pytest.raises(DatasetError) as info:
        read_ground_truth_video(line, seq_label, sequence)
    assert str(info.value).startswith(
        "field 'frame_sizes': no image size for frame '000001.jpg': Ground Truth does not record "
        "it; pass frame_sizes or default_size"
    )


def test_video_unlabeled_frames_can_become_negatives() -> None:
    line, seq_label, sequence = video_inputs()
    frames = read_ground_truth_video(
        line, seq_label, sequence, default_size=(640, 480), include_unlabeled_frames=True
    )
    assert [f.source_ref.rsplit("/", 1)[1] for f in frames] == [
        "000000.jpg",
        "000001.jpg",
        "000002.jpg",
    ]
    assert frames[2].is_negative
    assert frames[2].group == "s3://bucket/frames/job1/seq-1.json"
    with pytest.raises(DatasetError, match="needs the sequence file"):
        read_ground_truth_video(
            line, seq_label, default_size=(640, 480), include_unlabeled_frames=True
        )
    empty = {"detection-annotations": [{"frame-no": "2", "frame": "000002.jpg", "annotations": []}]}
    (negative,) = read_ground_truth_video(line, empty, sequence, default_size=(640, 480))
    assert negative.is_negative


def test_video_object_tracking_output_is_read_too() -> None:
    line, _seq_label, _sequence = video_inputs()
    tracking_line = line.replace("video-object-detection", "video-object-tracking")
    seq_label = {
        "tracking-annotations": [
            {
                "frame-no": 0,
                "frame": "000000.jpg",
                "annotations": [
                    {
                        "height": 36,
                        "width": 46,
                        "top": 178,
                        "left": 315,
                        "class-id": 0,
                        "object-id": "480dc450",
                        "object-name": "acme:1",
                    }
                ],
            }
        ]
    }
    (frame,) = read_ground_truth_video(tracking_line, seq_label, default_size=(640, 480))
    assert frame.boxes == [Box("acme", 315, 178, 46, 36)]


def test_video_frames_feed_a_dataset() -> None:
    line, seq_label, sequence = video_inputs()
    frames = read_ground_truth_video(line, seq_label, sequence, default_size=(640, 480))
    dataset = Dataset.from_images(frames)
    assert dataset.labels == ["globex", "acme"]
    assert read_ground_truth(write_ground_truth(dataset)).images[0].boxes == frames[0].boxes


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m, s, q: s["detection-annotations"][0]["annotations"][0].update(
                {"class-id": "7"}
            ),
            "line 5, field 'SeqLabel.detection-annotations[0].annotations[0].class-id': class id 7 "
            "is not in the class-map (ids: 0, 1)",
        ),
        (
            lambda m, s, q: s["detection-annotations"][0].update({"frame": "000009.jpg"}),
            "line 5, field 'SeqLabel.detection-annotations[0].frame': frame '000009.jpg' is not in "
            "the sequence file",
        ),
        (
            lambda m, s, q: s["detection-annotations"][1].update({"frame": "000001.jpg"}),
            "line 5, field 'SeqLabel.detection-annotations[1].frame': frame '000001.jpg' is "
            "listed twice",
        ),
        (
            lambda m, s, q: s["detection-annotations"][0].update({"frame-no": "one"}),
            "line 5, field 'SeqLabel.detection-annotations[0].frame-no': must be a non-negative "
            "integer (or its decimal string)",
        ),
        (
            lambda m, s, q: s["detection-annotations"][0]["annotations"][0].update({"left": 630}),
            "line 5, field 'SeqLabel.detection-annotations[0].annotations[0].left': box extends "
            "past "
            "the image width (640): left 630 + width 37 = 667",
        ),
        (
            lambda m, s, q: s["detection-annotations"][0]["annotations"][0].pop("height"),
            "line 5, field 'SeqLabel.detection-annotations[0].annotations[0].height': missing "
            "required field",
        ),
        (
            lambda m, s, q: s.pop("detection-annotations"),
            "line 5, field 'SeqLabel.detection-annotations': missing required field",
        ),
        (
            lambda m, s, q: m["acme-ref-metadata"].pop("class-map"),
            "line 5, field 'acme-ref-metadata.class-map': missing required field",
        ),
        (
            lambda m, s, q: m["acme-ref-metadata"].update({"type": "groundtruth/object-detection"}),
            "line 5: no label attribute: no key has a '<attribute>-metadata' sibling of type "
            "groundtruth/video-object-detection or groundtruth/video-object-tracking",
        ),
        (
            lambda m, s, q: m.update({"source-ref": "seq-1.json"}),
            "line 5, field 'source-ref': must be an s3://bucket/key URI of an image, got "
            "'seq-1.json'",
        ),
        (
            lambda m, s, q: q.pop("prefix"),
            "line 5, field 'sequence.prefix': missing required field",
        ),
        (
            lambda m, s, q: s["detection-annotations"][0].update(
                {
                    "annotations": [{"height": 1, "width": 1, "top": 1, "left": 1, "class-id": "0"}]
                    * 51
                }
            ),
            "line 5, field 'SeqLabel.detection-annotations[0].annotations': the image has 51 "
            "boxes; "
            "at most 50 are allowed",
        ),
    ],
)
def test_each_video_problem_is_reported_with_its_location(
    change: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], object], expected: str
) -> None:
    line, seq_label, sequence = (json.loads(text) for text in video_inputs())
    change(line, seq_label, sequence)
    with pytest.raises(DatasetError) as info:
        read_ground_truth_video(line, seq_label, sequence, default_size=(640, 480), line=5)
    assert str(info.value) == expected


def test_video_argument_and_json_problems() -> None:
    line, seq_label, sequence = video_inputs()
    with pytest.raises(DatasetError) as info:
        read_ground_truth_video(
            line, "{", sequence, frame_sizes={"a.jpg": (0, 3)}, default_size=(640, 480)
        )
    assert (
        str(info.value)
        == "SeqLabel: malformed JSON: Expecting property name enclosed in double quotes (line "
        "1, column 2)"
    )
    with pytest.raises(DatasetError) as info:
        read_ground_truth_video(line, seq_label, sequence, frame_sizes={"a.jpg": (0, 3)})
    assert (
        str(info.value)
        == "field \"frame_sizes['a.jpg']\": must be a (width, height) pair of positive integers"
    )
    with pytest.raises(DatasetError, match="field 'default_size'"):
        read_ground_truth_video(line, seq_label, sequence, default_size=(640, True))  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="manifest line: expected a JSON object, got a list"):
        read_ground_truth_video("[]", seq_label, default_size=(640, 480))


# -- COCO ----------------------------------------------------------------------------------------


def test_reads_coco_with_arbitrary_category_ids_and_an_image_root() -> None:
    dataset = read_coco(
        (FIXTURES / "coco-acme.json").read_text(), image_root="s3://bucket/frames/job1"
    )
    assert dataset.labels == ["acme", "globex"]
    first, second = dataset.images
    assert first.source_ref == "s3://bucket/frames/job1/000012.jpg"
    assert first.group is None
    assert first.boxes == [Box("acme", 86, 65, 220, 334), Box("globex", 600.5, 300.25, 40.5, 20.75)]
    assert second.is_negative
    assert second.group == "s3://bucket/media/clip.mp4"
    assert (
        read_coco(json.loads((FIXTURES / "coco-acme.json").read_text())).images[0].source_ref
        == "000012.jpg"
    )


def test_writes_coco() -> None:
    dataset = read_coco(
        (FIXTURES / "coco-acme.json").read_bytes(), image_root="s3://bucket/frames/job1/"
    )
    coco = write_coco(dataset, image_root="s3://bucket/frames/job1")
    assert coco["categories"] == [{"id": 1, "name": "acme"}, {"id": 2, "name": "globex"}]
    assert coco["images"] == [
        {"id": 1, "file_name": "000012.jpg", "width": 1280, "height": 720},
        {
            "id": 2,
            "file_name": "000013.jpg",
            "width": 1280,
            "height": 720,
            "group": "s3://bucket/media/clip.mp4",
        },
    ]
    assert coco["annotations"][0] == {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "bbox": [86, 65, 220, 334],
        "area": 73480,
        "iscrowd": 0,
    }
    assert coco["annotations"][1]["bbox"] == [600.5, 300.25, 40.5, 20.75]
    assert read_coco(json.dumps(coco), image_root="s3://bucket/frames/job1") == dataset
    assert write_coco(dataset)["images"][0]["file_name"] == "s3://bucket/frames/job1/000012.jpg"
    with pytest.raises(DatasetError) as info:
        write_coco(dataset, image_root="s3://other")
    assert str(info.value).startswith(
        "s3://bucket/frames/job1/000012.jpg: field 'images[0].source_ref': image is not under "
        "image_root 's3://other/'"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.pop("images"), "field 'images': missing required field"),
        (
            lambda c: c.update({"annotations": {}}),
            "field 'annotations': must be a list, got an object",
        ),
        (
            lambda c: c["annotations"][0].update({"image_id": 99}),
            "field 'annotations[0].image_id': image_id 99 is not the id of an image",
        ),
        (
            lambda c: c["annotations"][0].update({"category_id": 4}),
            "field 'annotations[0].category_id': category_id 4 is not the id of a category",
        ),
        (
            lambda c: c["annotations"][0].update({"bbox": [1, 2, 3]}),
            "field 'annotations[0].bbox': must be a list [x, y, width, height]",
        ),
        (
            lambda c: c["annotations"][0].update({"bbox": [1, 2, "3", 4]}),
            "000012.jpg: field 'annotations[0].bbox[2]': must be a number, got a string",
        ),
        (
            lambda c: c["annotations"][0].update({"bbox": [1200, 2, 300, 4]}),
            "000012.jpg: field 'annotations[0].bbox[0]': box extends past the image width (1280): "
            "left 1200 + width 300 = 1500",
        ),
        (
            lambda c: c["annotations"][0].update({"bbox": [1, 2, 3, 0]}),
            "000012.jpg: field 'annotations[0].bbox[3]': box height must be positive, got 0",
        ),
        (
            lambda c: c["categories"].append({"id": 3, "name": "initech"}),
            "field 'categories[2].id': duplicate category id 3",
        ),
        (
            lambda c: c["categories"].append({"id": 4, "name": "acme"}),
            "field 'categories[2].name': duplicate category name 'acme'",
        ),
        (
            lambda c: c["categories"][0].update({"id": None}),
            "field 'categories[0].id': must be an integer id; field 'annotations[0].category_id': "
            "category_id 3 is not the id of a category",
        ),
        (
            lambda c: c["categories"][0].pop("name"),
            "field 'categories[0].name': must be a non-empty label name",
        ),
        (
            lambda c: c.update({"categories": [], "annotations": []}),
            "field 'labels': a dataset needs at least one label",
        ),
        (lambda c: c["images"][1].update({"id": 1}), "field 'images[1].id': duplicate image id 1"),
        (
            lambda c: c["images"][1].update({"file_name": "000012.jpg"}),
            "field 'images[1].file_name': duplicate image '000012.jpg' (also images[0])",
        ),
        (
            lambda c: c["images"][0].pop("file_name"),
            "field 'images[0].file_name': must be a non-empty file name",
        ),
        (
            lambda c: c["images"][0].update({"height": 0}),
            "000012.jpg: field 'images[0].height': must be a positive integer, got 0",
        ),
        (
            lambda c: c["images"][1].update({"group": 5}),
            "000013.jpg: field 'images[1].group': must be a non-empty string",
        ),
        (lambda c: c["images"].append(3), "field 'images[2]': must be an object, got a number"),
        (
            lambda c: c["annotations"].extend(
                [{"image_id": 1, "category_id": 3, "bbox": [1, 1, 1, 1]}] * MAX_BOXES_PER_IMAGE
            ),
            "000012.jpg: field 'images[0]': the image has 52 boxes; at most 50 are allowed",
        ),
    ],
)
def test_each_coco_problem_is_reported_with_its_location(
    change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    coco = json.loads((FIXTURES / "coco-acme.json").read_text())
    change(coco)
    with pytest.raises(DatasetError) as info:
        read_coco(coco)
    assert str(info.value) == expected


def test_coco_json_problems() -> None:
    with pytest.raises(DatasetError) as info:
        read_coco('{"images": [\n  {"id": 1,}]}')
    assert (
        str(info.value)
        == "line 2: malformed JSON: Expecting property name enclosed in double quotes (column 12)"
    )
    with pytest.raises(DatasetError, match="expected a JSON object, got a list"):
        read_coco("[]")
    with pytest.raises(DatasetError, match="must be an s3://bucket/key URI"):
        read_coco((FIXTURES / "coco-acme.json").read_text(), source_ref_scheme="s3")


# -- YOLO ----------------------------------------------------------------------------------------


def test_reads_the_formats_sample_line() -> None:
    dataset = read_yolo(
        {
            "s3://bucket/frames/job1/000012.jpg": ("0 0.1531 0.3222 0.1719 0.4639\n", 1280, 720),
            "s3://bucket/frames/job1/000013.jpg": ("", 1280, 720),
        },
        "names: [acme]\n",
    )
    assert dataset.labels == ["acme"]
    (box,) = dataset.images[0].boxes
    assert box.label == "acme"
    for got, want in zip(
        (box.left, box.top, box.width, box.height), (86, 65, 220, 334), strict=True
    ):
        assert got == pytest.approx(want, abs=0.5)
    assert dataset.images[1].is_negative


def test_writes_yolo_files_and_data_yaml() -> None:
    dataset = Dataset(
        ["acme", "Echo Dot"],
        [
            image("s3://bucket/frames/job1/000012.jpg", Box("Echo Dot", 86, 65, 220, 334)),
            image("s3://bucket/frames/job1/000013.png"),
        ],
    )
    files, data_yaml = write_yolo(dataset)
    assert files == {"000012.txt": "1 0.153125 0.322222 0.171875 0.463889\n", "000013.txt": ""}
    assert data_yaml == 'nc: 2\nnames:\n  - "acme"\n  - "Echo Dot"\n'
    assert read_data_yaml(data_yaml) == ["acme", "Echo Dot"]
    files, _ = write_yolo(
        dataset, precision=3, yaml_extra={"path": "/data", "train": "images/train"}
    )
    assert files["000012.txt"] == "1 0.153 0.322 0.172 0.464\n"
    assert write_yolo(dataset, yaml_extra={"path": "/data"})[1].startswith('path: "/data"\nnc: 2\n')


def test_yolo_label_names_must_not_collide() -> None:
    dataset = Dataset(
        ["acme"],
        [
            image("s3://b/frames/v1/000000.jpg", group="v1"),
            image("s3://b/frames/v2/000000.jpg", group="v2"),
        ],
    )
    with pytest.raises(DatasetError) as info:
        write_yolo(dataset)
    assert str(info.value) == (
        "s3://b/frames/v2/000000.jpg: field 'images[1].source_ref': label file '000000.txt' would "
        "also be written for images[0] ('s3://b/frames/v1/000000.jpg'); pass name_for to tell "
        "them apart"
    )
    files, _ = write_yolo(
        dataset, name_for=lambda im: f"{im.group}_{yolo_label_name(im.source_ref)}"
    )
    assert sorted(files) == ["v1_000000.txt", "v2_000000.txt"]
    assert yolo_label_name("s3://b/a.b/frame.0001.jpeg") == "frame.0001.txt"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "0 0.5 0.5 0.1\n",
            "s3://b/x.jpg: line 1: expected 5 values 'class x_center y_center width height', got 4",
        ),
        (
            "\n0 0.5 0.5 0.1 0.1 0.9\n",
            "s3://b/x.jpg: line 2: expected 5 values 'class x_center y_center width height', got 6",
        ),
        (
            "2 0.5 0.5 0.1 0.1\n",
            "s3://b/x.jpg: line 1, field 'class': class '2' is not an index into data.yaml "
            "names (0-1)",
        ),
        (
            "a 0.5 0.5 0.1 0.1\n",
            "s3://b/x.jpg: line 1, field 'class': class 'a' is not an index into data.yaml "
            "names (0-1)",
        ),
        (
            "0 0.5 half 0.1 0.1\n",
            "s3://b/x.jpg: line 1, field 'y_center': must be a finite number, got 'half'",
        ),
        (
            "0 0.5 0.5 nan 0.1\n",
            "s3://b/x.jpg: line 1, field 'width': must be a finite number, got 'nan'",
        ),
        (
            "0 0.5 0.5 0 0.1\n",
            "s3://b/x.jpg: line 1, field 'width': box width must be positive, got 0",
        ),
        (
            "0 0.95 0.5 0.2 0.1\n",
            "s3://b/x.jpg: line 1, field 'x_center': box extends past the image width (100): "
            "left 85 + width 20 = 105",
        ),
        (
            "0 0.5 0.01 0.2 0.1\n",
            "s3://b/x.jpg: line 1, field 'y_center': box starts above the image: top -4 < 0",
        ),
        (
            "0 0.5 0.5 0.1 0.1\n" * 51,
            "s3://b/x.jpg: field 'boxes': the image has 51 boxes; at most 50 are allowed",
        ),
    ],
)
def test_each_yolo_problem_is_reported_with_its_location(text: str, expected: str) -> None:
    with pytest.raises(DatasetError) as info:
        read_yolo({"s3://b/x.jpg": (text, 100, 100)}, "names: [acme, globex]")
    assert str(info.value) == expected


def test_yolo_input_problems() -> None:
    yaml = "names: [acme]"
    with pytest.raises(DatasetError, match="image width must be a positive integer, got 0"):
        read_yolo({"s3://b/x.jpg": ("", 0, 10)}, yaml)
    with pytest.raises(DatasetError, match=r"expected \(txt text, width, height\)"):
        read_yolo({"s3://b/x.jpg": ("", 10)}, yaml)  # type: ignore[dict-item]
    with pytest.raises(DatasetError, match="the label text must be a string"):
        read_yolo({"s3://b/x.jpg": (b"", 10, 10)}, yaml)  # type: ignore[dict-item]
    with pytest.raises(DatasetError, match="the dataset has no images"):
        read_yolo({}, yaml)
    with pytest.raises(DatasetError, match="must be an s3://"):
        read_yolo({"x.jpg": ("", 10, 10)}, yaml, source_ref_scheme="s3")
    clipped = read_yolo({"s3://b/x.jpg": ("0 0.95 0.5 0.2 0.1", 100, 100)}, yaml, clip=True)
    assert clipped.images[0].boxes[0].right == pytest.approx(100)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("names: [acme, globex]", ["acme", "globex"]),
        ("names: ['acme', \"glo bex\", it''s]\nnc: 3", ["acme", "glo bex", "it''s"]),
        ("names: ['it''s', \"say \\\"hi\\\"\"]", ["it's", 'say "hi"']),
        ("nc: 2\nnames:\n- acme\n- globex\n", ["acme", "globex"]),
        (
            "path: ../datasets\ntrain: images/train  # training images\nnames:\n  - acme # "
            "first\n  - 'a # b'\n",
            ["acme", "a # b"],
        ),
        ("names:\n  0: acme\n  1: globex\n", ["acme", "globex"]),
        ("names:\n  1: globex\n  0: acme\n", ["acme", "globex"]),
        ("names: {0: acme, 1: 'glo: bex'}", ["acme", "glo: bex"]),
        ("names: [acme,\n  globex,\n]\n", ["acme", "globex"]),
        ("# a comment\ndownload: |\n  import x\n  - not a name\nnames: [acme]\nnc: 1\n", ["acme"]),
        ("names:\r\n  - café\r\n", ["café"]),
    ],
)
def test_reads_the_data_yaml_forms(text: str, names: list[str]) -> None:
    assert read_data_yaml(text) == names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train: x\n", "data.yaml: field 'names': missing required field"),
        (
            "names: [a, b]\nnc: 3\n",
            "data.yaml: line 2, field 'nc': nc is 3 but names lists 2 labels",
        ),
        (
            "names: [a]\nnc: two\n",
            "data.yaml: line 2, field 'nc': nc must be a non-negative integer, got 'two'",
        ),
        (
            "names: acme\n",
            "data.yaml: line 1, field 'names': names must be a list or an index mapping",
        ),
        (
            "names: [a, b\n",
            "data.yaml: line 1, field 'names': unterminated flow collection (missing ']')",
        ),
        ("names: [a, ~]\n", "data.yaml: line 1, field 'names': a name is empty (null)"),
        ("names: [a, a]\n", "data.yaml: line 1, field 'names[1]': duplicate label 'a'"),
        ("names: []\n", "data.yaml: line 1, field 'names': a dataset needs at least one label"),
        (
            "names:\n  0: a\n  2: b\n",
            "data.yaml: line 1, field 'names': names mapping keys must be 0..n-1, each once",
        ),
        (
            "names:\n  - a\n  x: b\n",
            "data.yaml: line 3, field 'names': names mapping keys must be class indexes, got 'x'",
        ),
        (
            "names:\n  - a\n  b\n",
            "data.yaml: line 3, field 'names': expected '- name' or 'index: name', got 'b'",
        ),
        (
            'names: ["a]\n',
            "data.yaml: line 1, field 'names': unterminated double-quoted string '\"a'",
        ),
        (
            "names: ['a]\n",
            "data.yaml: line 1, field 'names': unterminated single-quoted string \"'a\"",
        ),
        ('names: ["\\q"]\n', "data.yaml: line 1, field 'names': unsupported escape in '\"\\\\q\"'"),
        ("names: [[a]]\n", "data.yaml: line 1, field 'names': unsupported YAML value '[a]'"),
        ("just text\n", "data.yaml: line 1: expected 'key: value'"),
    ],
)
def test_data_yaml_problems(text: str, expected: str) -> None:
    with pytest.raises(DatasetError) as info:
        read_data_yaml(text)
    assert str(info.value) == expected


def test_written_data_yaml_is_real_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    names = [
        "acme",
        "Echo Dot",
        "a: b",
        "#hash",
        'quo"te',
        "it's",
        "yes",
        "null",
        "1",
        "ünï",
        "tab\there",
        "- dash",
        "[x]",
    ]
    text = write_data_yaml(names, {"path": "/data/x y", "val": "images/val"})
    assert yaml.safe_load(text) == {
        "path": "/data/x y",
        "val": "images/val",
        "nc": len(names),
        "names": names,
    }
    assert read_data_yaml(text) == names


# -- round trips across formats ------------------------------------------------------------------


def yolo_name(im: ImageAnnotations) -> str:
    return im.source_ref.removeprefix("s3://").replace("/", "__").rsplit(".", 1)[0] + ".txt"


def test_ground_truth_to_coco_to_yolo_to_ground_truth_preserves_boxes() -> None:
    for seed in range(40):
        original = read_ground_truth(
            write_ground_truth(random_dataset(seed), group_field="g", class_map="all"),
            group_field="g",
        )
        coco = json.loads(json.dumps(write_coco(original, image_root="s3://bucket")))
        from_coco = read_coco(coco, image_root="s3://bucket")
        assert from_coco == original  # COCO keeps everything, groups included
        files, data_yaml = write_yolo(from_coco, name_for=yolo_name)
        from_yolo = read_yolo(
            {im.source_ref: (files[yolo_name(im)], im.width, im.height) for im in from_coco.images},
            data_yaml,
        )
        back = read_ground_truth(write_ground_truth(from_yolo, class_map="all"))
        # YOLO's six decimals: within 1e-6 of the image size (1e-3 px up to 1000 px).
        assert_same_boxes(back, original, tolerance=1.5e-6, normalised=True)
        exact = read_ground_truth(write_ground_truth(from_coco, class_map="all"))
        assert_same_boxes(exact, original, tolerance=1e-6)
        precise, _ = write_yolo(from_coco, name_for=yolo_name, precision=10)
        high = read_yolo(
            {
                im.source_ref: (precise[yolo_name(im)], im.width, im.height)
                for im in from_coco.images
            },
            data_yaml,
        )
        assert_same_boxes(high, original, tolerance=1e-6)


def test_yolo_normalised_values_stay_within_the_unit_range() -> None:
    dataset = Dataset(
        ["a"],
        [image("s3://b/x.jpg", Box("a", 0, 0, 1280, 720), Box("a", 1279.9999999, 0, 0.0000001, 1))],
    )
    files, _ = write_yolo(dataset)
    for line in files["x.txt"].splitlines():
        values = [float(v) for v in line.split()[1:]]
        assert all(0 <= v <= 1 for v in values)
    assert files["x.txt"].splitlines()[0] == "0 0.500000 0.500000 1.000000 1.000000"


# -- statistics and splits -----------------------------------------------------------------------


def test_statistics_counts_boxes_images_groups_and_negatives() -> None:
    dataset = Dataset(
        ["acme", "globex", "initech"],
        [
            image("s3://b/v1/0.jpg", Box("acme", 1, 1, 1, 1), Box("acme", 2, 2, 1, 1), group="v1"),
            image("s3://b/v1/1.jpg", Box("globex", 1, 1, 1, 1), group="v1"),
            image("s3://b/v2/0.jpg", Box("acme", 1, 1, 1, 1), group="v2"),
            image("s3://b/still.jpg"),
            image("s3://b/still2.jpg"),
        ],
    )
    stats = statistics(dataset)
    assert (stats.images, stats.boxes, stats.negatives, stats.groups) == (5, 4, 2, 4)
    assert stats.labels["acme"].boxes == 3
    assert stats.labels["acme"].images == 2
    assert stats.labels["acme"].groups == 2
    assert stats.labels["globex"].groups == 1
    assert stats.labels_without_boxes == ["initech"]
    assert stats.unsplittable_labels == ["globex", "initech"]
    assert stats.to_dict()["labels"]["initech"] == {"boxes": 0, "images": 0, "groups": 0}
    assert json.loads(json.dumps(stats.to_dict()))["negatives"] == 2


def missing_sides(dataset: Dataset, test_groups: set[tuple[str, str]]) -> int:
    """How often a label found in 2+ groups is missing from one side of the split."""
    groups_with: dict[str, set[tuple[str, str]]] = {}
    for im in dataset.images:
        for box in im.boxes:
            groups_with.setdefault(box.label, set()).add(group_key(im))
    return sum(
        (not keys & test_groups) + (keys <= test_groups)
        for keys in groups_with.values()
        if len(keys) >= 2
    )


def fewest_missing_sides(dataset: Dataset) -> int:
    """The best any group split can do (every proper non-empty subset of groups as test)."""
    keys = sorted({group_key(im) for im in dataset.images})
    index = {key: i for i, key in enumerate(keys)}
    masks: dict[str, int] = {}
    for im in dataset.images:
        for box in im.boxes:
            masks[box.label] = masks.get(box.label, 0) | 1 << index[group_key(im)]
    masks = {label: mask for label, mask in masks.items() if mask.bit_count() >= 2}
    return min(
        sum((subset & mask == 0) + (subset & mask == mask) for mask in masks.values())
        for subset in range(1, (1 << len(keys)) - 1)
    )


def test_split_covers_every_label_when_some_split_can() -> None:
    perfect = 0
    for seed in range(150):
        dataset = random_dataset(seed, max_groups=8)
        keys = {group_key(im) for im in dataset.images}
        if not 2 <= len(keys) <= 12 or fewest_missing_sides(dataset):
            continue
        perfect += 1
        train, test = split_by_group(dataset, 0.2, seed=seed)
        splittable = set(dataset.labels) - set(statistics(dataset).unsplittable_labels)
        for side in (train, test):
            assert splittable <= {label for label, s in statistics(side).labels.items() if s.boxes}
    assert perfect > 50


def test_split_never_puts_a_group_on_both_sides() -> None:
    for seed in range(150):
        dataset = random_dataset(seed, max_groups=12)
        if len({group_key(im) for im in dataset.images}) < 2:
            with pytest.raises(DatasetError, match="one group"):
                split_by_group(dataset)
            continue
        fraction = random.Random(seed).choice([0.1, 0.2, 0.3, 0.5])
        train, test = split_by_group(dataset, test_fraction=fraction, seed=seed)
        assert train.labels == test.labels == dataset.labels
        assert train.images
        assert test.images
        train_groups = {group_key(im) for im in train.images}
        test_groups = {group_key(im) for im in test.images}
        assert not train_groups & test_groups
        assert sorted(im.source_ref for im in train.images + test.images) == sorted(
            im.source_ref for im in dataset.images
        )
        # Original order is kept on each side.
        order = {im.source_ref: i for i, im in enumerate(dataset.images)}
        assert [order[im.source_ref] for im in test.images] == sorted(
            order[im.source_ref] for im in test.images
        )
        # Labels are on both sides as often as any split by group allows.
        if len(train_groups | test_groups) <= 12:
            assert missing_sides(dataset, test_groups) == fewest_missing_sides(dataset)
        # Deterministic, and independent of image order.
        assert split_by_group(dataset, fraction, seed) == (train, test)
        shuffled = Dataset(dataset.labels, list(reversed(dataset.images)))
        _again_train, again_test = split_by_group(shuffled, fraction, seed)
        assert {im.source_ref for im in again_test.images} == {im.source_ref for im in test.images}


def test_split_sizes_follow_the_fraction_when_groups_allow() -> None:
    stills = Dataset(["a"], [image(f"s3://b/{i}.jpg", Box("a", 1, 1, 5, 5)) for i in range(100)])
    train, test = split_by_group(stills, 0.2, seed=3)
    assert (len(train.images), len(test.images)) == (80, 20)
    other_seed = split_by_group(stills, 0.2, seed=4)[1]
    assert {im.source_ref for im in other_seed.images} != {im.source_ref for im in test.images}
    videos = Dataset(
        ["a"],
        [
            image(f"s3://b/v{v}/{f}.jpg", Box("a", 1, 1, 5, 5), group=f"v{v}")
            for v in range(10)
            for f in range(10)
        ],
    )
    train, test = split_by_group(videos, 0.3)
    assert len(test.images) == 30
    assert len({im.group for im in test.images}) == 3


def test_split_puts_a_rare_label_on_both_sides() -> None:
    images = [
        image(f"s3://b/v{v}/{f}.jpg", Box("common", 1, 1, 5, 5), group=f"v{v}")
        for v in range(20)
        for f in range(5)
    ]
    images[7].boxes.append(Box("rare", 1, 1, 5, 5))  # group v1
    images[93].boxes.append(Box("rare", 1, 1, 5, 5))  # group v18
    dataset = Dataset(["common", "rare", "never"], images)
    for seed in range(10):
        train, test = split_by_group(dataset, 0.1, seed=seed)
        assert statistics(train).labels["rare"].boxes == 1
        assert statistics(test).labels["rare"].boxes == 1
        assert statistics(test).labels["never"].boxes == 0  # reported, not refused


def test_split_handles_negatives_and_single_group_labels() -> None:
    dataset = Dataset(
        ["a"],
        [
            image("s3://b/v1/0.jpg", Box("a", 1, 1, 1, 1), group="v1"),
            image("s3://b/neg1.jpg"),
            image("s3://b/neg2.jpg"),
        ],
    )
    train, test = split_by_group(dataset, 0.5)
    assert train.images
    assert test.images
    assert statistics(dataset).unsplittable_labels == ["a"]
    only_negatives = Dataset(["a"], [image("s3://b/1.jpg"), image("s3://b/2.jpg")])
    assert [len(side.images) for side in split_by_group(only_negatives, 0.9)] == [1, 1]


def test_split_refuses_what_cannot_be_split() -> None:
    one_video = Dataset(["a"], [image(f"s3://b/{i}.jpg", group="v") for i in range(5)])
    with pytest.raises(DatasetError) as info:
        split_by_group(one_video)
    assert str(info.value) == (
        "field 'images': cannot split: all images belong to one group; a test set needs images "
        "from another group (video)"
    )
    with pytest.raises(DatasetError, match="no images"):
        split_by_group(Dataset(["a"], []))
    for fraction in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            split_by_group(random_dataset(1), fraction)


def test_a_group_named_like_an_image_is_not_confused_with_it() -> None:
    dataset = Dataset(["a"], [image("s3://b/x.jpg"), image("s3://b/y.jpg", group="s3://b/x.jpg")])
    train, test = split_by_group(dataset, 0.5)
    assert len(train.images) == len(test.images) == 1


# -- time blocks: few videos are split inside each video ------------------------------------


def frames_of(videos: int, frames: int) -> Dataset:
    return Dataset(
        ["a"],
        [
            image(f"s3://b/frames/v{v}/{f:06d}.jpg", Box("a", 1, 1, 5, 5), group=f"s3://m/v{v}.mp4")
            for v in range(videos)
            for f in range(frames)
        ],
    )


def test_blocks_narrow_groups_without_changing_the_dataset() -> None:
    dataset = frames_of(2, 6)
    dataset.images.append(image("s3://b/still.jpg"))  # ungrouped: its own group, untouched
    blocked = in_blocks(dataset, lambda im: int(im.source_ref[-10:-4]) // 3)
    assert [im.group for im in blocked.images[:6]] == ["s3://m/v0.mp4#block-00000"] * 3 + [
        "s3://m/v0.mp4#block-00001"
    ] * 3
    assert blocked.images[-1].group is None
    assert {im.group for im in dataset.images[:12]} == {"s3://m/v0.mp4", "s3://m/v1.mp4"}
    assert media_count(dataset) == media_count(blocked) == 3  # two videos and a still
    assert all(is_block(im.group) for im in blocked.images[:12])
    assert not is_block(dataset.images[0].group)
    # blocking blocks again replaces the block, it does not nest
    again = in_blocks(blocked, lambda im: 7)
    assert again.images[0].group == "s3://m/v0.mp4#block-00007"


def test_position_blocks_cut_each_group_into_runs_of_neighbours() -> None:
    dataset = frames_of(2, 25)
    blocked = in_position_blocks(dataset, 5)
    for v in range(2):
        groups = [
            im.group for im in blocked.images if im.source_ref.startswith(f"s3://b/frames/v{v}/")
        ]
        assert groups == [f"s3://m/v{v}.mp4#block-{b:05d}" for b in range(5) for _ in range(5)]


@pytest.mark.parametrize("videos", [1, 2, 3, 10])
def test_few_videos_split_by_blocks_and_every_side_gets_images(videos: int) -> None:
    """1, 2, 3 or 10 videos: a split exists, about the fraction asked, no block on both sides."""
    dataset = frames_of(videos, 40)
    if media_count(dataset) < 5:
        dataset = in_position_blocks(dataset)
    train, test = split_by_group(dataset, 0.2)
    assert 0.1 <= len(test.images) / len(dataset.images) <= 0.3
    assert {im.group for im in train.images}.isdisjoint({im.group for im in test.images})
