"""brandlens_synth.demo: COCO annotations of video frames, ground truth of the analysis video."""

from __future__ import annotations

import json

from brandlens_labeler.imports import parse_file
from brandlens_synth import Appearance, Box, FrameTruth, default_brands, render_video_frames
from brandlens_synth.demo import DEMO_ENV, brand_truth, coco_annotations

W, H = 1280, 720


def _truth() -> list[FrameTruth]:
    return [
        FrameTruth(0, 0.0, (Box("globex", 10, 20, 100, 50), Box("acme", 600, 300, 80, 40))),
        FrameTruth(1, 0.1, ()),  # a negative frame
        FrameTruth(2, 0.2, (Box("acme", 0, 0, W, H),)),
        FrameTruth(7, 0.7, (Box("acme", 612, 301, 79, 41),)),
    ]


def test_coco_structure() -> None:
    truth = _truth()
    coco = json.loads(coco_annotations(truth, W, H))
    assert set(coco) == {"images", "annotations", "categories"}
    assert [c["name"] for c in coco["categories"]] == ["acme", "globex"]
    assert len({c["id"] for c in coco["categories"]}) == 2
    assert coco["images"] == [
        {"id": t.frame_index + 1, "file_name": f"frame_{t.frame_index:06d}.jpg", "width": W,
         "height": H}
        for t in truth
    ]  # fmt: skip
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids)) == 4
    image_ids = {i["id"] for i in coco["images"]}
    category_ids = {c["id"] for c in coco["categories"]}
    for a in coco["annotations"]:
        assert a["image_id"] in image_ids
        assert a["category_id"] in category_ids
        assert a["area"] == a["bbox"][2] * a["bbox"][3]


def test_coco_boxes_equal_truth() -> None:
    truth = _truth()
    coco = json.loads(coco_annotations(truth, W, H))
    names = {c["id"]: c["name"] for c in coco["categories"]}
    got: dict[int, list[tuple[str, list[int]]]] = {}
    for a in coco["annotations"]:
        got.setdefault(a["image_id"] - 1, []).append((names[a["category_id"]], a["bbox"]))
    want = {
        t.frame_index: [(b.label, [b.left, b.top, b.width, b.height]) for b in t.boxes]
        for t in truth
        if t.boxes
    }
    assert got == want


def test_coco_of_rendered_frames_reads_back_in_the_labeler() -> None:
    acme, globex = default_brands(2)
    schedule = [
        Appearance(acme, 0.0, 0.3, (0.0, 0.0, 0.5, 0.5)),
        Appearance(globex, 0.1, 0.2, (0.5, 0.5, 0.5, 0.5)),
    ]
    truth = [
        gt
        for gt, _ in render_video_frames(
            brands=[acme, globex], seconds=0.5, fps=10, width=320, height=180, seed=3,
            schedule=schedule,
        )
    ]  # fmt: skip
    assert [len(t.boxes) for t in truth] == [1, 2, 1, 0, 0]
    parsed = parse_file(
        "training/demo/annotations/training.json", coco_annotations(truth, 320, 180)
    )
    assert parsed.format == "coco"
    assert [e.name for e in parsed.entries] == [f"frame_{t.frame_index:06d}.jpg" for t in truth]
    for entry, t in zip(parsed.entries, truth, strict=True):
        assert (entry.width, entry.height) == (320, 180)
        assert [(b.label, b.left, b.top, b.width, b.height) for b in entry.boxes] == [
            (b.label, b.left, b.top, b.width, b.height) for b in t.boxes
        ]


def test_coco_of_nothing() -> None:
    assert json.loads(coco_annotations([], W, H)) == {
        "images": [],
        "annotations": [],
        "categories": [],
    }


def test_brand_truth_runs_and_screen_time() -> None:
    truth = [
        FrameTruth(i, i / 10, (Box("acme", 0, 0, 5, 5),) if i in (1, 2, 3, 6) else ())
        for i in range(8)
    ]
    got = brand_truth(truth, ["acme", "globex"], fps=10)
    assert got["acme"].appearances == ((0.1, 0.4), (0.6, 0.7))
    assert got["acme"].screen_seconds == 0.4
    assert got["acme"].frames == 4
    assert got["globex"].appearances == ()
    assert got["globex"].screen_seconds == 0.0


def test_demo_env_are_strings() -> None:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in DEMO_ENV.items())
