"""What a video is: codec, size, rotation, rate, duration, and every frame's time.

With ffprobe: its JSON for the stream and a packet listing. With only ffmpeg
(e.g. the binary in the imageio-ffmpeg wheel): ``ffmpeg -i`` for the stream
and the ``framecrc`` muxer over a stream copy for the packets. Both list
packets without decoding anything, and both keep the stream's own
timestamps (``-copyts``), the same ones the extraction sees.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from brandlens_framer.tools import FramingError, Tools, classify_failure, run_capture


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int  # as displayed, rotation applied
    height: int
    rotation: int  # degrees clockwise the player turns the picture: 0, 90, 180, 270
    fps: float  # nominal (average) frame rate
    duration_seconds: float
    frames: array[float]  # presentation time of every frame, seconds, ascending
    keyframes: array[float]  # presentation times of keyframes, ascending

    @property
    def start_seconds(self) -> float:
        return self.frames[0]

    @property
    def frame_count(self) -> int:
        return len(self.frames)

    @property
    def keyframe_interval_seconds(self) -> float:
        if len(self.keyframes) < 2:
            return self.duration_seconds
        gaps = sorted(b - a for a, b in zip(self.keyframes, self.keyframes[1:], strict=False))
        return gaps[len(gaps) // 2]

    def frame_duration(self, index: int) -> float:
        """Duration of frame ``index`` (until the next frame; the last uses the rate)."""
        if index + 1 < len(self.frames):
            return self.frames[index + 1] - self.frames[index]
        return 1.0 / self.fps if self.fps > 0 else 0.04

    def keyframe_at_or_before(self, pts: float) -> float:
        i = bisect_right(self.keyframes, pts + 1e-9) - 1
        return self.keyframes[max(i, 0)]


@dataclass(frozen=True)
class StreamMeta:
    codec: str
    coded_width: int
    coded_height: int
    rotation: int
    fps: float
    duration_seconds: float | None
    time_base: Fraction | None


async def probe(url: str, tools: Tools, *, max_duration_seconds: float) -> VideoInfo:
    meta = await (_meta_ffprobe(url, tools.ffprobe) if tools.ffprobe else _meta_ffmpeg(url, tools))
    if meta.duration_seconds is not None and meta.duration_seconds > max_duration_seconds:
        raise FramingError(
            f"the video is {meta.duration_seconds:.0f} seconds long, above the limit of "
            f"{max_duration_seconds:.0f} seconds"
        )
    if tools.ffprobe:
        packets = await _packets_ffprobe(url, tools.ffprobe, meta)
    else:
        packets = await _packets_framecrc(url, tools)
    if not packets:
        raise FramingError("the video has no frames")
    packets.sort(key=lambda p: p[0])
    frames = array("d", (p[0] for p in packets))
    keyframes = array("d", (p[0] for p in packets if p[2]))
    if not keyframes:
        raise FramingError("the video has no keyframe; it cannot be decoded")
    last_duration = packets[-1][1] if packets[-1][1] > 0 else (1 / meta.fps if meta.fps else 0)
    duration = frames[-1] + last_duration - frames[0]
    if meta.duration_seconds is None and duration > max_duration_seconds:
        raise FramingError(
            f"the video is {duration:.0f} seconds long, above the limit of "
            f"{max_duration_seconds:.0f} seconds"
        )
    fps = meta.fps
    if not (0 < fps < 1000):
        fps = (len(frames) / duration) if duration > 0 else 25.0
    swap = meta.rotation in (90, 270)
    return VideoInfo(
        codec=meta.codec,
        width=meta.coded_height if swap else meta.coded_width,
        height=meta.coded_width if swap else meta.coded_height,
        rotation=meta.rotation,
        fps=fps,
        duration_seconds=duration,
        frames=frames,
        keyframes=keyframes,
    )


# -- ffprobe -------------------------------------------------------------------


async def _meta_ffprobe(url: str, ffprobe: str) -> StreamMeta:
    code, out, err = await run_capture(
        [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", url]
    )
    if code != 0:
        raise classify_failure(err, "read the video")
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as exc:
        raise FramingError(f"ffprobe gave unreadable output ({exc.msg})") from None
    streams: list[dict[str, Any]] = doc.get("streams", [])
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not video:
        kinds = sorted({str(s.get("codec_type")) for s in streams})
        raise FramingError(_no_video_reason(kinds))
    s = video[0]
    rotation = 0
    for side in s.get("side_data_list", []) or []:
        if "rotation" in side:
            rotation = _clockwise(float(side["rotation"]))
    if not rotation and "rotate" in s.get("tags", {}):
        rotation = int(float(s["tags"]["rotate"])) % 360
    duration = _float(s.get("duration")) or _float(doc.get("format", {}).get("duration"))
    return StreamMeta(
        codec=str(s.get("codec_name", "unknown")),
        coded_width=int(s.get("width") or 0),
        coded_height=int(s.get("height") or 0),
        rotation=rotation,
        fps=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate")) or 0.0,
        duration_seconds=duration,
        time_base=_fraction(s.get("time_base")),
    )


async def _packets_ffprobe(
    url: str, ffprobe: str, meta: StreamMeta
) -> list[tuple[float, float, bool]]:
    code, out, err = await run_capture(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,duration,flags",
            "-of",
            "csv=p=0",
            url,
        ]
    )
    if code != 0:
        raise classify_failure(err, "list the video's frames")
    tb = meta.time_base or Fraction(1, 90000)
    packets: list[tuple[float, float, bool]] = []
    for line in out.decode("ascii", "replace").splitlines():
        parts = line.strip().split(",")
        if len(parts) < 3 or not parts[0].lstrip("-").isdigit():
            continue  # N/A timestamps: not presentable
        duration = int(parts[1]) if parts[1].isdigit() else 0
        packets.append((float(int(parts[0]) * tb), float(duration * tb), "K" in parts[2]))
    return packets


# -- ffmpeg only ----------------------------------------------------------------

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\d+:(\d+)[^:]*: Video: (\w+)(.*)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS = re.compile(r"([\d.]+(?:k)?) fps")
_TBN = re.compile(r"([\d.]+(?:k)?) tbn")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_TB_LINE = re.compile(r"^#tb 0: (\d+)/(\d+)")


async def _meta_ffmpeg(url: str, tools: Tools) -> StreamMeta:
    _, _, err = await run_capture([tools.ffmpeg, "-hide_banner", "-nostdin", "-i", url])
    if "Input #0" not in err:
        raise classify_failure(err, "read the video")
    match = _VIDEO.search(err)
    if match is None:
        kinds = sorted(set(re.findall(r"Stream #\d+:\d+[^:]*: (\w+):", err)))
        raise FramingError(_no_video_reason([k.lower() for k in kinds]))
    details = match.group(3)
    size = _SIZE.search(details)
    rotation = 0
    after = err[match.end() :]
    next_stream = after.find("Stream #")
    rot = _ROTATION.search(after if next_stream < 0 else after[:next_stream])
    if rot:
        rotation = _clockwise(float(rot.group(1)))
    fps_match = _FPS.search(details)
    duration_match = _DURATION.search(err)
    duration = None
    if duration_match:
        h, m, s = duration_match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    return StreamMeta(
        codec=match.group(2),
        coded_width=int(size.group(1)) if size else 0,
        coded_height=int(size.group(2)) if size else 0,
        rotation=rotation,
        fps=_k(fps_match.group(1)) if fps_match else 0.0,
        duration_seconds=duration,
        time_base=None,
    )


async def _packets_framecrc(url: str, tools: Tools) -> list[tuple[float, float, bool]]:
    code, out, err = await run_capture(
        [
            tools.ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-copyts",
            "-i",
            url,
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ]
    )
    if code != 0:
        raise classify_failure(err, "list the video's frames")
    tb = Fraction(1, 90000)
    packets: list[tuple[float, float, bool]] = []
    for line in out.decode("ascii", "replace").splitlines():
        if line.startswith("#"):
            tb_match = _TB_LINE.match(line)
            if tb_match:
                tb = Fraction(int(tb_match.group(1)), int(tb_match.group(2)))
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 6:
            continue
        # stream, dts, pts, duration, size, crc[, F=flags]; no F means a keyframe
        key = not any(p.startswith("F=") and int(p[2:], 16) & 1 == 0 for p in parts[6:])
        packets.append((float(int(parts[2]) * tb), float(int(parts[3]) * tb), key))
    return packets


# -- helpers ---------------------------------------------------------------------


def _no_video_reason(kinds: list[str]) -> str:
    if "audio" in kinds:
        return "the file has no video stream (audio only)"
    return "the file has no video stream"


def _clockwise(display_matrix_rotation: float) -> int:
    # ffmpeg reports the display matrix rotation counter-clockwise (-90 = turn right).
    return round(-display_matrix_rotation / 90.0) * 90 % 360


def _rate(value: Any) -> float | None:
    fraction = _fraction(value)
    if fraction is None or fraction <= 0:
        return None
    return float(fraction)


def _fraction(value: Any) -> Fraction | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    try:
        if int(den) == 0:
            return None
        return Fraction(int(num), int(den))
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) and result > 0 else None


def _k(text: str) -> float:
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)
