"""Scene-change candidates: one low-resolution decoding pass with ffmpeg's scene score."""

from __future__ import annotations

import asyncio
import re

from brandlens_framer.tools import Tools, classify_failure

_PTS = re.compile(r"pts_time:\s*(-?[\d.]+)")
_SCORE = re.compile(r"lavfi\.scene_score=([\d.]+)")


async def scene_candidates(
    url: str, tools: Tools, *, threshold: float, width_px: int
) -> list[tuple[float, float]]:
    """(presentation time, scene score) of every frame whose score passes ``threshold``."""
    argv = [
        tools.ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-copyts",
        "-i",
        url,
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        f"scale={width_px}:-2,select='gt(scene,{threshold})',metadata=print:key=lavfi.scene_score",
        "-f",
        "null",
        "-",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    candidates: list[tuple[float, float]] = []
    pending: float | None = None
    tail: list[str] = []
    try:
        while line := await proc.stderr.readline():
            text = line.decode("utf-8", "replace")
            if "Parsed_metadata" in text:
                if (pts := _PTS.search(text)) is not None:
                    pending = float(pts.group(1))
                elif (score := _SCORE.search(text)) is not None and pending is not None:
                    candidates.append((pending, float(score.group(1))))
                    pending = None
                continue
            tail.append(text)
            del tail[:-40]
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if code != 0:
        raise classify_failure("".join(tail), "find scene changes in the video")
    return candidates
