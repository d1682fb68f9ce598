"""Framer pieces that need no ffmpeg: timecode, the JPEG stream splitter, sampling plans."""

from __future__ import annotations

import io
from array import array

import pytest
from PIL import Image

from brandlens_framer import plan as planning
from brandlens_framer.jpeg import JpegSplitter, JpegStreamError, jpeg_size
from brandlens_framer.probe import VideoInfo
from brandlens_framer.timecode import smpte


@pytest.mark.parametrize(
    ("seconds", "fps", "expected"),
    [
        (0, 25, "00:00:00:00"),
        (1.04, 25, "00:00:01:01"),
        (3661.5, 30, "01:01:01:15"),
        (59.999, 24, "00:00:59:23"),
        # drop-frame: at 29.97 the label after 00:00:59;29 is 00:01:00;02
        (1800 / (30000 / 1001), 29.97, "00:01:00;02"),
        (600.0, 29.97, "00:10:00;00"),
        (10.0, 23.976, "00:00:09:23"),
    ],
)
def test_smpte_timecode(seconds: float, fps: float, expected: str) -> None:
    assert smpte(seconds, fps) == expected


def jpeg(width: int, height: int, seed: int) -> bytes:
    img = Image.effect_noise((width, height), 60 + seed).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_the_splitter_returns_each_image_whatever_the_chunking() -> None:
    images = [jpeg(64, 48, i) for i in range(5)]
    stream = b"".join(images)
    for chunk in (1, 7, 4096, len(stream)):
        splitter = JpegSplitter()
        got: list[bytes] = []
        for i in range(0, len(stream), chunk):
            got += splitter.feed(stream[i : i + chunk])
        assert got == images
        assert splitter.pending_bytes == 0
    assert [jpeg_size(i) for i in images] == [(64, 48)] * 5


def test_the_splitter_refuses_a_stream_that_is_not_jpeg() -> None:
    with pytest.raises(JpegStreamError):
        JpegSplitter().feed(b"\x89PNG\r\n\x1a\n....")


def video(frames: list[float], keyframes: list[float], fps: float = 10.0) -> VideoInfo:
    return VideoInfo(
        codec="h264",
        width=320,
        height=240,
        rotation=0,
        fps=fps,
        duration_seconds=frames[-1] - frames[0] + 1 / fps,
        frames=array("d", frames),
        keyframes=array("d", keyframes),
    )


def cfr(seconds: float, fps: float, gop: int, start: float = 0.0) -> VideoInfo:
    n = int(seconds * fps)
    frames = [start + i / fps for i in range(n)]
    return video(frames, frames[::gop], fps)


def test_each_target_gets_the_first_frame_at_or_after_it() -> None:
    v = cfr(10, 10, 10, start=1.4)  # a stream that starts at 1.4 s
    samples = planning.choose(v, planning.interval_targets(v, 0.25), 1000)
    for s in samples:
        assert s.pts - v.start_seconds >= s.target_seconds - 1e-9
        assert s.pts - v.start_seconds - s.target_seconds < 0.1 + 1e-9
    assert len(samples) == 40


def test_a_long_frame_serves_several_targets_once() -> None:
    v = video([0.0, 0.1, 3.0, 3.1], [0.0])  # variable rate: a 2.9 s frame
    samples = planning.choose(v, [0.0, 1.0, 2.0, 3.0], 100)
    assert [s.pts for s in samples] == [0.0, 3.0]


def test_dense_sampling_decodes_everything_once() -> None:
    v = cfr(120, 30, 60)
    samples = planning.choose(v, planning.interval_targets(v, 0.5), 10_000)
    assert planning.plan(v, samples, 0.5).strategy is planning.Strategy.DECODE_ALL


def test_sampling_on_the_keyframes_decodes_only_keyframes() -> None:
    v = cfr(120, 30, 60)
    samples = planning.choose(v, planning.interval_targets(v, 2.0), 10_000)
    p = planning.plan(v, samples, 2.0)
    assert p.strategy is planning.Strategy.SEEK
    assert len(p.keyframe_samples) == 60
    assert p.runs == []


def test_sparse_samples_between_keyframes_seek() -> None:
    v = cfr(120, 30, 60)
    targets = [t + 0.5 for t in planning.interval_targets(v, 10.0)]
    p = planning.plan(v, planning.choose(v, targets, 10_000), None)
    assert p.strategy is planning.Strategy.SEEK
    assert len(p.runs) == 12
    assert all(r.keyframe_pts <= r.samples[0].pts for r in p.runs)


def test_the_frame_cap_stops_sampling() -> None:
    v = cfr(60, 30, 30)
    assert len(planning.choose(v, planning.interval_targets(v, 0.1), 50)) == 50


def test_scene_picks_are_spread_over_the_whole_video() -> None:
    # All scene changes in the first minute of a ten-minute video:
    candidates = [(float(t), 0.9) for t in range(60)]
    picks = planning.spread_evenly(candidates, 600.0, 10)
    assert len(picks) == 10
    assert picks[0] < 60
    assert picks[-1] > 540  # not just the first minute
