"""Per-job, per-brand statistics from the detections of every sampled frame.

Time model: frames are samples. A frame at ``t`` stands for the time until the next
sampled frame (the last one for the median spacing), so screen time is the sum of
the spans of the frames that show the brand, whatever the sampling interval or the
video's frame rate.

- **appearance**: a run of frames showing the brand; runs closer than
  ``merge_gap_ms`` are merged (a logo hidden for a moment is one appearance);
- **qualifying screen time**: frames where the brand's boxes cover at least
  ``min_box_share`` of the frame, in runs (merged the same way) lasting at least
  ``min_duration_ms``;
- **share of voice**: the brand's screen time over all brands' screen time; for an image,
  which has no screen time, the brand's detections over all brands' detections;
- **per minute**: share of the minute's sampled frames showing the brand, and seconds;
- **screen map**: where the brand's box centres fall on a 3x3 grid (row-major,
  top-left first).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

from brandlens_core.results import (
    SCHEMA_VERSION,
    AggregationSettings,
    Appearance,
    BrandStats,
    ImageDetections,
    MinuteStats,
    Summary,
)

__all__ = [
    "SCHEMA_VERSION",
    "AggregationSettings",
    "Appearance",
    "BrandStats",
    "ImageDetections",
    "MinuteStats",
    "Summary",
    "aggregate",
    "timecode",
]


def timecode(ms: float) -> str:
    """``HH:MM:SS.mmm`` of a time in milliseconds."""
    total = round(ms)
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _spans(stamps: Sequence[float]) -> list[float]:
    """How long each sampled frame stands for: until the next one (the last: the median)."""
    if not stamps:
        return []
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    last = statistics.median(gaps) if gaps else 0.0
    return [*gaps, last]


def _runs(
    hits: list[int], stamps: list[float], spans: list[float], gap_ms: float
) -> list[list[int]]:
    """Positions of frames grouped into runs, merging runs closer than ``gap_ms``."""
    runs: list[list[int]] = []
    for position in hits:
        if runs:
            previous = runs[-1][-1]
            end = stamps[previous] + spans[previous]
            consecutive = position == previous + 1
            if consecutive or stamps[position] - end < gap_ms:
                runs[-1].append(position)
                continue
        runs.append([position])
    return runs


def _box_share(labels: list[dict[str, Any]]) -> float:
    area = 0.0
    for label in labels:
        box = label.get("box") or {}
        area += float(box.get("width") or 0.0) * float(box.get("height") or 0.0)
    return min(area, 1.0)


def aggregate(
    frames: Sequence[dict[str, Any]],
    *,
    job_id: str,
    project: str | None,
    model: str | None,
    media_kind: str,
    settings: AggregationSettings,
) -> Summary:
    """The job's summary from its frames (``index``, ``timestamp_ms``, ``key``, ``labels``
    with ``name``, ``confidence`` (0-100) and ``box`` ratios)."""
    ordered = sorted(frames, key=lambda f: (float(f["timestamp_ms"]), int(f["index"])))
    stamps = [float(f["timestamp_ms"]) for f in ordered]
    spans = _spans(stamps)
    duration = (stamps[-1] + spans[-1] - stamps[0]) if stamps else 0.0
    interval = statistics.median(spans) if len(spans) > 1 else None
    names = sorted({str(x["name"]) for f in ordered for x in f.get("labels", []) if x.get("name")})
    minute_frames: dict[int, int] = {}
    for stamp in stamps:
        minute_frames[int(stamp // 60_000)] = minute_frames.get(int(stamp // 60_000), 0) + 1
    per_brand: dict[str, BrandStats] = {}
    screen: dict[str, float] = {}
    detections: dict[str, int] = {}
    for name in names:
        hits, confidences, shares = [], [], []
        boxes = 0
        grid = [[0, 0, 0] for _ in range(3)]
        for position, frame in enumerate(ordered):
            own = [x for x in frame.get("labels", []) if x.get("name") == name]
            if not own:
                continue
            hits.append(position)
            boxes += len(own)
            confidences.append(max(float(x.get("confidence") or 0.0) for x in own))
            shares.append(_box_share(own))
            for x in own:
                box = x.get("box")
                if box:
                    cx = float(box["left"]) + float(box["width"]) / 2
                    cy = float(box["top"]) + float(box["height"]) / 2
                    grid[min(int(cy * 3), 2)][min(int(cx * 3), 2)] += 1
        share_at = dict(zip(hits, shares, strict=True))
        runs = _runs(hits, stamps, spans, settings.merge_gap_ms)
        appearances = []
        for run in runs:
            start = stamps[run[0]]
            end = stamps[run[-1]] + spans[run[-1]]
            proof = max(run, key=lambda p: (share_at[p], -p))
            appearances.append(
                Appearance(
                    start_ms=start, end_ms=end, start_timecode=timecode(start),
                    end_timecode=timecode(end), duration_ms=end - start, frames=len(run),
                    proof_frame_index=int(ordered[proof]["index"]),
                )
            )  # fmt: skip
        qualifying_hits = [p for p in hits if share_at[p] >= settings.min_box_share]
        qualifying = 0.0
        for run in _runs(qualifying_hits, stamps, spans, settings.merge_gap_ms):
            if stamps[run[-1]] + spans[run[-1]] - stamps[run[0]] >= settings.min_duration_ms:
                qualifying += sum(spans[p] for p in run)
        on_screen = sum(spans[p] for p in hits)
        screen[name] = on_screen
        detections[name] = boxes
        minutes: dict[int, list[float]] = {}
        for p in hits:
            minutes.setdefault(int(stamps[p] // 60_000), []).append(spans[p])
        per_brand[name] = BrandStats(
            brand=name,
            frames=len(hits),
            detections=boxes,
            share_of_frames=round(len(hits) / len(ordered), 6),
            screen_time_ms=round(on_screen, 3),
            qualifying_screen_time_ms=round(qualifying, 3),
            share_of_voice=0.0,
            first_seen_ms=stamps[hits[0]],
            last_seen_ms=stamps[hits[-1]],
            first_seen_timecode=timecode(stamps[hits[0]]),
            last_seen_timecode=timecode(stamps[hits[-1]]),
            mean_confidence=round(statistics.fmean(confidences), 3),
            max_confidence=round(max(confidences), 3),
            mean_box_share=round(statistics.fmean(shares), 6),
            appearances=appearances,
            per_minute=[
                MinuteStats(
                    minute=m,
                    frames=count,
                    frames_with_brand=len(minutes.get(m, [])),
                    share=round(len(minutes.get(m, [])) / count, 6),
                    seconds=round(sum(minutes.get(m, [])) / 1000, 3),
                )
                for m, count in sorted(minute_frames.items())
            ],
            screen_map=grid,
        )
    # a still has no time on screen: its brands share the voice by detections
    basis = "detections" if media_kind == "image" else "screen_time"
    weights: dict[str, float] = dict(detections) if basis == "detections" else screen
    total = sum(weights.values())
    for name, stats in per_brand.items():
        stats.share_of_voice = round(weights[name] / total, 6) if total else 0.0
    images = []
    if media_kind == "image":
        images = [
            ImageDetections(
                frame_index=int(f["index"]), key=str(f.get("key", "")), labels=f["labels"]
            )
            for f in ordered
        ]
    return Summary(
        job_id=job_id,
        project=project,
        model=model,
        media_kind=media_kind,
        share_of_voice_basis=basis,
        frame_count=len(ordered),
        duration_ms=round(duration, 3),
        sampling_interval_ms=interval,
        settings=settings,
        brands=per_brand,
        frame_indexes=sorted(int(f["index"]) for f in ordered),
        images=images,
    )
