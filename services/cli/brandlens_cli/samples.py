"""Deterministic sample media for ``brandlens demo``, made on this machine.

The image is drawn with Pillow; the video is rendered by the ffmpeg binary that
``imageio-ffmpeg`` ships. Nothing is downloaded. Files are written to a
temporary name and renamed, so a half-written sample is never left behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

WIDTH, HEIGHT = 1280, 720
FAKE_VIDEO_TEXT = (
    "This is a text file, not a video.\n"
    "brandlens demo renames it to .mp4 to show that ingest checks the bytes, "
    "not the file name.\n"
)


class SampleError(RuntimeError):
    """A sample could not be made."""


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def make_sample_image(path: Path) -> Path:
    """A 1280x720 JPEG: a made-up "logo" (shapes and a word) on a gradient background."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT):  # a vertical grey-blue gradient: a plain "shelf" background
        shade = 40 + (y * 120) // HEIGHT
        draw.line([(0, y), (WIDTH, y)], fill=(shade, shade + 10, shade + 30))
    for x in range(0, WIDTH, 160):  # shelf dividers
        draw.rectangle([x, 560, x + 150, 600], fill=(120, 90, 60))
    # The logo: a badge with a ring, a triangle and the brand name.
    draw.rounded_rectangle([340, 170, 940, 470], radius=40, fill=(250, 250, 245))
    draw.ellipse([380, 210, 600, 430], fill=(220, 30, 40))
    draw.ellipse([430, 260, 550, 380], fill=(250, 250, 245))
    draw.polygon([(470, 350), (510, 280), (550, 350)], fill=(20, 90, 200))
    font = ImageFont.load_default(size=64)
    draw.text((620, 260), "ACME", font=font, fill=(20, 20, 30))
    draw.text((620, 340), "cola", font=ImageFont.load_default(size=44), fill=(220, 30, 40))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        image.save(tmp, "JPEG", quality=90, optimize=False, progressive=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise SampleError(
            f"no ffmpeg binary to make the sample video ({exc}); "
            "install the 'local' extra: pip install 'brandlens[local]'"
        ) from exc


def make_sample_video(path: Path, seconds: float = 10) -> Path:
    """An H.264 MP4 (1280x720, 25 fps, ``faststart``): ffmpeg's test pattern and a red box."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    exe = ffmpeg_exe()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    argv = [
        exe,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25,drawbox=x=80:y=80:w=240:h=120:color=red@1:t=fill",
        "-t",
        f"{seconds:g}",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "50",
        # One thread and bit-exact muxing: the same bytes on every run.
        "-threads",
        "1",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(tmp),
    ]
    try:
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, our own binary
                argv, capture_output=True, timeout=300, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SampleError(f"could not run ffmpeg ({exe}): {exc}") from exc
        if result.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            detail = result.stderr.decode("utf-8", "replace").strip()[-2000:] or "no output"
            raise SampleError(
                f"ffmpeg failed with exit code {result.returncode} making {path}: {detail}"
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def make_fake_video(path: Path) -> Path:
    """A text file named like a video, which ingest must reject."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_VIDEO_TEXT, encoding="utf-8")
    return path
