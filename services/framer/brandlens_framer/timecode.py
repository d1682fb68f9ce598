"""SMPTE timecode from a presentation time."""

from __future__ import annotations

import math


def nominal_rate(fps: float) -> tuple[int, bool, float]:
    """(frames per second of the labels, drop-frame?, real frame rate) for a frame rate."""
    if fps <= 0 or not math.isfinite(fps):
        return 25, False, 25.0
    for ntsc in (23.976, 29.97, 47.952, 59.94, 119.88):
        if abs(fps - ntsc) < 0.01:
            rounded = round(fps)
            # NTSC rates run at 1000/1001 of their labels; 23.976 has no drop-frame form.
            return rounded, rounded in (30, 60, 120), rounded * 1000 / 1001
    return max(1, round(fps)), False, float(max(1, round(fps)))


def smpte(seconds: float, fps: float) -> str:
    """``HH:MM:SS:FF`` (``HH:MM:SS;FF`` for drop-frame 29.97/59.94) at time ``seconds``."""
    rate, drop, real_rate = nominal_rate(fps)
    seconds = max(0.0, seconds)
    if not drop:
        frame = math.floor(seconds * real_rate + 1e-6)
        ff = frame % rate
        total_s = frame // rate
        return f"{total_s // 3600:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d}:{ff:02d}"
    # Drop-frame: count real frames at 30000/1001, skip labels 0 and 1 (2 and 3 at 59.94)
    # at every minute except each tenth.
    frame = math.floor(seconds * real_rate + 1e-6)
    dropped = 2 * rate // 30
    per_10min = rate * 600 - dropped * 9
    per_min = rate * 60 - dropped
    tens, rem = divmod(frame, per_10min)
    if rem > dropped:
        frame += dropped * 9 * tens + dropped * ((rem - dropped) // per_min)
    else:
        frame += dropped * 9 * tens
    ff = frame % rate
    total_s = frame // rate
    return f"{total_s // 3600:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d};{ff:02d}"
