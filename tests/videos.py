"""Small, deterministic test videos, made with the ffmpeg binary of imageio-ffmpeg.

Every generator writes one file at ``path`` and returns the path. Unless said
otherwise a video is 320x240 H.264 in MP4 whose pixels say which frame they are
(see :func:`frame_number`): the top half is eight vertical stripes, the binary
code of the frame's decoding-order number ``N`` modulo 256 (least significant
bit on the left, white = 1), and the bottom half is white on the left, black on
the right (an orientation mark). Encoding is single-threaded with no scene-cut
keyframes, so keyframes fall exactly every ``gop`` frames and repeated runs give
the same bytes.

Used by ``tests/integration/test_framer_videos.py`` and ``bench/framer.py``.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 320, 240
BITS = 8  # stripes in the frame-number code

# Frame N: top half = bits of N (bit k in stripe k, left to right); bottom half = L white/R black.
_PATTERN = (
    f"geq=lum='if(lt(Y,H/2),255*mod(floor(mod(N,256)/pow(2,floor(X*{BITS}/W))),2),255*lt(X,W/2))'"
)

# Durations (in 1/30 s) of the frames of vfr(), cycled: irregular, from 33 ms to 133 ms.
VFR_TICKS = (1, 2, 1, 3, 1, 4, 2)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(args: Sequence[str]) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _pattern_source(fps: float, frames: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> list[str]:
    w, h = size
    return [
        "-f",
        "lavfi",
        "-i",
        f"color=c=black:s={w}x{h}:r={fps}:d={frames / fps:.6f},format=gray,{_PATTERN}",
    ]


def _x264(gop: int, bframes: int, preset: str = "veryfast", threads: int = 1) -> list[str]:
    return [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-bf",
        str(bframes),
        "-threads",
        str(threads),
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
    ]


def cfr(path: Path, fps: int = 30, seconds: float = 6, gop: int = 30, bframes: int = 2) -> Path:
    """Constant frame rate; a keyframe every ``gop`` frames; ``bframes`` B-frames at most."""
    _run([*_pattern_source(fps, round(fps * seconds)), *_x264(gop, bframes), str(path)])
    return path


def no_bframes(path: Path, fps: int = 30, seconds: float = 6, gop: int = 30) -> Path:
    """Constant frame rate without B-frames (presentation order = decoding order)."""
    return cfr(path, fps=fps, seconds=seconds, gop=gop, bframes=0)


def vfr_times(frames: int) -> list[float]:
    """Presentation times of the frames of :func:`vfr` (seconds, from 0)."""
    times, t = [], 0
    for n in range(frames):
        times.append(t / 30)
        t += VFR_TICKS[n % len(VFR_TICKS)]
    return times


def vfr(path: Path, frames: int = 84, gop: int = 15, bframes: int = 2) -> Path:
    """Variable frame rate: frame durations cycle through ``VFR_TICKS`` / 30 s.

    Made at 30 fps, then ``setpts`` moves frame N to ``vfr_times(frames)[N]`` and
    ``-fps_mode vfr`` keeps those times (no duplicated or dropped frames). The
    default 84 frames start within 5.53 s: a mean rate of about 15 fps. (MP4 stores
    each sample's duration as the gap between decoding times, so packet durations
    are not the frame durations: only the presentation times vary.)
    """
    cycle = len(VFR_TICKS)
    per_cycle = sum(VFR_TICKS)
    offsets = [sum(VFR_TICKS[:i]) for i in range(cycle)]
    # offset of N inside its cycle, as nested ifs on mod(N, cycle)
    expr = "0"
    for i in range(cycle - 1, 0, -1):
        expr = f"if(eq(mod(N\\,{cycle})\\,{i})\\,{offsets[i]}\\,{expr})"
    setpts = f"setpts=(floor(N/{cycle})*{per_cycle}+{expr})/30/TB"
    _run(
        [
            *_pattern_source(30, frames),
            "-vf",
            setpts,
            "-fps_mode",
            "vfr",
            "-video_track_timescale",
            "90000",
            *_x264(gop, bframes),
            str(path),
        ]
    )
    return path


def rotated(path: Path, degrees: int = 90, source: Path | None = None) -> Path:
    """A CFR video (or ``source``) remuxed with a display matrix: players turn it
    ``degrees`` clockwise (the convention of ``VideoInfo.rotation``)."""
    if source is None:
        source = path.with_name(path.stem + ".unrotated.mp4")
        cfr(source)
    # -display_rotation is counter-clockwise (ffmpeg >= 6, an input option).
    _run(["-display_rotation:v:0", str(-degrees), "-i", str(source), "-c", "copy", str(path)])
    return path


def audio_only(path: Path, seconds: float = 2) -> Path:
    """An MP4 (M4A) holding only an AAC sine tone."""
    _run(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-c:a",
            "aac",
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-f",
            "mp4",
            str(path),
        ]
    )
    return path


def truncated(
    path: Path, keep: float = 0.5, faststart: bool = False, source: Path | None = None
) -> Path:
    """A real MP4 (a CFR video, or ``source``) cut after ``keep`` of its bytes.

    Without ``faststart`` the index (moov) is at the end, so it is lost: unreadable.
    With it, the index is moved to the front and survives; the media data stops early.
    """
    if source is None:
        source = cfr(path.with_name(path.stem + ".full.mp4"))
    if faststart:
        moved = path.with_name(path.stem + ".faststart.mp4")
        _run(["-i", str(source), "-c", "copy", "-movflags", "+faststart", str(moved)])
        source = moved
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def mp4_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level MP4 boxes: type -> (payload offset, payload size)."""
    boxes: dict[str, tuple[int, int]] = {}
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = len(data) - pos
        boxes.setdefault(kind.decode("latin-1"), (pos + header, size - header))
        pos += size
    return boxes


def corrupt(path: Path, fraction: float = 0.05, seed: int = 7, source: Path | None = None) -> Path:
    """A CFR MP4 (or ``source``) whose media data (mdat) has ``fraction`` of its bytes,
    around its middle, overwritten with (seeded) random bytes. The index stays valid."""
    if source is None:
        source = cfr(path.with_name(path.stem + ".clean.mp4"))
    data = bytearray(source.read_bytes())
    offset, size = mp4_boxes(bytes(data))["mdat"]
    count = max(1, int(size * fraction))
    start = offset + (size - count) // 2
    data[start : start + count] = random.Random(seed).randbytes(count)
    path.write_bytes(bytes(data))
    return path


def long_1080p(
    path: Path | None = None, seconds: int = 120, gop_seconds: float = 2, fps: int = 30
) -> Path:
    """1920x1080 H.264 (libx264 veryfast, testsrc2), ``gop_seconds`` between keyframes.

    Cached: with no ``path`` it goes to ``$TMPDIR/brandlens-bench-videos/`` (or
    $BRANDLENS_VIDEO_CACHE) under a name holding its parameters, and an existing
    file is reused (about 1.5 minutes to make on 2 cores; ~60 MB).
    """
    if path is None:
        cache = Path(
            os.environ.get("BRANDLENS_VIDEO_CACHE")
            or Path(tempfile.gettempdir()) / "brandlens-bench-videos"
        )
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"testsrc2_1080p{fps}_{seconds}s_gop{gop_seconds:g}s.mp4"
    if path.exists() and path.stat().st_size > 0:
        return path
    partial = path.with_name(path.name + ".part.mp4")
    gop = round(gop_seconds * fps)
    _run(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1920x1080:rate={fps}:duration={seconds}",
            *_x264(gop, 2, threads=0),
            str(partial),
        ]
    )
    partial.replace(path)
    return path


# -- reading the frame-number code back ------------------------------------------


def frame_number(image: Any, rotation: int = 0) -> int:
    """The frame number coded in a decoded frame (a Pillow image), or -1 if unreadable.

    ``rotation``: degrees clockwise the frame was turned for display; it is turned
    back first. Each stripe's middle is averaged, so scaling and compression do
    not matter; the orientation mark must read white-left/black-right.
    """
    from PIL import ImageStat

    gray = image.convert("L")
    if rotation:
        gray = gray.rotate(rotation, expand=True)  # PIL turns counter-clockwise
    w, h = gray.size

    def mean(x0: float, y0: float, x1: float, y1: float) -> float:
        box = gray.crop((int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)))
        return float(ImageStat.Stat(box).mean[0])

    if not (mean(0.1, 0.6, 0.4, 0.9) > 160 and mean(0.6, 0.6, 0.9, 0.9) < 96):
        return -1
    number = 0
    for bit in range(BITS):
        level = mean((bit + 0.3) / BITS, 0.1, (bit + 0.7) / BITS, 0.4)
        if 64 <= level <= 192:
            return -1  # neither black nor white: not our pattern
        number |= (level > 128) << bit
    return number
