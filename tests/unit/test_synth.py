"""brandlens_synth: the synthetic benchmark generator (brands, scenes, datasets, videos)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brandlens_synth import (
    Appearance,
    Box,
    Brand,
    Placement,
    Sample,
    SceneConfig,
    SceneSpec,
    compose,
    default_brands,
    draw_boxes,
    generate_dataset,
    generate_video,
    make_schedule,
    near_miss,
    render_logo,
    render_scene,
    render_video_frames,
    sample_scene_spec,
)
from brandlens_synth.brands import BRAND_MIN_SATURATION, brand_words, saturation
from brandlens_synth.scene import (
    ALPHA_THRESHOLD,
    MIN_VISIBLE_FRACTION,
    Occluder,
    compose_positive,
)
from brandlens_synth.video import ffmpeg_exe

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
BRANDS = default_brands(8)


# --------------------------------------------------------------------------- brands


def test_default_brands_are_distinct_and_stable() -> None:
    brands = default_brands(15)
    assert [b.name for b in brands[:5]] == ["acme", "globex", "initech", "umbrella", "hooli"]
    assert len({b.name for b in brands}) == 15
    assert len({(b.shape, b.layout) for b in brands}) == 15
    assert len({b.primary for b in brands}) == 15
    assert all(saturation(b.primary) >= BRAND_MIN_SATURATION for b in brands)
    assert default_brands(15) == brands
    assert default_brands(40)[:15] == brands
    assert len({b.name for b in default_brands(40)}) == 40


@pytest.mark.parametrize("height", [12, 29, 80, 250])
def test_render_logo_has_exact_height_and_is_tight(height: int) -> None:
    for brand in BRANDS:
        logo = render_logo(brand, height)
        assert logo.mode == "RGBA"
        assert logo.height == height
        assert logo.width >= height * 0.5
        assert logo.getchannel("A").getbbox() == (0, 0, logo.width, logo.height)
    assert render_logo(BRANDS[0], 50).tobytes() == render_logo(BRANDS[0], 50).tobytes()


def test_near_misses_are_never_brand_words() -> None:
    rng = np.random.default_rng(0)
    words = brand_words(BRANDS)
    for brand in BRANDS:
        for _ in range(30):
            miss = near_miss(brand.name, rng, words)
            assert miss.lower() not in words
    assert near_miss("acme", np.random.default_rng(1), words) != "acme"


# --------------------------------------------------------------------------- scenes


def test_render_scene_is_deterministic() -> None:
    a_img, a_boxes = render_scene(np.random.default_rng(42), BRANDS)
    b_img, b_boxes = render_scene(np.random.default_rng(42), BRANDS)
    c_img, _ = render_scene(np.random.default_rng(43), BRANDS)
    assert a_img.size == (1280, 720)
    assert a_img.mode == "RGB"
    assert a_img.tobytes() == b_img.tobytes()
    assert a_boxes == b_boxes
    assert a_boxes
    assert a_img.tobytes() != c_img.tobytes()


def test_boxes_are_in_frame_and_tight_around_visible_alpha() -> None:
    labelled = dropped = 0
    for seed in range(25):
        spec = sample_scene_spec(np.random.default_rng(seed), BRANDS, 640, 360)
        scene = compose(spec)
        assert len(scene.logos) == len(spec.placements)
        for logo in scene.logos:
            mask = logo.full_mask(640, 360)
            if logo.box is None:
                dropped += 1
                assert (
                    logo.visible_fraction < MIN_VISIBLE_FRACTION
                    or not (mask >= ALPHA_THRESHOLD).any()
                )
                continue
            labelled += 1
            box = logo.box
            assert logo.visible_fraction >= MIN_VISIBLE_FRACTION
            assert 0 <= box.left < box.right <= 640
            assert 0 <= box.top < box.bottom <= 360
            on = mask >= ALPHA_THRESHOLD
            inside = on[box.top : box.bottom, box.left : box.right]
            assert inside.sum() == on.sum()  # nothing visible outside the box
            # every edge of the box touches the logo
            assert inside[0].any()
            assert inside[-1].any()
            assert inside[:, 0].any()
            assert inside[:, -1].any()
    assert labelled > 40


def _ink_box(image: Image.Image, background: tuple[int, int, int]) -> tuple[int, int, int, int]:
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(background, np.int16)).max(axis=2)
    ys, xs = np.nonzero(diff > 8)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("warped", [False, True])
def test_box_matches_the_drawn_pixels(warped: bool) -> None:
    """On a flat background, the box is the extent of the changed pixels (+-2 px)."""
    config = replace(
        SceneConfig.clean(),
        rotation_probability=1.0 if warped else 0.0,
        perspective_probability=1.0 if warped else 0.0,
    )
    color = (250, 250, 250)
    checked = 0
    for seed in range(12):
        bg = Image.new("RGB", (640, 360), color)
        spec = sample_scene_spec(
            np.random.default_rng(seed), BRANDS, 640, 360, n_logos=1, config=config, background=bg
        )
        scene = compose(spec)
        (box,) = scene.boxes
        left, top, right, bottom = _ink_box(scene.image, color)
        if box.left == 0 or box.top == 0 or box.right == 640 or box.bottom == 360:
            continue  # cut by the frame edge: nothing to compare on that side
        assert abs(box.left - left) <= 2
        assert abs(box.top - top) <= 2
        assert abs(box.right - right) <= 2
        assert abs(box.bottom - bottom) <= 2
        checked += 1
    assert checked >= 8


def test_occlusion_shrinks_the_box_or_drops_the_logo() -> None:
    brand = BRANDS[0]
    bg = Image.new("RGB", (800, 300), (200, 200, 200))
    base = Placement(brand=brand, cx=400, cy=150, height=100)
    aspect = render_logo(brand, 100).width / 100

    def block(fraction: float) -> Occluder:
        x = aspect / 2 - fraction * aspect  # covers the right ``fraction`` of the logo
        pts = ((x, -3.0), (3 * aspect, -3.0), (3 * aspect, 3.0), (x, 3.0))
        return Occluder(pts, (90, 90, 90), (60, 60, 60))

    def scene_of(p: Placement) -> list[Box]:
        return compose(SceneSpec(800, 300, bg, (p,))).boxes

    (full,) = scene_of(base)
    (partial,) = scene_of(replace(base, occluder=block(0.3)))
    assert partial.left == full.left
    assert partial.top == full.top
    assert partial.right < full.right - 0.2 * full.width
    assert scene_of(replace(base, occluder=block(0.8))) == []
    # a positive scene keeps at least one box: it is redrawn without occluders
    hidden = SceneSpec(800, 300, bg, (replace(base, occluder=block(0.9)),))
    assert compose(hidden).logos[0].visible_fraction < MIN_VISIBLE_FRACTION
    assert compose_positive(hidden).boxes == [full]


def test_negative_scene_has_no_boxes() -> None:
    img, boxes = render_scene(np.random.default_rng(5), BRANDS, 640, 360, n_logos=0)
    assert boxes == []
    assert img.size == (640, 360)


def test_visual_check_scene_is_saved() -> None:
    seed = 2026
    img, boxes = render_scene(np.random.default_rng(seed), BRANDS)
    while len(boxes) < 3:  # a busy scene is more telling
        seed += 1
        img, boxes = render_scene(np.random.default_rng(seed), BRANDS)
    ARTIFACTS.mkdir(exist_ok=True)
    draw_boxes(img, boxes).save(ARTIFACTS / "synth_scene.png")


# --------------------------------------------------------------------------- datasets


def _dataset(out: Path) -> list[Sample]:
    return generate_dataset(
        out,
        brands=BRANDS,
        n_images=24,
        seed=11,
        negative_fraction=0.25,
        width=480,
        height=270,
        groups=6,
        uri_prefix="s3://bucket/prefix",
    )


def test_dataset_manifest_groups_and_negatives(tmp_path: Path) -> None:
    samples = _dataset(tmp_path / "a")
    assert len(samples) == 24
    assert sum(s.negative for s in samples) == 6
    assert all(not s.boxes for s in samples if s.negative)
    assert sum(bool(s.boxes) for s in samples) >= 15

    groups = [s.group for s in samples]
    assert len(set(groups)) == 6
    assert all(groups.count(g) == 4 for g in set(groups))
    assert groups == sorted(groups)  # consecutive frames of a group

    lines = (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 24
    names = {str(i): b.name for i, b in enumerate(BRANDS)}
    for sample, raw in zip(samples, lines, strict=True):
        line = json.loads(raw)
        assert set(line) == {"source-ref", "bounding-box", "bounding-box-metadata"}
        assert line["source-ref"] == f"s3://bucket/prefix/{sample.name}"
        with Image.open(sample.path) as im:
            assert im.format == "JPEG"
            assert im.size == (480, 270)
        label = line["bounding-box"]
        assert label["image_size"] == [{"width": 480, "height": 270, "depth": 3}]
        meta = line["bounding-box-metadata"]
        assert meta["class-map"] == names
        assert meta["type"] == "groundtruth/object-detection"
        assert meta["human-annotated"] == "yes"
        assert {"creation-date", "job-name"} <= set(meta)
        assert len(meta["objects"]) == len(label["annotations"]) == len(sample.boxes)
        for ann, box in zip(label["annotations"], sample.boxes, strict=True):
            assert set(ann) == {"class_id", "left", "top", "width", "height"}
            assert names[str(ann["class_id"])] == box.label
            assert ann["left"] >= 0
            assert ann["top"] >= 0
            assert ann["width"] > 0
            assert ann["height"] > 0
            assert ann["left"] + ann["width"] <= 480
            assert ann["top"] + ann["height"] <= 270

    meta_lines = [
        json.loads(x) for x in (tmp_path / "a" / "samples.jsonl").read_text().splitlines()
    ]
    assert [m["group"] for m in meta_lines] == groups


def test_dataset_frames_of_a_group_are_one_shot(tmp_path: Path) -> None:
    samples = _dataset(tmp_path / "a")

    def pixels(i: int) -> np.ndarray:
        with Image.open(samples[i].path) as im:
            return np.asarray(im.convert("RGB"), np.float32)

    within = [np.abs(pixels(i) - pixels(i + 1)).mean() for i in range(0, 24, 4)]
    across = [np.abs(pixels(i) - pixels(i + 4)).mean() for i in range(0, 20, 4)]
    assert max(within) < min(across)
    # logos drift: each box stays close to the same brand's box in the group's previous
    # positive frame
    matched = total = 0
    for group in {s.group for s in samples}:
        positives = [s for s in samples if s.group == group and not s.negative]
        for a, b in itertools.pairwise(positives):
            for box in b.boxes:
                total += 1
                matched += any(box.label == o.label and box.iou(o) > 0.3 for o in a.boxes)
    assert total > 10
    assert matched / total > 0.8


def test_dataset_is_deterministic(tmp_path: Path) -> None:
    first = _dataset(tmp_path / "a")
    second = _dataset(tmp_path / "b")
    assert [s.boxes for s in first] == [s.boxes for s in second]
    for name in ("manifest.jsonl", "samples.jsonl", "000000.jpg", "000013.jpg", "000023.jpg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# --------------------------------------------------------------------------- videos


def _probe(path: Path) -> tuple[float, int]:
    """Duration (from the container) and number of video frames, via the ffmpeg binary."""
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v", "-c", "copy",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", run.stderr).groups()  # type: ignore[union-attr]
    frames = int(re.findall(r"frame=\s*(\d+)", run.stderr)[-1])
    return int(h) * 3600 + int(m) * 60 + float(s), frames


def _decode(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def _active(schedule: list[Appearance], t: float) -> list[str]:
    return sorted(a.brand.name for a in schedule if a.start_s <= t < a.end_s)


def test_video_duration_frames_and_ground_truth(tmp_path: Path) -> None:
    w, h, fps = 640, 360, 25
    schedule = [
        Appearance(BRANDS[0], 0.0, 1.0, (0.05, 0.1, 0.4, 0.35)),
        Appearance(BRANDS[3], 0.52, 2.0, (0.55, 0.5, 0.4, 0.4)),
        Appearance(BRANDS[1], 1.2, 1.6, (0.1, 0.6, 0.35, 0.3)),
    ]
    path = tmp_path / "v.mp4"
    truth = generate_video(
        path, brands=BRANDS, seconds=2, fps=fps, width=w, height=h, seed=5, schedule=schedule
    )
    duration, frames = _probe(path)
    assert frames == 50
    assert duration == pytest.approx(2.0, abs=0.05)
    assert len(truth) == 50
    assert [t.frame_index for t in truth] == list(range(50))
    for gt in truth:
        assert gt.timestamp_s == pytest.approx(gt.frame_index / fps)
        assert sorted(b.label for b in gt.boxes) == _active(schedule, gt.timestamp_s)
        for box in gt.boxes:
            (a,) = [
                a for a in schedule
                if a.brand.name == box.label and a.start_s <= gt.timestamp_s < a.end_s
            ]  # fmt: skip
            rx, ry, rw, rh = a.region
            assert box.left >= rx * w - 2
            assert box.top >= ry * h - 2
            assert box.right <= (rx + rw) * w + 2
            assert box.bottom <= (ry + rh) * h + 2
    # the first frame on which the second brand appears is frame 13 (0.52 s)
    assert "acme" in [b.label for b in truth[12].boxes]
    assert BRANDS[3].name not in [b.label for b in truth[12].boxes]
    assert BRANDS[3].name in [b.label for b in truth[13].boxes]

    # the decoded pixels are the rendered frames (RGB order, frame alignment)
    decoded = _decode(path, w, h)
    assert decoded.shape[0] == 50
    rendered = {
        gt.frame_index: np.asarray(im, np.float32)
        for gt, im in render_video_frames(
            brands=BRANDS, seconds=2, fps=fps, width=w, height=h, seed=5, schedule=schedule
        )
        if gt.frame_index in (0, 20, 49)
    }
    for i, frame in rendered.items():
        err = np.abs(decoded[i].astype(np.float32) - frame).mean()
        assert err < 6, (i, err)
        other = np.abs(decoded[i].astype(np.float32) - frame[..., ::-1]).mean()
        assert other > err

    again = tmp_path / "again.mp4"
    assert (
        generate_video(
            again, brands=BRANDS, seconds=2, fps=fps, width=w, height=h, seed=5, schedule=schedule
        )
        == truth
    )
    assert again.read_bytes() == path.read_bytes()


def test_video_default_schedule(tmp_path: Path) -> None:
    path = tmp_path / "auto.mp4"
    truth = generate_video(path, brands=BRANDS, seconds=3, fps=10, width=320, height=180, seed=9)
    schedule = make_schedule(BRANDS, 3, seed=9)
    assert schedule
    assert _probe(path)[1] == 30
    for gt in truth:
        assert sorted(b.label for b in gt.boxes) == _active(schedule, gt.timestamp_s)
    assert any(gt.boxes for gt in truth)


def test_brand_validation() -> None:
    with pytest.raises(ValueError, match="shape"):
        Brand("x", shape="blob")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        Brand(" ")
