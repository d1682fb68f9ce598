"""The labeler's pure parts: imports, Label Studio and Ground Truth conversions, datasets."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore.stub import Stubber

from brandlens_core.datasets import Box, ImageAnnotations
from brandlens_core.projects import GroundTruthOptions, Project
from brandlens_labeler import dataset as datasets
from brandlens_labeler import ground_truth as gt
from brandlens_labeler import imports
from brandlens_labeler import label_studio as ls
from brandlens_labeler.frames import Frame, LabelingError

BUCKET = "stack-artifacts"


def frame(
    index: int,
    *,
    media: str = "training/p/clip.mp4",
    source_frame: int | None = None,
    width: int = 1280,
    height: int = 720,
    source: tuple[int, int] = (1920, 1080),
    timestamp_ms: float | None = None,
    job: str = "job-1",
) -> Frame:
    return Frame.model_validate(
        {
            "job_id": job,
            "bucket": BUCKET,
            "key": f"frames/{job}/{index:06d}.jpg",
            "index": index,
            "timestamp_ms": index * 500.0 if timestamp_ms is None else timestamp_ms,
            "width": width,
            "height": height,
            "source": {"bucket": "stack-media", "key": media},
            "source_frame": index * 15 if source_frame is None else source_frame,
            "source_width": source[0],
            "source_height": source[1],
        }
    )


def coco(images: list[tuple[str, int, int]], boxes: list[tuple[int, int, list[float]]]) -> bytes:
    return json.dumps(
        {
            "images": [
                {"id": i + 1, "file_name": name, "width": w, "height": h}
                for i, (name, w, h) in enumerate(images)
            ],
            "annotations": [
                {"id": n + 1, "image_id": image, "category_id": cat, "bbox": bbox}
                for n, (image, cat, bbox) in enumerate(boxes)
            ],
            "categories": [{"id": 3, "name": "acme"}, {"id": 7, "name": "globex"}],
        }
    ).encode()


# -- imports: COCO -------------------------------------------------------------------------------


def test_coco_for_a_video_matches_frames_by_number_and_scales_boxes() -> None:
    frames = [frame(0), frame(1), frame(2)]  # source frames 0, 15, 30
    data = coco(
        [
            ("frame_000000.jpg", 1920, 1080),
            ("frame_000015.jpg", 1920, 1080),
            ("frame_000099.jpg", 1920, 1080),
        ],
        [(1, 3, [300, 150, 600, 300]), (3, 7, [0, 0, 10, 10])],
    )
    parsed = imports.parse_file("training/p/annotations/clip.json", data)
    result = imports.match([parsed], frames)
    assert [i.source_ref for i in result.images] == [frames[0].uri, frames[1].uri]
    (box,) = result.images[0].boxes
    # 1920x1080 -> 1280x720: two thirds
    assert (box.label, box.left, box.top, box.width, box.height) == ("acme", 200, 100, 400, 200)
    assert result.images[1].boxes == []  # listed without boxes: a negative
    assert result.unmatched_entries == 1  # frame 99 was not sampled
    assert result.unlabelled_frames == 1  # frame 30 has no entry: unknown, left out
    assert result.media_without_annotations == []
    assert result.images[0].group == frames[0].media_uri


def test_coco_collection_matches_images_by_name() -> None:
    shelf = frame(0, media="training/p/shop/shelf.jpg", job="job-a", source=(1280, 720))
    other = frame(0, media="training/p/other.png", job="job-b", source=(1280, 720))
    data = coco(
        [("images/shelf.jpg", 1280, 720), ("unrelated.jpg", 640, 480)], [(1, 3, [10, 10, 50, 50])]
    )
    result = imports.match(
        [imports.parse_file("training/p/annotations/all.json", data)], [shelf, other]
    )
    assert [i.source_ref for i in result.images] == [shelf.uri]
    assert result.media_without_annotations == ["other.png"]
    assert result.unmatched_entries == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (
            coco([("f_000000.jpg", 1920, 1080)], [(1, 3, [1900, 10, 100, 10])]),
            "annotations[0]",
        ),
        (coco([("f_000000.jpg", 1920, 1080)], [(1, 42, [1, 1, 5, 5])]), "category_id"),
        (coco([("f_000000.jpg", 1920, 1080)], [(9, 3, [1, 1, 5, 5])]), "image_id"),
        (b"\xff\xfe\x00garbage", "not"),
    ],
)
def test_malformed_coco_names_the_file_and_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(LabelingError) as caught:
        imports.parse_file("training/p/annotations/clip.json", body)
    text = str(caught.value)
    assert "training/p/annotations/clip.json" in text
    assert message in text


def test_annotation_on_a_differently_shaped_image_is_refused() -> None:
    data = coco([("frame_000000.jpg", 1080, 1920)], [(1, 3, [1, 1, 5, 5])])
    parsed = imports.parse_file("training/p/annotations/clip.json", data)
    with pytest.raises(LabelingError, match="declared 1080x1920"):
        imports.match([parsed], [frame(0)])


def test_video_entries_without_frame_numbers_are_refused() -> None:
    data = coco([("first.jpg", 1920, 1080)], [])
    parsed = imports.parse_file("training/p/annotations/clip.json", data)
    with pytest.raises(LabelingError, match="name frames by their number"):
        imports.match([parsed], [frame(0), frame(1)])


# -- imports: YOLO --------------------------------------------------------------------------------


def yolo_zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_yolo_zip_for_a_video() -> None:
    data = yolo_zip(
        {
            "data.yaml": "names: [acme, globex]\n",
            "labels/frame_000015.txt": "1 0.5 0.5 0.25 0.5\n",
            "labels/frame_000030.txt": "",
        }
    )
    parsed = imports.parse_file("training/p/annotations/clip.zip", data)
    assert parsed.labels == ["acme", "globex"]
    frames = [frame(0), frame(1), frame(2)]
    result = imports.match([parsed], frames)
    assert [i.source_ref for i in result.images] == [frames[1].uri, frames[2].uri]
    (box,) = result.images[0].boxes
    assert (box.label, box.left, box.top, box.width, box.height) == ("globex", 480, 180, 320, 360)
    assert result.images[1].is_negative


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"labels/a_000001.txt": "0 0.5 0.5 0.1 0.1\n"}, "data.yaml"),
        ({"data.yaml": "names: [acme]\n", "l/f_1.txt": "3 0.5 0.5 0.1 0.1\n"}, "class"),
        ({"data.yaml": "names: [acme]\n", "l/f_1.txt": "0 0.5 0.5 0.1\n"}, "f_1.txt"),
        ({"data.yaml": "names: [acme]\n", "l/f_1.txt": "0 1.5 0.5 0.2 0.2\n"}, "f_1.txt"),
    ],
)
def test_malformed_yolo_names_the_problem(files: dict[str, str], message: str) -> None:
    with pytest.raises(LabelingError) as caught:
        imports.parse_file("training/p/annotations/clip.zip", yolo_zip(files))
    assert message in str(caught.value)


def test_yolo_that_is_not_a_zip() -> None:
    with pytest.raises(LabelingError, match="not a valid zip"):
        imports.parse_file("training/p/annotations/clip.zip", b"PK\x03\x04 broken")


def test_yolo_zip_bomb_is_refused_before_unpacking() -> None:
    data = yolo_zip({"data.yaml": "names: [a]\n", "big.txt": "0" * 200_000})
    with pytest.raises(LabelingError, match="unpacks to"):
        imports.parse_file("training/p/annotations/clip.zip", data, max_zip_bytes=100_000)


# -- imports: Ground Truth ------------------------------------------------------------------------


def gt_line(ref: str, boxes: list[dict[str, Any]], size: tuple[int, int] = (1920, 1080)) -> str:
    return json.dumps(
        {
            "source-ref": ref,
            "logos": {
                "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
                "annotations": boxes,
            },
            "logos-metadata": {
                "class-map": {"0": "acme"},
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
            },
        }
    )


def test_ground_truth_manifest_import() -> None:
    text = "\n".join(
        [
            gt_line(
                "s3://elsewhere/clip/000000.jpg",
                [{"class_id": 0, "left": 30, "top": 60, "width": 90, "height": 120}],
            ),
            gt_line("s3://elsewhere/clip/000015.jpg", []),
        ]
    )
    parsed = imports.parse_file("training/p/annotations/clip.manifest", text.encode())
    frames = [frame(0), frame(1)]
    result = imports.match([parsed], frames)
    assert len(result.images) == 2
    (box,) = result.images[0].boxes
    assert (box.left, box.top, box.width, box.height) == (20, 40, 60, 80)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{oops", "line 1"),
        (
            gt_line(
                "s3://b/f_1.jpg", [{"class_id": 5, "left": 1, "top": 1, "width": 2, "height": 2}]
            ),
            "class",
        ),
        (
            gt_line(
                "s3://b/f_1.jpg", [{"class_id": 0, "left": -50, "top": 1, "width": 2, "height": 2}]
            ),
            "left",
        ),
        (json.dumps({"source-ref": "s3://b/f_1.jpg"}), "line 1"),
    ],
)
def test_malformed_ground_truth_names_the_line(text: str, message: str) -> None:
    with pytest.raises(LabelingError) as caught:
        imports.parse_file("training/p/annotations/clip.manifest", text.encode())
    assert message in str(caught.value)
    assert "clip.manifest" in str(caught.value)


def test_ground_truth_video_import_reads_seqlabel() -> None:
    line = {
        "source-ref": "s3://media/training/p/annotations/clip/seq.json",
        "logos-ref": "s3://media/training/p/annotations/clip/SeqLabel.json",
        "logos-ref-metadata": {
            "class-map": {"0": "acme"},
            "type": "groundtruth/video-object-detection",
            "human-annotated": "yes",
        },
    }
    seq_label = {
        "detection-annotations": [
            {"frame-no": "15", "frame": "000015.jpg", "annotations": [
                {"class-id": "0", "left": 300, "top": 150, "width": 60, "height": 30}
            ]},
        ]
    }  # fmt: skip
    data = (json.dumps(line) + "\n").encode()
    assert imports.seq_label_refs(data) == [line["logos-ref"]]
    parsed = imports.parse_file(
        "training/p/annotations/clip.manifest",
        data,
        seq_labels={line["logos-ref"]: json.dumps(seq_label).encode()},
    )
    result = imports.match([parsed], [frame(0), frame(1)])
    (image,) = result.images
    assert image.source_ref == frame(1).uri
    assert [(b.left, b.top, b.width, b.height) for b in image.boxes] == [(200, 100, 40, 20)]


def test_annotation_file_names() -> None:
    assert imports.is_annotation_file("training/p/annotations/clip.json", "p")
    assert imports.is_annotation_file("training/p/annotations/x.ZIP", "p")
    assert not imports.is_annotation_file("training/p/annotations/clip/SeqLabel.json", "p")
    assert not imports.is_annotation_file("training/p/annotations/notes.txt", "p")
    assert not imports.is_annotation_file("training/q/annotations/clip.json", "p")
    with pytest.raises(LabelingError, match="unsupported file type"):
        imports.parse_file("training/p/annotations/x.xml", b"<x/>")


# -- Label Studio ------------------------------------------------------------------------------


def test_label_config_escapes_brand_names() -> None:
    brands = ['Ben & Jerry"s', "<acme>", "O'Neill"]
    root = ElementTree.fromstring(ls.label_config(brands))
    (rectangles,) = root.iter("RectangleLabels")
    assert rectangles.get("toName") == "image"
    assert [label.get("value") for label in rectangles.iter("Label")] == brands


def ls_rect(
    x: float, y: float, w: float, h: float, label: str = "acme", rotation: float = 0
) -> dict[str, Any]:
    return {
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": rotation,
            "rectanglelabels": [label],
        },
    }


def test_label_studio_percentages_become_pixels_and_round_trip() -> None:
    f = frame(0, width=640, height=360)
    box = Box("acme", 64, 36, 128, 72)
    result = ls.rectangle(box, 640, 360)
    assert ls.convert_annotation([result], f, ["acme"], 1) == [box]


def test_label_studio_clips_rotates_and_refuses_unknown_brands() -> None:
    f = frame(0, width=100, height=100)
    (clipped,) = ls.convert_annotation([ls_rect(90, 90, 20, 20)], f, ["acme"], 1)
    assert (clipped.left, clipped.top, clipped.width, clipped.height) == (90, 90, 10, 10)
    (rotated,) = ls.convert_annotation([ls_rect(50, 10, 20, 10, rotation=90)], f, ["acme"], 1)
    assert (rotated.left, rotated.top, rotated.width, rotated.height) == (40, 10, 10, 20)
    assert ls.convert_annotation([ls_rect(120, 120, 5, 5)], f, ["acme"], 1) == []
    with pytest.raises(LabelingError, match="not a brand"):
        ls.convert_annotation([ls_rect(1, 1, 5, 5, label="evil")], f, ["acme"], 7)
    with pytest.raises(LabelingError, match="not a number"):
        ls.convert_annotation([ls_rect(float("nan"), 1, 5, 5)], f, ["acme"], 7)


def test_label_studio_task_states() -> None:
    f = frame(0, width=100, height=100)
    skipped = {
        "id": 1,
        "annotations": [{"id": 1, "was_cancelled": True, "result": []}],
        "cancelled_annotations": 1,
    }
    assert ls.task_done(skipped)
    assert ls.convert_task(skipped, f, ["acme"]) is None
    assert not ls.task_done({"id": 2, "annotations": [], "cancelled_annotations": 0})
    edited = {
        "id": 3,
        "annotations": [
            {"id": 1, "updated_at": "2026-11-22T10:00:00Z", "result": [ls_rect(1, 1, 5, 5)]},
            {"id": 2, "updated_at": "2026-11-22T11:00:00Z", "result": []},
        ],
    }
    image = ls.convert_task(edited, f, ["acme"])
    assert image is not None
    assert image.is_negative


# -- Ground Truth requests and outputs ----------------------------------------------------------


OPTIONS = GroundTruthOptions(
    workteam_arn="arn:aws:sagemaker:eu-west-1:123456789012:workteam/private-crowd/team",
    role_arn="arn:aws:iam::123456789012:role/gt",
)


@pytest.mark.parametrize("task_type", ["image", "video"])
def test_create_labeling_job_request_matches_the_service_model(task_type: str) -> None:
    frames = [frame(i) for i in range(3)]
    inputs = gt.build_inputs(frames, ["acme"], BUCKET, "labeling/p/b/ground-truth", task_type)
    request = gt.create_request(
        name=gt.job_name("p", "batch-1"),
        project="p",
        batch_id="batch-1",
        brands=["acme"],
        options=OPTIONS.model_copy(update={"task_type": task_type}),
        bucket=BUCKET,
        prefix="labeling/p/b/ground-truth",
        manifest_key=inputs.manifest_key,
        region="eu-west-1",
        lambda_account=None,
        frame_count=3,
    )
    client = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "create_labeling_job",
            {"LabelingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:labeling-job/x"},
            expected_params=request,
        )
        client.create_labeling_job(**request)  # botocore validates every field and type
        stubber.assert_no_pending_responses()
    assert len(request["LabelingJobName"]) <= 63
    if task_type == "image":
        assert request["HumanTaskConfig"]["PreHumanTaskLambdaArn"].endswith(
            "568282634449:function:PRE-BoundingBox"
        )
        manifest = dict(inputs.files)[inputs.manifest_key].decode().splitlines()
        assert [json.loads(x)["source-ref"] for x in manifest] == [f.uri for f in frames]
    else:
        assert request["LabelAttributeName"].endswith("-ref")
        assert "HumanTaskUiArn" in request["HumanTaskConfig"]["UiConfig"]


def test_unknown_region_needs_the_lambda_account() -> None:
    with pytest.raises(LabelingError, match="GROUND_TRUTH_LAMBDA_ACCOUNT"):
        gt.lambda_arns("xx-nowhere-1", "image")
    pre, acs = gt.lambda_arns("xx-nowhere-1", "image", "111122223333")
    assert pre.endswith("111122223333:function:PRE-BoundingBox")
    assert acs.endswith("111122223333:function:ACS-BoundingBox")


def test_describe_labeling_job_response_shape_is_what_the_labeler_reads() -> None:
    """The fields the labeler reads exist in DescribeLabelingJob's real output shape."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    shape = client.meta.service_model.operation_model("DescribeLabelingJob").output_shape
    assert {
        "LabelingJobStatus",
        "LabelCounters",
        "FailureReason",
        "LabelingJobOutput",
        "Tags",
    } <= set(shape.members)
    assert "OutputDatasetS3Uri" in shape.members["LabelingJobOutput"].members
    assert "TotalLabeled" in shape.members["LabelCounters"].members
    statuses = shape.members["LabelingJobStatus"].enum
    assert {"Completed", "Failed", "Stopped", "InProgress"} <= set(statuses)


def test_ground_truth_output_names_only_batch_frames() -> None:
    f = frame(0)
    line = gt_line(
        f.uri, [{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}], (1280, 720)
    )
    line = line.replace('"logos"', '"brands"').replace('"logos-metadata"', '"brands-metadata"')
    images, labels = gt.convert_image_output(line.encode(), {f.uri: f})
    assert labels == ["acme"]
    assert images[0].boxes[0].width == 5
    other = gt_line("s3://x/y.jpg", [], (1280, 720)).replace("logos", "brands")
    with pytest.raises(LabelingError, match="not a frame of this batch"):
        gt.convert_image_output(other.encode(), {f.uri: f})


# -- datasets ------------------------------------------------------------------------------------


def labelled(n: int, media: str, label: str = "acme", boxes: int = 1) -> list[ImageAnnotations]:
    return [
        ImageAnnotations(
            f"s3://{BUCKET}/frames/{media}/{i:06d}.jpg",
            1280,
            720,
            [Box(label, 10, 10, 50, 50)] * boxes,
            group=f"s3://media/{media}.mp4",
        )
        for i in range(n)
    ]


def build(images: list[ImageAnnotations], brands: list[str], **kw: Any) -> datasets.BuiltDataset:
    stamps = {i.source_ref: int(i.source_ref[-10:-4]) * 1000.0 for i in images}
    args: dict[str, Any] = {
        "min_boxes_per_label": 3,
        "test_fraction": 0.25,
        "split_block_seconds": 2.0,
        "split_min_videos": 5,
    }
    return datasets.build(images, stamps, brands, dataset_id="ds-1", **(args | kw))


def test_dataset_split_keeps_videos_apart() -> None:
    images = [i for media in "abcde" for i in labelled(8, media)]
    built = build(images, ["acme"])
    train_groups = {i.group for i in built.train.images}
    test_groups = {i.group for i in built.test.images}
    assert train_groups
    assert test_groups
    assert not train_groups & test_groups
    assert built.statistics["split_unit"] == "source media"


def test_single_video_is_split_by_time_blocks() -> None:
    built = build(labelled(20, "a"), ["acme"])
    assert built.statistics["split_unit"].startswith("blocks of 2 s")
    train_blocks = {i.group for i in built.train.images}
    test_blocks = {i.group for i in built.test.images}
    assert test_blocks
    assert not train_blocks & test_blocks
    assert all("#block-" in g for g in train_blocks | test_blocks)


def test_dataset_refuses_empty_classes_and_too_few_boxes() -> None:
    images = labelled(8, "a") + labelled(8, "b")
    with pytest.raises(LabelingError, match="globex have no boxes"):
        build(images, ["acme", "globex"])
    few = labelled(8, "a") + labelled(2, "b", label="globex")
    with pytest.raises(LabelingError, match=r"globex \(2\)"):
        build(few, ["acme", "globex"])
    with pytest.raises(LabelingError, match="match no brand of the project"):
        build(labelled(8, "a", label="initech") + labelled(8, "b"), ["acme"])
    with pytest.raises(LabelingError, match="no boxes at all"):
        build(labelled(8, "a", boxes=0), [])


def test_project_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        Project(project="p", brands=["Acme", "acme"])
    with pytest.raises(ValueError, match="control character"):
        Project(project="p", brands=["ac\u202eme"])
    with pytest.raises(ValueError, match="not valid"):
        Project(project="Bad_Name", brands=["a"])
    project = Project(project="p", brands=[], labeling="label-studio")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lists no brands"):
        project.check_backend()


def test_labeling_job_name_from_a_state_change_event() -> None:
    resources = ["arn:aws:sagemaker:us-east-1:123456789012:labeling-job/brandlens-abc"]
    assert gt.job_name_from_event(resources, {}) == "brandlens-abc"
    assert gt.job_name_from_event([], {"LabelingJobName": "x"}) == "x"
    assert gt.job_name_from_event([], {}) is None


def test_labels_match_brands_ignoring_case_and_spaces() -> None:
    images = labelled(8, "a", label="acme") + labelled(8, "b", label=" GLOBEX ")
    built = build(images, ["Acme", "Globex"])
    assert built.labels == ["Acme", "Globex"]
    assert {b.label for i in built.train.images + built.test.images for b in i.boxes} == {
        "Acme",
        "Globex",
    }
    assert images[0].boxes[0].label == "acme"  # the caller's images are not changed
    exact = labelled(2, "a", label="Acme")
    assert datasets.to_brands(exact, ["Acme"]) is exact
    assert datasets.to_brands(images, []) is images  # no brands: labels as they are


def test_labels_that_match_no_brand_are_named_with_the_brands() -> None:
    images = labelled(4, "a", label="acme") + labelled(4, "b", label="initech")
    images += labelled(4, "c", label="Hooli")
    with pytest.raises(LabelingError) as info:
        datasets.to_brands(images, ["Acme", "Globex"])
    message = str(info.value)
    assert message.startswith("label(s) 'initech', 'Hooli' match no brand of the project")
    assert "its brands are 'Acme', 'Globex'" in message
    assert "'acme'" not in message.split("its brands")[0]
