"""Per-brand screen time on a 2-minute video with real logos, look-alikes and a brand never shown.

What it measures
    The product's headline figure, screen time per brand, on one generated video whose
    truth is known to the frame: a trained detector model directory (what
    ``brandlens_model_server.detector.runtime.save_model`` writes) is run the way an
    analysis job runs it, and its screen time per brand is compared with the script's.

The video (made once per seed, cached under ``bench/.cache/reallogos/video-<params>/``)
    120 s, 1280x720, 30 fps, H.264 (libx264 veryfast, CRF 23, a keyframe every 2 s,
    yuv420p; raw RGB frames piped into ffmpeg with ``-threads 1``). Backgrounds: the TEST
    photos of ``reallogos.split_photos(all_photos(), seed)`` (none of them is in the
    training set), a new photo every 9-15 s, each panned and zoomed slowly between two
    random 16:9 crops (sometimes mirrored), so consecutive frames differ. Logos are
    ``reallogos``'s (simple-icons in the brand's colours, two-tone or on a plate, warped
    and shaded by ``make_layer`` + ``warp_layer``); an instance keeps its warp for the
    whole appearance and drifts 0.5-2.5 px per frame, bouncing inside its half of the
    frame (two logos on screen at once never overlap) or the whole frame when alone.

    The script (deterministic for a seed): the timeline alternates six target stretches
    with five others -- one of 15 s with no logo at all and four look-alike stretches
    of 5-8 s where only look-alikes are on screen (YouTube Kids or YouTube Shorts,
    Jordan, Messenger, and Skoda, the look-alike of the brand never shown; sometimes a
    second look-alike beside it: the other YouTube sub-brand, Volkswagen, MINI). In the
    target stretches five of the six targets appear 1-3 times each, 4-20 s each, on one
    or both halves of the frame (so some appearances overlap in time); icon widths are
    log-uniform over 4-30 % of the frame width, one appearance is forced small (5-7 %),
    and at least one is 7-15 % and one over 15 %.
    :data:`ABSENT` (Starbucks) is never shown. Appearances start and end on whole
    seconds, so at the product's default sampling (1 frame per second) a perfect
    detector scores exactly 0 % error: the bench measures the detector, not the sampling.

    ``truth.json``: per brand its ``intervals`` ([start_s, end_s), end exclusive) and
    ``total_s``; the look-alike-only and no-logo intervals; every appearance (size, lane,
    icon box in the layer); the photo schedule. ``boxes.jsonl``: one line per video
    frame with every logo's box (the icon's visible alpha >= 0.25, never the plate's;
    ``target`` false for look-alikes).

Method
    Frames are sampled exactly as an analysis job samples them: the framer's own code
    (``probe``, ``interval_targets``, ``choose``, ``plan``, ``Extractor.frames``) with its
    default settings (``FramerSettings``: interval mode, one frame every 1000 ms, longest
    side 1280 px, JPEG quality 90), ffmpeg on one thread. Each JPEG goes through
    ``Detector.detect(jpeg, min_confidence=InfererSettings().min_confidence)`` (None by
    default: the model's own threshold, as the inferer sends no MinConfidence), the
    model-server's ``_clean`` (what DetectCustomLabels returns) and the inferer's
    ``_label``; then the inferer's ``aggregate`` with ``InfererSettings().aggregation()``
    gives ``screen_time_ms`` per brand. Also per brand: seconds found where the brand
    was not on screen (``false_s``), seconds missed (``missed_s``), and seconds found in
    the look-alike-only stretches (``lookalike_s``). ``lookalike_false_s`` sums those over
    the six targets (brand-seconds: two brands found in one second count two; the absent
    brand's, found on Skoda, included); ``lookalike_false_any_s`` is the seconds of those
    stretches where any target was found. ``error_pct`` is (found - truth) / truth: false
    and missed seconds can cancel in it, hence ``false_s`` and ``missed_s``.

    ``--check-truth`` runs the same sampling and aggregation with the truth boxes of the
    sampled frames as perfect detections (confidence 100): every error must be 0 %; it
    proves the plumbing (frame times, aggregation) without a model.

Run
    .venv/bin/python bench/reallogo_video.py --model-dir DIR [--seed 0] [--threads 1]
    .venv/bin/python bench/reallogo_video.py --check-truth [--seed 0]

    From Python: ``video_screen_time(model_dir, seed=0) -> dict`` (keys: ``brands``
    {name: {truth_s, found_s, error_pct, false_s, missed_s, lookalike_s}} for the five
    brands shown, ``lookalike_false_s``, ``lookalike_false_any_s``, ``absent_brand``,
    ``absent_brand_false_s``, ``max_abs_error_pct``, and details). ``main`` prints the
    table and writes ``bench/results/reallogo_video.json`` (``--check-truth``: ``check.json``
    in the video's cache directory). No targets: the figures are a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brandlens_framer import plan as planning
from brandlens_framer.extract import Extractor, Frame, OutputOptions
from brandlens_framer.probe import probe
from brandlens_framer.settings import FramerSettings, SamplingMode
from brandlens_framer.tools import Tools
from brandlens_inferer.aggregate import _spans, aggregate
from brandlens_inferer.handler import _label
from brandlens_inferer.settings import InfererSettings
from reallogos import (
    ALPHA_THRESHOLD,
    CACHE,
    GENERATOR_VERSION,
    LOOKALIKES,
    TARGETS,
    AssetError,
    Icon,
    Layer,
    Photo,
    _icon_aspect,
    _photo,
    all_photos,
    load_icons,
    make_layer,
    split_photos,
    warp_layer,
)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "reallogo_video.json"

#: Bump when the video or its script changes: the cached video is keyed on it.
VIDEO_VERSION = 1
WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 30, 120
CRF, PRESET, GOP = 23, "veryfast", 60

#: The target never shown (its look-alike Skoda is): its found seconds are all false.
ABSENT = "starbucks"
SHOWN: tuple[str, ...] = tuple(t for t in TARGETS if t != ABSENT)
EMPTY_S = 15  # one stretch with no logo at all
LOOKALIKE_BLOCKS = 4
LOOKALIKE_S = (5, 8)  # each look-alike stretch lasts this many seconds (inclusive)
TARGET_BLOCKS = 6
TARGET_BLOCK_S = (8, 20)
APPEARANCE_S = (4, 20)
MAX_APPEARANCES = 3  # per brand
SIZE = (0.04, 0.30)  # icon width / frame width, log-uniform
SMALL = (0.05, 0.07)  # one appearance is forced this small
DRIFT_PX = (0.5, 2.5)  # per frame
MARGIN = 8
PHOTO_EVERY_S = 12.0  # photo cuts at 12 k +- 1.5 s
SECOND_LOOKALIKE = 0.5  # share of look-alike stretches with two look-alikes
TWO_LANES = 0.75  # share of target stretches with two appearances side by side

_LOOK = {d: t for t, d in LOOKALIKES}
#: Shown alone in the look-alike stretches (one each), then the extras that may join them.
PRIMARY_LOOKALIKES: tuple[tuple[str, ...], ...] = (
    ("youtubekids", "youtubeshorts"),  # one of the two
    ("jordan",),
    ("messenger",),
    ("skoda",),  # the absent Starbucks' look-alike
)
EXTRA_LOOKALIKES: tuple[str, ...] = ("youtubekids", "youtubeshorts", "volkswagen", "mini")

UInt8Array = np.ndarray[Any, np.dtype[np.uint8]]
Interval = tuple[int, int]


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class Appearance:
    slug: str
    target: bool
    start_s: int
    end_s: int  # exclusive
    lane: int  # 0: left half, 1: right half, -1: the whole frame
    size: float  # requested icon width / frame width


@dataclass(frozen=True)
class Script:
    appearances: tuple[Appearance, ...]
    lookalike_only: tuple[Interval, ...]
    empty: Interval


def _split(total: int, n: int, lo: int, hi: int, rng: np.random.Generator) -> list[int] | None:
    weights = rng.uniform(0.6, 1.4, n)
    sizes = [int(w) for w in np.floor(weights / weights.sum() * total)]
    for i in range(total - sum(sizes)):
        sizes[i % n] += 1
    return sizes if all(lo <= s <= hi for s in sizes) else None


def _overlaps(a: Appearance, b: Appearance) -> bool:
    return a.start_s < b.end_s and b.start_s < a.end_s


def make_script(seed: int) -> Script:
    """The appearances of the video: deterministic for ``seed`` (the first valid draw)."""
    for attempt in range(1000):
        rng = np.random.default_rng([seed, 11, attempt])
        script = _draw_script(rng)
        if script is not None:
            return script
    raise RuntimeError(f"no valid script for seed {seed}")  # pragma: no cover


def _draw_script(rng: np.random.Generator) -> Script | None:
    looks = [int(rng.integers(LOOKALIKE_S[0], LOOKALIKE_S[1] + 1)) for _ in range(LOOKALIKE_BLOCKS)]
    target_total = SECONDS - EMPTY_S - sum(looks)
    target_sizes = _split(target_total, TARGET_BLOCKS, *TARGET_BLOCK_S, rng)
    if target_sizes is None:
        return None
    others: list[tuple[str, int]] = [("empty", EMPTY_S)] + [("look", s) for s in looks]
    others = [others[int(i)] for i in rng.permutation(len(others))]
    blocks: list[tuple[str, int, int]] = []  # kind, start, end
    t = 0
    for i, size in enumerate(target_sizes):
        blocks.append(("target", t, t + size))
        t += size
        if i < len(others):
            kind, length = others[i]
            blocks.append((kind, t, t + length))
            t += length
    assert t == SECONDS
    appearances: list[Appearance] = []
    lookalike_only: list[Interval] = []
    empty: Interval = (0, 0)
    primaries = [str(rng.choice(p)) for p in PRIMARY_LOOKALIKES]
    primaries = [primaries[int(i)] for i in rng.permutation(len(primaries))]
    slots: list[tuple[int, int, int, int]] = []  # start, end, lane, block number
    for number, (kind, start, end) in enumerate(blocks):
        if kind == "empty":
            empty = (start, end)
        elif kind == "look":
            lookalike_only.append((start, end))
            primary = primaries.pop()
            extras = [e for e in EXTRA_LOOKALIKES if e != primary]
            two = rng.random() < SECOND_LOOKALIKE
            lanes = [0, 1] if two else [-1]
            slugs = [primary, str(rng.choice(extras))] if two else [primary]
            for lane, slug in zip(lanes, slugs, strict=True):
                appearances.append(Appearance(slug, False, start, end, lane, _size(rng)))
        else:
            length = end - start
            lanes = [0, 1] if rng.random() < TWO_LANES else [-1]
            for lane in lanes:
                d = int(rng.integers(APPEARANCE_S[0], min(APPEARANCE_S[1], length) + 1))
                s = start + int(rng.integers(0, length - d + 1))
                slots.append((s, s + d, lane, number))
    if len(slots) < len(SHOWN):
        return None
    order = [slots[int(i)] for i in rng.permutation(len(slots))]
    counts = dict.fromkeys(SHOWN, 0)
    brand_of: dict[int, str] = {}  # position in order -> brand
    once = [str(b) for b in rng.permutation(SHOWN)]  # every shown brand at least once
    for k, (_, _, _, number) in enumerate(order):
        beside = {brand_of[j] for j in brand_of if order[j][3] == number}
        if k < len(once):
            brand = once[k]
        else:
            free = [b for b in SHOWN if counts[b] < MAX_APPEARANCES and b not in beside]
            if not free:
                return None
            brand = str(rng.choice(free))
        if brand in beside:
            return None
        brand_of[k] = brand
        counts[brand] += 1
    small = int(rng.integers(len(order)))
    targets = [
        Appearance(brand_of[k], True, s, e, lane, _size(rng) if k != small else _small(rng))
        for k, (s, e, lane, _) in enumerate(order)
    ]
    overlapping = sum(_overlaps(a, b) for i, a in enumerate(targets) for b in targets[i + 1 :])
    if overlapping < 2:
        return None
    if not (any(a.size > 0.15 for a in targets) and any(0.07 <= a.size <= 0.15 for a in targets)):
        return None  # small (forced), medium and large logos in every video
    every = sorted(appearances + targets, key=lambda a: (a.start_s, a.lane, a.slug))
    return Script(tuple(every), tuple(lookalike_only), empty)


def _size(rng: np.random.Generator) -> float:
    return float(math.exp(rng.uniform(math.log(SIZE[0]), math.log(SIZE[1]))))


def _small(rng: np.random.Generator) -> float:
    return float(rng.uniform(*SMALL))


# --------------------------------------------------------------------------- rendering


@dataclass
class Placed:
    """An appearance ready to draw: its layer, icon box in the layer, and trajectory."""

    appearance: Appearance
    layer: Layer
    box: tuple[int, int, int, int]  # the icon's box in the layer: left, top, width, height
    x0: float
    y0: float
    vx: float
    vy: float
    bounds: tuple[int, int, int, int]  # x_lo, x_hi, y_lo, y_hi of the layer's top-left

    def position(self, frame: int) -> tuple[int, int]:
        n = frame - self.appearance.start_s * FPS
        x_lo, x_hi, y_lo, y_hi = self.bounds
        return (
            round(_bounce(self.x0, self.vx, n, x_lo, x_hi)),
            round(_bounce(self.y0, self.vy, n, y_lo, y_hi)),
        )

    def shows(self, frame: int) -> bool:
        return self.appearance.start_s * FPS <= frame < self.appearance.end_s * FPS


def _bounce(p0: float, v: float, n: int, lo: float, hi: float) -> float:
    """``p0 + v n`` reflected back and forth within [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return lo
    q = (p0 - lo + v * n) % (2 * span)
    return lo + (q if q <= span else 2 * span - q)


def _icon_box(icon_alpha: np.ndarray[Any, Any]) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(icon_alpha >= ALPHA_THRESHOLD)
    if xs.size == 0:
        raise RuntimeError("an icon with no visible pixel")  # pragma: no cover
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min()) + 1,
            int(ys.max() - ys.min()) + 1)  # fmt: skip


def place(a: Appearance, icons: dict[str, Icon], seed: int, number: int) -> Placed:
    rng = np.random.default_rng([seed, 13, number])
    icon = icons[a.slug]
    lane_x = (0, WIDTH) if a.lane < 0 else (a.lane * WIDTH // 2, (a.lane + 1) * WIDTH // 2)
    lane_w = lane_x[1] - lane_x[0]
    aspect = _aspect(icon)
    width_px = min(a.size * WIDTH, 0.45 * HEIGHT / aspect)  # tall icons: cap the height
    for _ in range(12):
        layer = warp_layer(make_layer(icon, width_px, rng), rng)
        h, w = layer.alpha.shape
        if w <= lane_w - 2 * MARGIN and h <= HEIGHT - 2 * MARGIN:
            break
        width_px *= 0.8
    else:  # pragma: no cover - 0.8 ** 12 of the size always fits
        raise RuntimeError(f"{a.slug} does not fit its lane")
    x_lo, x_hi = lane_x[0] + MARGIN, lane_x[1] - MARGIN - w
    y_lo, y_hi = MARGIN, HEIGHT - MARGIN - h
    speed = rng.uniform(*DRIFT_PX)
    angle = rng.uniform(0, 2 * math.pi)
    return Placed(
        a, layer, _icon_box(layer.icon),
        float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi)),
        float(speed * math.cos(angle)), float(speed * math.sin(angle)),
        (x_lo, x_hi, y_lo, y_hi),
    )  # fmt: skip


def _aspect(icon: Icon) -> float:
    return float(_icon_aspect(icon))


@dataclass(frozen=True)
class Shot:
    """One photo on screen from ``start_s`` to ``end_s``, panning from one crop to another."""

    photo: Photo
    start_s: float
    end_s: float
    crop0: tuple[float, float, float]  # x, y, width (16:9) in the photo
    crop1: tuple[float, float, float]
    mirror: bool


def shots(photos: list[Photo], seed: int) -> list[Shot]:
    rng = np.random.default_rng([seed, 17])
    count = round(SECONDS / PHOTO_EVERY_S)
    cuts = [0.0] + [PHOTO_EVERY_S * k + rng.uniform(-1.5, 1.5) for k in range(1, count)]
    cuts.append(float(SECONDS))
    order = [photos[int(i)] for i in rng.permutation(len(photos))]
    out = []
    for i in range(count):
        photo = order[i % len(order)]
        pw, ph = _photo(photo).size
        full = min(pw, ph * WIDTH / HEIGHT)

        def crop(full: float = full, pw: int = pw, ph: int = ph) -> tuple[float, float, float]:
            cw = full * rng.uniform(0.6, 0.95)
            ch = cw * HEIGHT / WIDTH
            return (float(rng.uniform(0, pw - cw)), float(rng.uniform(0, ph - ch)), float(cw))

        out.append(Shot(photo, cuts[i], cuts[i + 1], crop(), crop(), bool(rng.random() < 0.5)))
    return out


def background(shot: Shot, t: float) -> UInt8Array:
    u = (t - shot.start_s) / (shot.end_s - shot.start_s)
    x, y, cw = (a + (b - a) * u for a, b in zip(shot.crop0, shot.crop1, strict=True))
    ch = cw * HEIGHT / WIDTH
    img = _photo(shot.photo).resize(
        (WIDTH, HEIGHT), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch)
    )
    if shot.mirror:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.array(img, dtype=np.uint8)


def render(frame_index: int, shot: Shot, placed: list[Placed]) -> tuple[UInt8Array, list[Any]]:
    """The frame's pixels and the boxes of the logos on it."""
    frame = background(shot, frame_index / FPS)
    boxes: list[dict[str, Any]] = []
    for p in placed:
        if not p.shows(frame_index):
            continue
        x, y = p.position(frame_index)
        h, w = p.layer.alpha.shape
        a = p.layer.alpha[:, :, None]
        under = frame[y : y + h, x : x + w].astype(np.float32)
        frame[y : y + h, x : x + w] = np.clip(under * (1 - a) + p.layer.rgb * a + 0.5, 0, 255)
        bx, by, bw, bh = p.box
        boxes.append({"label": p.appearance.slug, "target": p.appearance.target,
                      "left": x + bx, "top": y + by, "width": bw, "height": bh})  # fmt: skip
    return frame, boxes


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def truth_of(script: Script, placed: list[Placed], shot_list: list[Shot]) -> dict[str, Any]:
    brands: dict[str, Any] = {}
    for brand in TARGETS:
        spans = _merge([(a.start_s, a.end_s) for a in script.appearances if a.slug == brand])
        brands[brand] = {"intervals": [list(s) for s in spans],
                         "total_s": sum(e - s for s, e in spans)}  # fmt: skip
    looks = sorted({a.slug for a in script.appearances if not a.target})
    on_screen = _merge([(a.start_s, a.end_s) for a in script.appearances])
    gaps, t = [], 0
    for s, e in on_screen:
        if s > t:
            gaps.append([t, s])
        t = e
    if t < SECONDS:
        gaps.append([t, SECONDS])
    return {
        "video": "video.mp4",
        "boxes": "boxes.jsonl",
        "seconds": SECONDS, "fps": FPS, "width": WIDTH, "height": HEIGHT,
        "interval_convention": "[start_s, end_s): end exclusive, whole seconds",
        "targets": list(TARGETS),
        "shown": list(SHOWN),
        "absent_brand": ABSENT,
        "brands": brands,
        "lookalikes": {
            slug: {"of": _LOOK.get(slug),
                   "intervals": [list(s) for s in _merge([(a.start_s, a.end_s)
                                 for a in script.appearances if a.slug == slug])]}
            for slug in looks
        },
        "lookalike_only": [list(s) for s in script.lookalike_only],
        "lookalike_only_s": sum(e - s for s, e in script.lookalike_only),
        "empty_stretch": list(script.empty),
        "no_logo": gaps,
        "no_logo_s": sum(e - s for s, e in gaps),
        "appearances": [
            {**dataclasses.asdict(p.appearance),
             "icon_width_frac": round(p.box[2] / WIDTH, 4),
             "icon_box_in_layer": list(p.box),
             "layer_size": list(p.layer.alpha.shape[::-1])}
            for p in placed
        ],
        "photos": [{"photo": s.photo.name, "start_s": round(s.start_s, 3),
                    "end_s": round(s.end_s, 3)} for s in shot_list],
        "photo_split": "TEST photos of reallogos.split_photos(all_photos(), seed)",
        "encoding": f"libx264 -preset {PRESET} -crf {CRF} -g {GOP} yuv420p",
    }  # fmt: skip


def video_dir(seed: int) -> Path:
    return CACHE / (
        f"video-s{seed}-g{GENERATOR_VERSION}-v{VIDEO_VERSION}-{WIDTH}x{HEIGHT}-{FPS}fps-{SECONDS}s"
    )


def ffmpeg_binary() -> str:
    return Tools.find(FramerSettings()).ffmpeg


def ensure_video(seed: int = 0, *, quiet: bool = False) -> Path:
    """The cached video directory for ``seed`` (``video.mp4``, ``truth.json``,
    ``boxes.jsonl``); generated when missing (about 1-2 minutes on one core)."""
    out = video_dir(seed)
    if (out / "truth.json").exists() and (out / "video.mp4").exists():
        return out
    t0 = time.monotonic()
    _, test = split_photos(all_photos(), seed)
    script = make_script(seed)
    icons = load_icons(sorted({a.slug for a in script.appearances}))
    placed = [place(a, icons, seed, i) for i, a in enumerate(script.appearances)]
    shot_list = shots(test, seed)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    argv = [
        ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
        "-i", "pipe:0", "-threads", "1", "-c:v", "libx264", "-preset", PRESET,
        "-crf", str(CRF), "-g", str(GOP), "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        str(tmp / "video.mp4"),
    ]  # fmt: skip
    with (
        tempfile.TemporaryFile() as err,
        (tmp / "boxes.jsonl").open("w", encoding="utf-8") as boxes_file,
    ):
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        shot = 0
        try:
            for i in range(SECONDS * FPS):
                while shot_list[shot].end_s <= i / FPS:
                    shot += 1
                pixels, boxes = render(i, shot_list[shot], placed)
                proc.stdin.write(pixels.tobytes())
                line = {"frame": i, "t": round(i / FPS, 6), "boxes": boxes}
                boxes_file.write(json.dumps(line, separators=(",", ":")) + "\n")
                if not quiet and i % (10 * FPS) == 0:
                    print(f"reallogo_video: rendering {i // FPS:3d}/{SECONDS} s", flush=True)
        finally:
            proc.stdin.close()
            code = proc.wait()
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"ffmpeg failed ({code}): {err.read().decode()[-800:]}")
    truth = truth_of(script, placed, shot_list)
    truth["seed"] = seed
    truth["generation_seconds"] = round(time.monotonic() - t0, 1)
    (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    if not quiet:
        print(f"reallogo_video: generated {out} in {truth['generation_seconds']} s", flush=True)
    return out


# --------------------------------------------------------------------------- sampling


def analysis_interval_seconds(settings: FramerSettings) -> float:
    """The analysis sampling step, as the framer's handler derives it (interval/fps modes)."""
    if settings.analysis_mode is SamplingMode.INTERVAL:
        return settings.analysis_interval_ms / 1000
    if settings.analysis_mode is SamplingMode.FPS:
        return 1 / settings.analysis_fps
    raise ValueError(
        f"analysis mode {settings.analysis_mode.value}: this bench samples on a regular grid "
        "(interval or fps mode); unset BRANDLENS_FRAMER_ANALYSIS_MODE"
    )


async def _sample(video: Path, settings: FramerSettings, threads: int) -> list[Frame]:
    tools = dataclasses.replace(Tools.find(settings), threads=threads)
    url = str(video)
    info = await probe(url, tools, max_duration_seconds=settings.max_duration_seconds)
    interval = analysis_interval_seconds(settings)
    samples = planning.choose(info, planning.interval_targets(info, interval), settings.max_frames)
    the_plan = planning.plan(info, samples, interval)
    extractor = Extractor(tools, OutputOptions(settings.longest_side_px, settings.jpeg_quality))
    frames = [f async for f in extractor.frames(url, info, the_plan)]
    if len(frames) != len(samples):
        raise RuntimeError(f"the framer produced {len(frames)} of {len(samples)} frames")
    start = info.start_seconds
    return sorted(frames, key=lambda f: f.pts - start)


Detect = Callable[[Frame, int], list[dict[str, Any]]]


def run(
    seed: int, detect: Detect, *, threads: int, model: str, backend: str, threshold: float | None
) -> dict[str, Any]:
    """Sample the video like an analysis job, detect on every frame, aggregate and score."""
    out = ensure_video(seed)
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    framer = FramerSettings()
    inferer = InfererSettings()
    t0 = time.monotonic()
    frames = asyncio.run(_sample(out / "video.mp4", framer, threads))
    sampled = time.monotonic() - t0
    records: list[dict[str, Any]] = []
    t1 = time.monotonic()
    for frame in frames:
        source = round(frame.pts * FPS)  # the video frame it is (pts start at 0)
        labels = detect(frame, source)
        seconds = frame.pts  # the framer's timestamp: pts minus the first frame's (0)
        records.append({
            "index": frame.sample.index, "key": f"frames/{frame.sample.index:06d}.jpg",
            "timestamp_ms": round(seconds * 1000, 3), "width": frame.width,
            "height": frame.height, "labels": [_label(x) for x in labels],
        })  # fmt: skip
    detected = time.monotonic() - t1
    summary = aggregate(
        records, job_id="bench-reallogo-video", project=None, model=model,
        media_kind="video", settings=inferer.aggregation(),
    )  # fmt: skip
    result = score(truth, records, {b: s.screen_time_ms for b, s in summary.brands.items()})
    result.update({
        "model": model, "backend": backend, "threshold_pct": threshold,
        "min_confidence": inferer.min_confidence,
        "sampling_interval_s": analysis_interval_seconds(framer),
        "frames": len(records), "video": str(out / "video.mp4"), "seed": seed,
        "aggregation": inferer.aggregation().model_dump(),
        "framing_seconds": round(sampled, 2), "detect_seconds": round(detected, 2),
        "ms_per_frame": round(1000 * detected / max(1, len(records)), 1),
        "generation_seconds": truth.get("generation_seconds"),
    })  # fmt: skip
    return result


def _on(intervals: list[list[int]], t: float) -> bool:
    return any(s <= t < e for s, e in intervals)


def score(
    truth: dict[str, Any], records: list[dict[str, Any]], screen_ms: dict[str, float]
) -> dict[str, Any]:
    ordered = sorted(records, key=lambda r: float(r["timestamp_ms"]))
    spans = _spans([float(r["timestamp_ms"]) for r in ordered])
    look_only = truth["lookalike_only"]
    brands: dict[str, Any] = {}
    look_false: dict[str, float] = {}
    for brand in TARGETS:
        intervals = truth["brands"][brand]["intervals"]
        false_s = missed_s = look_s = 0.0
        for r, span in zip(ordered, spans, strict=True):
            t = float(r["timestamp_ms"]) / 1000
            found = any(x.get("name") == brand for x in r["labels"])
            shown = _on(intervals, t)
            false_s += span / 1000 if found and not shown else 0.0
            missed_s += span / 1000 if shown and not found else 0.0
            look_s += span / 1000 if found and _on(look_only, t) else 0.0
        look_false[brand] = round(look_s, 3)
        if brand == truth["absent_brand"]:
            continue
        truth_s = float(truth["brands"][brand]["total_s"])
        found_s = screen_ms.get(brand, 0.0) / 1000
        brands[brand] = {
            "truth_s": truth_s,
            "found_s": round(found_s, 3),
            "error_pct": round(100 * (found_s - truth_s) / truth_s, 2),
            "false_s": round(false_s, 3),
            "missed_s": round(missed_s, 3),
            "lookalike_s": round(look_s, 3),
            "intervals": intervals,
        }
    absent = truth["absent_brand"]
    others = sorted({str(x.get("name")) for r in records for x in r["labels"]} - set(TARGETS))
    return {
        "brands": brands,
        "lookalike_false_s": round(sum(look_false.values()), 3),
        "lookalike_false_any_s": round(
            sum(
                span / 1000
                for r, span in zip(ordered, spans, strict=True)
                if _on(look_only, float(r["timestamp_ms"]) / 1000)
                and any(x.get("name") in TARGETS for x in r["labels"])
            ),
            3,
        ),
        "lookalike_false_s_by_brand": look_false,
        "lookalike_only_s": truth["lookalike_only_s"],
        "absent_brand": absent,
        "absent_brand_false_s": round(screen_ms.get(absent, 0.0) / 1000, 3),
        "max_abs_error_pct": max(abs(b["error_pct"]) for b in brands.values()),
        "mean_abs_error_pct": round(
            sum(abs(b["error_pct"]) for b in brands.values()) / len(brands), 2
        ),
        "other_labels_found": others,
    }


def _labels_from_boxes(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Truth boxes of one frame as a perfect DetectCustomLabels answer (targets only)."""
    return [
        {"Name": b["label"], "Confidence": 100.0, "Geometry": {"BoundingBox": {
            "Width": b["width"] / WIDTH, "Height": b["height"] / HEIGHT,
            "Left": b["left"] / WIDTH, "Top": b["top"] / HEIGHT}}}
        for b in boxes if b["target"]
    ]  # fmt: skip


def truth_screen_time(seed: int = 0, *, threads: int = 1) -> dict[str, Any]:
    """The bench with the truth boxes as detections: every error must be 0 %."""
    out = ensure_video(seed)
    with (out / "boxes.jsonl").open(encoding="utf-8") as f:
        per_frame = [json.loads(line)["boxes"] for line in f]

    def detect(frame: Frame, source: int) -> list[dict[str, Any]]:
        if source != frame.sample.source_frame:
            raise RuntimeError(f"frame at {frame.pts} s is not video frame {source}")
        return _labels_from_boxes(per_frame[source])

    return run(seed, detect, threads=threads, model="truth boxes", backend="truth", threshold=None)


def video_screen_time(model_dir: Path, seed: int = 0, *, threads: int = 1) -> dict[str, Any]:
    """Screen time per brand found by the model in ``model_dir`` on the seed's video.

    ``threads`` bounds torch and ffmpeg (onnxruntime, when the model has an ONNX export,
    uses the threads ``Detector.load`` gives it).
    """
    import torch

    from brandlens_model_server.detector.runtime import Detector
    from brandlens_model_server.serving import _clean

    torch.set_num_threads(threads)
    detector = Detector.load(model_dir)
    torch.set_num_threads(threads)
    missing = [t for t in TARGETS if t not in detector.labels]
    if missing:
        print(f"reallogo_video: the model has no label {missing}: 0 s found", file=sys.stderr)
    min_confidence = InfererSettings().min_confidence

    def detect(frame: Frame, source: int) -> list[dict[str, Any]]:
        found = detector.detect(frame.jpeg, min_confidence=min_confidence)
        return _clean(found, None)

    return run(seed, detect, threads=threads, model=str(model_dir), backend=detector.backend,
               threshold=detector.threshold)  # fmt: skip


# --------------------------------------------------------------------------- CLI


def table(result: dict[str, Any]) -> str:
    head = ("brand", "truth s", "found s", "error %", "false s", "missed s", "look-alike-only s")
    widths = (25, 9, 9, 9, 9, 10, 19)

    def row(*cells: object) -> str:
        first, *rest = (f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells)
        return f"{first:<{widths[0]}}" + "".join(
            f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True)
        )

    rows = [row(*head)]
    for brand, b in result["brands"].items():
        rows.append(
            row(brand, b["truth_s"], b["found_s"], b["error_pct"], b["false_s"], b["missed_s"],
                b["lookalike_s"])
        )  # fmt: skip
    absent = result["absent_brand"]
    false_s = float(result["absent_brand_false_s"])
    looks = float(result["lookalike_false_s_by_brand"][absent])
    rows.append(row(f"{absent} (never shown)", 0.0, false_s, "-", false_s, 0.0, looks))
    rows.append(
        f"targets found while only look-alikes were on screen: {result['lookalike_false_s']:.1f} "
        f"brand-s, in {result['lookalike_false_any_s']:.1f} s of the "
        f"{result['lookalike_only_s']} s of look-alike-only stretches; "
        f"{absent} (never shown) found {false_s:.1f} s"
    )
    rows.append(
        f"max |error| {result['max_abs_error_pct']:.1f} %, "
        f"mean |error| {result['mean_abs_error_pct']:.1f} %"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--model-dir", type=Path, help="a saved detector model directory")
    what.add_argument(
        "--check-truth", action="store_true", help="truth boxes as detections: errors must be 0"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch and ffmpeg threads")
    args = ap.parse_args(argv)
    try:
        out = ensure_video(args.seed)
    except AssetError as e:
        print(f"reallogo_video: {e}", file=sys.stderr)
        return 2
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    print(f"video: {out / 'video.mp4'} (generated in {truth['generation_seconds']} s)")
    if args.check_truth:
        result = truth_screen_time(args.seed, threads=args.threads)
        path = out / "check.json"
    else:
        result = video_screen_time(args.model_dir, args.seed, threads=args.threads)
        path = RESULTS
    print(
        f"model: {result['model']} ({result['backend']}), threshold {result['threshold_pct']}, "
        f"MinConfidence {result['min_confidence']}, one frame every "
        f"{result['sampling_interval_s']} s: {result['frames']} frames (framing "
        f"{result['framing_seconds']} s, detection {result['ms_per_frame']} ms/frame)"
    )
    print(table(result))
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
