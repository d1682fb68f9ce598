"""Which frames to take, and the cheapest correct way to decode them.

Targets are times relative to the first frame. Each target is served by the
first frame presented at or after it (so a sampled frame is never more than
one frame duration from its target). Then the decoding strategy:

* ``decode_all``: one ffmpeg pass over the whole video with a ``select``
  filter: every frame is decoded once. Best when samples are dense (the
  interval is at or below the keyframe spacing).
* ``seek``: only what the samples need. Samples that are keyframes come from
  one pass that decodes keyframes only (``-skip_frame nokey``); every other
  sample is decoded from the keyframe before it (input seeking), samples
  sharing a keyframe in one run. Best when samples are sparse.

The choice compares the frames each strategy decodes (a keyframe counted as
two, each extra ffmpeg process as a fixed overhead).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from enum import StrEnum

from brandlens_framer.probe import VideoInfo

KEYFRAME_COST = 2.0  # a keyframe costs about two inter frames to decode
PROCESS_OVERHEAD_FRAMES = 12.0  # starting ffmpeg, opening and seeking the input
SEEK_IF_CHEAPER_THAN = 0.6  # take the seek plan when it decodes < 60 % of decode_all


class Strategy(StrEnum):
    DECODE_ALL = "decode_all"
    SEEK = "seek"


@dataclass(frozen=True)
class Sample:
    index: int  # position in the job's frame sequence
    pts: float  # presentation time of the source frame (stream time base, seconds)
    target_seconds: float  # requested time, relative to the first frame
    is_keyframe: bool
    source_frame: int = 0  # the frame's position among all frames of the video (0-based)


@dataclass(frozen=True)
class SeekRun:
    """Samples decoded from one keyframe onwards."""

    keyframe_pts: float
    samples: tuple[Sample, ...]


@dataclass
class Plan:
    samples: list[Sample]
    strategy: Strategy
    keyframe_samples: list[Sample] = field(default_factory=list)
    runs: list[SeekRun] = field(default_factory=list)
    decode_all_cost: float = 0.0
    seek_cost: float = 0.0
    interval_seconds: float | None = None  # set when the samples follow a regular grid

    def describe(self) -> dict[str, object]:
        return {
            "strategy": self.strategy.value,
            "samples": len(self.samples),
            "keyframe_samples": len(self.keyframe_samples),
            "seek_runs": len(self.runs),
            "decode_all_cost_frames": round(self.decode_all_cost),
            "seek_cost_frames": round(self.seek_cost),
        }


def interval_targets(video: VideoInfo, interval_seconds: float) -> list[float]:
    """0, I, 2I, … up to the last frame's presentation time (every target a frame can serve)."""
    if interval_seconds <= 0:
        raise ValueError("the sampling interval must be positive")
    span = video.frames[-1] - video.start_seconds
    count = math.floor(span / interval_seconds + 1e-9) + 1
    return [k * interval_seconds for k in range(count)]


def keyframe_targets(video: VideoInfo) -> list[float]:
    return [k - video.start_seconds for k in video.keyframes]


def choose(video: VideoInfo, targets: list[float], max_frames: int) -> list[Sample]:
    """The source frame for each target: the first frame at or after it. One sample per frame."""
    frames = video.frames
    start = video.start_seconds
    keyframes = set(video.keyframes)
    tolerance = 1e-6
    samples: list[Sample] = []
    seen: set[int] = set()
    for target in sorted(targets):
        i = bisect_left(frames, start + target - tolerance)
        if i >= len(frames):
            break
        if i in seen:
            continue  # a long frame (variable rate) covers several targets
        seen.add(i)
        samples.append(
            Sample(
                index=len(samples),
                pts=frames[i],
                target_seconds=target,
                is_keyframe=frames[i] in keyframes,
                source_frame=i,
            )
        )
        if len(samples) >= max_frames:
            break
    return samples


def plan(video: VideoInfo, samples: list[Sample], interval_seconds: float | None = None) -> Plan:
    keyframe_samples = [s for s in samples if s.is_keyframe]
    by_keyframe: dict[float, list[Sample]] = {}
    for s in samples:
        if not s.is_keyframe:
            by_keyframe.setdefault(video.keyframe_at_or_before(s.pts), []).append(s)
    runs = [SeekRun(k, tuple(v)) for k, v in sorted(by_keyframe.items())]
    frame_position = {pts: i for i, pts in enumerate(video.frames)}
    seek_cost = 0.0
    if keyframe_samples:
        seek_cost += PROCESS_OVERHEAD_FRAMES + KEYFRAME_COST * len(video.keyframes)
    for run in runs:
        span = frame_position[run.samples[-1].pts] - frame_position.get(run.keyframe_pts, 0) + 1
        seek_cost += PROCESS_OVERHEAD_FRAMES + span + (KEYFRAME_COST - 1)
    decode_all_cost = (
        PROCESS_OVERHEAD_FRAMES + video.frame_count + (KEYFRAME_COST - 1) * len(video.keyframes)
    )
    strategy = (
        Strategy.SEEK if seek_cost < SEEK_IF_CHEAPER_THAN * decode_all_cost else Strategy.DECODE_ALL
    )
    return Plan(
        samples=samples,
        strategy=strategy,
        keyframe_samples=keyframe_samples,
        runs=runs,
        decode_all_cost=decode_all_cost,
        seek_cost=seek_cost,
        interval_seconds=interval_seconds,
    )


def spread_evenly(candidates: list[tuple[float, float]], duration: float, cap: int) -> list[float]:
    """Pick at most ``cap`` times from (time, score) candidates, spread over the duration.

    The duration is cut into ``cap`` equal bins; each bin keeps its best-scoring
    candidate. Bins without a scene change get their middle, so a static video
    still yields frames from its whole length, not only its first minutes.
    """
    if cap <= 0 or duration <= 0:
        return []
    width = duration / cap
    best: dict[int, tuple[float, float]] = {}
    for t, score in candidates:
        b = min(cap - 1, max(0, int(t / width)))
        if b not in best or score > best[b][1]:
            best[b] = (t, score)
    times = [best[b][0] if b in best else (b + 0.5) * width for b in range(cap)]
    return sorted(times)
