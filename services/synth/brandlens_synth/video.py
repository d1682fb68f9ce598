"""Videos: H.264 MP4s in which brands appear over known time intervals.

A *schedule* says which brand is on screen when and where: a list of
:class:`Appearance` ``(brand, start_s, end_s, region)``, ``region`` being a
``(left, top, width, height)`` rectangle in fractions of the frame. Frame ``i`` is shown
at ``i / fps`` seconds; an appearance is on screen in the frames with
``start_s <= i / fps < end_s``. Inside its region the logo bobs, breathes (+-5 % scale)
and turns a few degrees; the background (distractors included) pans slowly. The ground
truth of every frame is computed from the composited alpha, as for still scenes.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from .backgrounds import make_background
from .brands import Brand, logo_aspect, quantized_height
from .scene import (
    NO_WARP,
    Box,
    Corners,
    Effects,
    Placement,
    SceneSpec,
    compose,
    draw_distractors,
)

Region = tuple[float, float, float, float]


class Appearance(NamedTuple):
    """``brand`` on screen from ``start_s`` (inclusive) to ``end_s`` (exclusive) in ``region``
    (``(left, top, width, height)`` as fractions of the frame)."""

    brand: Brand
    start_s: float
    end_s: float
    region: Region


class FrameTruth(NamedTuple):
    """Ground truth of one frame: its index, its timestamp (``index / fps``), its boxes."""

    frame_index: int
    timestamp_s: float
    boxes: tuple[Box, ...]


#: Schedules made by :func:`make_schedule` put concurrent logos in different quadrants.
_QUADRANTS: tuple[Region, ...] = (
    (0.0, 0.0, 0.5, 0.5),
    (0.5, 0.0, 0.5, 0.5),
    (0.0, 0.5, 0.5, 0.5),
    (0.5, 0.5, 0.5, 0.5),
)


def make_schedule(
    brands: Sequence[Brand], seconds: float, *, seed: int, slots: int = 4
) -> list[Appearance]:
    """A random schedule: in each of ``slots`` (<= 4) frame quadrants, brands come and go
    (on screen 1-4 s, gaps of 0.5-2.5 s), so concurrent logos never overlap."""
    if not brands:
        return []
    rng = np.random.default_rng([seed, 2])
    schedule: list[Appearance] = []
    for q in _QUADRANTS[: max(1, min(slots, 4))]:
        t = float(rng.uniform(0.0, 1.5))
        while t < seconds - 0.5:
            duration = float(rng.uniform(1.0, 4.0))
            end = min(t + duration, seconds)
            qx, qy, qw, qh = q
            rw, rh = qw * float(rng.uniform(0.6, 0.95)), qh * float(rng.uniform(0.35, 0.8))
            rx = qx + float(rng.uniform(0, qw - rw))
            ry = qy + float(rng.uniform(0, qh - rh))
            brand = brands[int(rng.integers(len(brands)))]
            schedule.append(Appearance(brand, round(t, 3), round(end, 3), (rx, ry, rw, rh)))
            t = end + float(rng.uniform(0.5, 2.5))
    schedule.sort(key=lambda a: (a.start_s, a.region))
    return schedule


@dataclass(frozen=True)
class _Motion:
    base_height: float
    cx: float
    cy: float
    amp_x: float
    amp_y: float
    angle: float
    corners: Corners
    phases: tuple[float, float, float, float]
    periods: tuple[float, float, float, float]
    render_height: int


def _four(values: np.ndarray) -> tuple[float, float, float, float]:
    a, b, c, d = (float(v) for v in values)
    return a, b, c, d


def _motion(rng: np.random.Generator, a: Appearance, width: int, height: int) -> _Motion:
    rx, ry, rw, rh = a.region
    px, py, pw, ph = rx * width, ry * height, rw * width, rh * height
    aspect = logo_aspect(a.brand)
    angle = float(rng.uniform(-6, 6))
    # fit the rotated logo, at its largest (+5 %), into 85 % of the region
    rad = math.radians(abs(angle) + 3)
    unit_w = aspect * math.cos(rad) + math.sin(rad)
    unit_h = aspect * math.sin(rad) + math.cos(rad)
    h = min(0.85 * pw / unit_w, 0.85 * ph / unit_h) / 1.05
    h = max(h, 8.0)
    slack_x = max(0.0, (pw - unit_w * h * 1.05) / 2)
    slack_y = max(0.0, (ph - unit_h * h * 1.05) / 2)
    yaw = float(rng.uniform(-0.12, 0.12))
    corners: Corners = ((0.0, yaw / 2), (0.0, -yaw / 2), (0.0, yaw / 2), (0.0, -yaw / 2))
    if rng.random() < 0.4:
        corners = NO_WARP
    return _Motion(
        base_height=h,
        cx=px + pw / 2,
        cy=py + ph / 2,
        amp_x=min(0.8 * slack_x, 0.04 * width),
        amp_y=min(0.8 * slack_y, 0.04 * height),
        angle=angle,
        corners=corners,
        phases=_four(rng.uniform(0, 2 * math.pi, size=4)),
        periods=_four(rng.uniform(2.0, 6.0, size=4)),
        render_height=quantized_height(h * 1.05),
    )


def _placement(a: Appearance, m: _Motion, t: float) -> Placement:
    def wave(k: int) -> float:
        return math.sin(2 * math.pi * t / m.periods[k] + m.phases[k])

    return Placement(
        brand=a.brand,
        cx=m.cx + m.amp_x * wave(0),
        cy=m.cy + m.amp_y * wave(1),
        height=m.base_height * (1 + 0.05 * wave(2)),
        angle=m.angle + 3 * wave(3),
        corners=m.corners,
        render_height=m.render_height,
    )


def frame_count(seconds: float, fps: float) -> int:
    return max(0, round(seconds * fps))


def render_video_frames(
    *,
    brands: Sequence[Brand],
    seconds: float,
    fps: float = 25,
    width: int = 1280,
    height: int = 720,
    seed: int,
    schedule: Sequence[Appearance] | None = None,
) -> Iterator[tuple[FrameTruth, Image.Image]]:
    """The frames of the video :func:`generate_video` writes, with their ground truth."""
    if schedule is None:
        schedule = make_schedule(brands, seconds, seed=seed)
    for a in schedule:
        if not a.end_s > a.start_s:
            raise ValueError(f"appearance of {a.brand.name} ends before it starts")
    rng = np.random.default_rng([seed, 3])
    margin_x, margin_y = round(0.12 * width), round(0.12 * height)
    canvas = make_background(rng, width + 2 * margin_x, height + 2 * margin_y)
    draw_distractors(rng, canvas, list(brands), int(rng.integers(2, 7)))
    start = rng.uniform(0, 1, size=2)
    end = rng.uniform(0, 1, size=2)
    brightness = (float(rng.uniform(0.85, 1.1)), float(rng.uniform(-0.05, 0.05)))
    motions = [
        _motion(np.random.default_rng([seed, 4, k]), a, width, height)
        for k, a in enumerate(schedule)
    ]
    n = frame_count(seconds, fps)
    for i in range(n):
        t = i / fps
        u = 0.5 - 0.5 * math.cos(math.pi * i / max(1, n - 1))  # ease in/out pan
        ox = round((start[0] + (end[0] - start[0]) * u) * 2 * margin_x)
        oy = round((start[1] + (end[1] - start[1]) * u) * 2 * margin_y)
        background = canvas.crop((ox, oy, ox + width, oy + height))
        placements = tuple(
            _placement(a, m, t)
            for a, m in zip(schedule, motions, strict=True)
            if a.start_s <= t < a.end_s
        )
        effects = Effects(brightness=brightness[0] + brightness[1] * math.sin(t))
        scene = compose(SceneSpec(width, height, background, placements, effects))
        yield FrameTruth(i, t, tuple(scene.boxes)), scene.image


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def generate_video(
    path: str | os.PathLike[str],
    *,
    brands: Sequence[Brand],
    seconds: float,
    fps: float = 25,
    width: int = 1280,
    height: int = 720,
    seed: int,
    schedule: Sequence[Appearance] | None = None,
    crf: int = 23,
) -> list[FrameTruth]:
    """Write an H.264 MP4 (yuv420p, keyframe every ``2 * fps`` frames) and return the
    ground truth of every frame. ``schedule=None`` uses ``make_schedule(brands, seconds,
    seed=seed)``. The same arguments write the same bytes."""
    if width % 2 or height % 2:
        raise ValueError("H.264 yuv420p needs even frame dimensions")
    if fps <= 0 or seconds <= 0:
        raise ValueError("seconds and fps must be positive")
    frames = render_video_frames(
        brands=brands, seconds=seconds, fps=fps, width=width, height=height, seed=seed,
        schedule=schedule,
    )  # fmt: skip
    return encode_video(Path(path), frames, fps=fps, width=width, height=height, crf=crf)


def encode_video(
    path: Path,
    frames: Iterable[tuple[FrameTruth, Image.Image]],
    *,
    fps: float,
    width: int,
    height: int,
    crf: int = 23,
) -> list[FrameTruth]:
    """Encode ``frames`` as H.264 (yuv420p, bit-exact, keyframe every ``2 * fps``) into
    ``path`` (written to a temporary name, then renamed); returns their ground truth."""
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}",
        "-i", "-",
        "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast",
        "-g", str(max(1, round(2 * fps))), "-crf", str(crf),
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-movflags", "+faststart", "-f", "mp4",
        os.fspath(tmp),
    ]  # fmt: skip
    truth: list[FrameTruth] = []
    with tempfile.TemporaryFile() as err:
        # fixed argv, no shell: the only variable parts are numbers and the output path
        proc = subprocess.Popen(  # noqa: S603  # nosec B603
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err
        )
        assert proc.stdin is not None
        try:
            for gt, image in frames:
                proc.stdin.write(image.tobytes())
                truth.append(gt)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
            code = proc.wait()
        if code != 0:
            tmp.unlink(missing_ok=True)
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise RuntimeError(f"ffmpeg failed ({code}): {message}")
    tmp.replace(path)
    return truth
