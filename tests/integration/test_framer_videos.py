"""The framer's probe, plan and extraction on real videos, against independent ground truth.

Each test runs with both toolsets a machine may have: Debian's ffmpeg + ffprobe
(skipped where absent) and the ffmpeg-only binary of imageio-ffmpeg. The videos
come from ``tests/videos.py``: each frame's pixels code its frame number, so a
JPEG the framer outputs can be traced back to the exact source frame. Ground
truth for timestamps and keyframes is ffmpeg decoding every frame through
``showinfo`` (exact ``pts`` x ``time_base``), independent of the probe's
packet listing (ffprobe or ``framecrc``).
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import re
import subprocess
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from brandlens_framer import extract as extraction
from brandlens_framer import plan as planning
from brandlens_framer.extract import Extractor, Frame, OutputOptions
from brandlens_framer.plan import Plan, Strategy
from brandlens_framer.probe import VideoInfo, probe
from brandlens_framer.tools import FramingError, Tools
from tests import videos

pytestmark = pytest.mark.integration

DEBIAN_FFMPEG = "/usr/bin/ffmpeg"
DEBIAN_FFPROBE = "/usr/bin/ffprobe"
OUTPUT = OutputOptions(longest_side_px=1280, jpeg_quality=90)
EPS = 1e-6
PLAYABLE = ["cfr", "no_bframes", "vfr", "rotated"]


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["debian", "imageio-ffmpeg-only"])
def tools(request: pytest.FixtureRequest) -> Tools:
    if request.param == "debian":
        missing = [p for p in (DEBIAN_FFMPEG, DEBIAN_FFPROBE) if not os.path.exists(p)]
        if missing:
            pytest.skip(
                f"Debian's ffmpeg toolset is not installed ({', '.join(missing)} absent; "
                "apt-get install ffmpeg); the imageio-ffmpeg-only toolset still runs"
            )
        return Tools(ffmpeg=DEBIAN_FFMPEG, ffprobe=DEBIAN_FFPROBE)
    return Tools(ffmpeg=videos.ffmpeg_exe(), ffprobe=None)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test video, made once (two at a time)."""
    d = tmp_path_factory.mktemp("videos")
    cfr = videos.cfr(d / "cfr.mp4")
    jobs: dict[str, Callable[[], Path]] = {
        "no_bframes": lambda: videos.no_bframes(d / "no_bframes.mp4"),
        "vfr": lambda: videos.vfr(d / "vfr.mp4"),
        "rotated": lambda: videos.rotated(d / "rotated.mp4", 90, source=cfr),
        "rotated180": lambda: videos.rotated(d / "rotated180.mp4", 180, source=cfr),
        "rotated270": lambda: videos.rotated(d / "rotated270.mp4", 270, source=cfr),
        "audio_only": lambda: videos.audio_only(d / "audio_only.m4a"),
        "truncated": lambda: videos.truncated(d / "truncated.mp4", source=cfr),
        "truncated_faststart": lambda: videos.truncated(
            d / "truncated_faststart.mp4", faststart=True, source=cfr
        ),
        "corrupt": lambda: videos.corrupt(d / "corrupt.mp4", source=cfr),
        # 3 fps for 130 s: timestamps past 100 s with fractions of a second
        "long_3fps": lambda: videos.cfr(d / "long_3fps.mp4", fps=3, seconds=130, gop=6),
        # 1,500 frames for sample sets past ffmpeg's expression limits; a keyframe every
        # 31 frames, at times that are no whole microsecond (1.0333… s)
        "long_1500": lambda: videos.cfr(d / "long_1500.mp4", fps=30, seconds=50, gop=31),
    }
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {"cfr": cfr, **{name: f.result() for name, f in futures.items()}}


# -- helpers ------------------------------------------------------------------------

_TIME_BASE = re.compile(r"config in time_base: (\d+)/(\d+)")
_SHOWINFO = re.compile(r"\bn:\s*\d+\s+pts:\s*(-?\d+)\s+pts_time:\s*(\S+).*?\biskey:(\d)")


@dataclasses.dataclass(frozen=True)
class Decoded:
    pts: list[float]  # exact: pts x time_base, in presentation order
    keys: list[bool]
    printed_pts_time: list[float]  # what showinfo printed as pts_time


def decode_all(tools: Tools, path: Path, *, keyframes_only: bool = False) -> Decoded:
    """Every frame ffmpeg decodes (with ``showinfo``), independent of the probe."""
    argv = [tools.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-copyts"]
    if keyframes_only:
        argv += ["-skip_frame", "nokey"]
    argv += ["-i", str(path), "-map", "0:v:0", "-vf", "showinfo"]
    argv += ["-fps_mode", "passthrough", "-f", "null", "-"]
    err = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    tb_match = _TIME_BASE.search(err)
    assert tb_match, err[-2000:]
    tb = Fraction(int(tb_match.group(1)), int(tb_match.group(2)))
    rows = _SHOWINFO.findall(err)
    return Decoded(
        pts=[float(int(pts) * tb) for pts, _, _ in rows],
        keys=[key == "1" for _, _, key in rows],
        printed_pts_time=[float(text) for _, text, _ in rows],
    )


async def probed(tools: Tools, path: Path) -> VideoInfo:
    return await probe(str(path), tools, max_duration_seconds=3600)


async def extract(tools: Tools, path: Path, video: VideoInfo, the_plan: Plan) -> list[Frame]:
    return [f async for f in Extractor(tools, OUTPUT).frames(str(path), video, the_plan)]


def forced(the_plan: Plan, strategy: Strategy) -> Plan:
    return dataclasses.replace(the_plan, strategy=strategy)


def servable(video: VideoInfo, targets: list[float]) -> list[int]:
    """Indices of the frames serving ``targets``: the first frame at or after each."""
    frames, start = list(video.frames), video.start_seconds
    found = {bisect_left(frames, start + t - EPS) for t in targets}
    return sorted(i for i in found if i < len(frames))


def frame_numbers(frames: list[Frame], rotation: int) -> list[int]:
    return [videos.frame_number(Image.open(io.BytesIO(f.jpeg)), rotation) for f in frames]


def check_frames(
    video: VideoInfo, targets: list[float], frames: list[Frame], *, content: bool = True
) -> list[float]:
    """Assert each frame is the right one for its target; return the sorted sample pts."""
    pts_list = list(video.frames)
    start = video.start_seconds
    frames = sorted(frames, key=lambda f: f.sample.pts)
    indices = [pts_list.index(f.sample.pts) for f in frames]
    assert indices == servable(video, targets), "not exactly one frame per servable target"
    for f, i in zip(frames, indices, strict=True):
        target = start + f.sample.target_seconds
        assert abs(f.pts - f.sample.pts) <= 1e-4, (f.pts, f.sample.pts)
        assert f.sample.pts >= target - EPS, f"frame at {f.sample.pts} before its target {target}"
        if i > 0:
            duration = pts_list[i] - pts_list[i - 1]
            assert pts_list[i - 1] < target - EPS, "an earlier frame already served the target"
            assert f.sample.pts - target <= duration + EPS, "more than a frame after the target"
        assert (f.width, f.height) == (video.width, video.height)
        assert Image.open(io.BytesIO(f.jpeg)).size == (f.width, f.height)
    if content:
        assert frame_numbers(frames, video.rotation) == [i % 256 for i in indices]
    return [f.sample.pts for f in frames]


# -- the probe against decoding -----------------------------------------------------


@pytest.mark.parametrize("name", PLAYABLE)
async def test_probe_lists_every_frame_and_keyframe_as_decoding_presents_them(
    tools: Tools, library: dict[str, Path], name: str
) -> None:
    video = await probed(tools, library[name])
    decoded = decode_all(tools, library[name])
    assert list(video.frames) == decoded.pts
    assert list(video.keyframes) == [
        t for t, key in zip(decoded.pts, decoded.keys, strict=True) if key
    ]
    if name == "vfr":
        assert list(video.frames) == pytest.approx(videos.vfr_times(84), abs=1e-9)
        durations = {round(video.frame_duration(i), 6) for i in range(video.frame_count - 1)}
        assert len(durations) >= 4, f"frame durations do not vary: {sorted(durations)}"
        assert len(video.keyframes) == 6  # one every 15 frames
    else:
        assert list(video.frames) == pytest.approx([n / 30 for n in range(180)], abs=1e-9)
        assert list(video.keyframes) == pytest.approx([float(s) for s in range(6)], abs=1e-9)
        assert video.fps == pytest.approx(30)
        assert video.duration_seconds == pytest.approx(6)
    portrait = name == "rotated"
    assert video.rotation == (90 if portrait else 0)
    assert (video.width, video.height) == ((240, 320) if portrait else (320, 240))


# -- interval sampling ----------------------------------------------------------------

# Strategy expected where the case is clear: 100 ms is far below the keyframe
# spacing (dense: decode everything); 1 s and 2 s land on keyframes of the CFR
# videos (sparse: the keyframe pass is much cheaper). VFR at 1 s (keyframes about
# every second) is left to the plan; so is 1.3 s, off the keyframes, in
# test_decode_all_and_seek_yield_the_same_frames, which runs both strategies.
DENSE, SPARSE = Strategy.DECODE_ALL, Strategy.SEEK
INTERVAL_CASES = [
    *[(name, 0.1, DENSE) for name in PLAYABLE],
    *[(name, 1.0, SPARSE) for name in ("cfr", "no_bframes", "rotated")],
    ("vfr", 1.0, None),
    *[(name, 2.0, SPARSE) for name in PLAYABLE],
]


@pytest.mark.parametrize(("name", "interval", "strategy"), INTERVAL_CASES)
async def test_interval_sampling_takes_the_first_frame_at_or_after_each_target(
    tools: Tools,
    library: dict[str, Path],
    name: str,
    interval: float,
    strategy: Strategy | None,
) -> None:
    video = await probed(tools, library[name])
    targets = planning.interval_targets(video, interval)
    samples = planning.choose(video, targets, max_frames=10_000)
    the_plan = planning.plan(video, samples, interval)
    if strategy is not None:
        assert the_plan.strategy is strategy, the_plan.describe()
    frames = await extract(tools, library[name], video, the_plan)
    assert len(frames) == len(samples) == len(servable(video, targets))
    check_frames(video, targets, frames)


@pytest.mark.parametrize(
    ("name", "interval"), [("cfr", 1.3), ("vfr", 2.0), ("vfr", 1.0), ("no_bframes", 0.7)]
)
async def test_interval_targets_reach_the_end_of_the_video(
    library: dict[str, Path], name: str, interval: float
) -> None:
    tools = Tools(ffmpeg=videos.ffmpeg_exe(), ffprobe=None)
    video = await probed(tools, library[name])
    last = video.frames[-1] - video.start_seconds
    expected = [k * interval for k in range(int(last / interval + EPS) + 1)]
    assert planning.interval_targets(video, interval) == pytest.approx(expected)


@pytest.mark.parametrize(("name", "interval"), [(n, i) for n in PLAYABLE for i in (0.1, 1.3, 2.0)])
async def test_decode_all_and_seek_yield_the_same_frames(
    tools: Tools, library: dict[str, Path], name: str, interval: float
) -> None:
    video = await probed(tools, library[name])
    targets = planning.interval_targets(video, interval)
    the_plan = planning.plan(video, planning.choose(video, targets, 10_000), interval)
    by_strategy = {}
    for strategy in Strategy:
        frames = await extract(tools, library[name], video, forced(the_plan, strategy))
        by_strategy[strategy] = check_frames(video, targets, frames)
    assert by_strategy[Strategy.DECODE_ALL] == by_strategy[Strategy.SEEK]
    assert len(by_strategy[Strategy.SEEK]) == len(the_plan.samples)


async def test_timestamps_past_100_seconds_are_matched(
    tools: Tools, library: dict[str, Path]
) -> None:
    """Frames at e.g. 100.333 s: showinfo's printed pts_time must still match the plan."""
    path = library["long_3fps"]
    video = await probed(tools, path)
    assert video.frame_count == 390
    targets = planning.interval_targets(video, 1.3)
    the_plan = planning.plan(video, planning.choose(video, targets, 10_000), 1.3)
    frames = await extract(tools, path, video, the_plan)
    # ffmpeg 5 prints pts_time with 6 significant digits (100.333): the exact pts is used.
    assert len(frames) == len(the_plan.samples)
    check_frames(video, targets, frames)


# -- sample sets of any size -----------------------------------------------------------


def scattered_targets(video: VideoInfo, count: int, seed: int = 17) -> list[float]:
    """``count`` targets on distinct frames at irregular times (no grid: a set plan)."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(video.frame_count), count))
    return [video.frames[i] - video.start_seconds for i in chosen]


@pytest.mark.parametrize("count", [99, 100, 500, 1200])
async def test_a_sample_set_of_any_size_is_framed_by_either_strategy(
    tools: Tools, library: dict[str, Path], count: int
) -> None:
    """ffmpeg refuses a flat select sum from about 100 terms: a 120 s training video
    with the default 200 scene samples failed with "Cannot allocate memory"."""
    path = library["long_1500"]
    video = await probed(tools, path)
    assert video.frame_count == 1500
    targets = scattered_targets(video, count)
    samples = planning.choose(video, targets, max_frames=10_000)
    assert len(samples) == count
    the_plan = planning.plan(video, samples)  # no interval: a set of points
    assert the_plan.interval_seconds is None
    by_strategy = {}
    for strategy in Strategy:
        frames = await extract(tools, path, video, forced(the_plan, strategy))
        assert len(frames) == count, strategy
        by_strategy[strategy] = check_frames(video, targets, frames)
    assert by_strategy[Strategy.DECODE_ALL] == by_strategy[Strategy.SEEK]


async def test_sets_cut_into_several_commands_lose_and_repeat_no_frame(
    tools: Tools, library: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 7 points a command: chunks of a decode_all set, of the keyframe pass, and of
    one long seek run, each later chunk seeking (a chunk may start on a keyframe)."""
    monkeypatch.setattr(extraction, "MAX_SELECT_POINTS", 7)
    path = library["long_1500"]
    video = await probed(tools, path)
    every_other_keyframe = [k - video.start_seconds for k in video.keyframes[::2]]
    # 19 frames after one keyframe: one seek run longer than a command takes
    run = [video.frames[i] - video.start_seconds for i in range(404, 423)]
    targets = sorted({*every_other_keyframe, *run, *scattered_targets(video, 40, seed=3)})
    samples = planning.choose(video, targets, max_frames=10_000)
    the_plan = planning.plan(video, samples)
    assert 2 * 7 < len(the_plan.keyframe_samples) < len(video.keyframes)
    assert max(len(r.samples) for r in the_plan.runs) > 7
    extractor = Extractor(tools, OUTPUT)
    for strategy in Strategy:
        forced_plan = forced(the_plan, strategy)
        commands = extractor.commands(str(path), video, forced_plan)
        assert all(frames <= 7 for _, frames in commands)
        assert sum(frames for _, frames in commands) == len(samples)
        frames = await extract(tools, path, video, forced_plan)
        assert len(frames) == len(samples), strategy
        check_frames(video, targets, frames)


# -- keyframes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", PLAYABLE)
async def test_keyframe_mode_returns_exactly_the_keyframes(
    tools: Tools, library: dict[str, Path], name: str
) -> None:
    video = await probed(tools, library[name])
    truth = decode_all(tools, library[name], keyframes_only=True)
    assert all(truth.keys)
    assert len(truth.pts) >= 6
    targets = planning.keyframe_targets(video)
    the_plan = planning.plan(video, planning.choose(video, targets, 10_000))
    assert the_plan.strategy is Strategy.SEEK
    for strategy in Strategy:
        frames = await extract(tools, library[name], video, forced(the_plan, strategy))
        assert check_frames(video, targets, frames) == truth.pts, strategy


# -- rotation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "degrees", "size"),
    [("rotated", 90, (240, 320)), ("rotated180", 180, (320, 240)), ("rotated270", 270, (240, 320))],
)
async def test_rotated_video_frames_come_out_as_displayed(
    tools: Tools, library: dict[str, Path], name: str, degrees: int, size: tuple[int, int]
) -> None:
    video = await probed(tools, library[name])
    assert video.rotation == degrees
    assert (video.width, video.height) == size
    targets = planning.interval_targets(video, 1.0)
    the_plan = planning.plan(video, planning.choose(video, targets, 10_000), 1.0)
    for strategy in Strategy:
        frames = await extract(tools, library[name], video, forced(the_plan, strategy))
        assert {(f.width, f.height) for f in frames} == {size}
        # turned back by `degrees` counter-clockwise, the frame reads as its number
        check_frames(video, targets, frames)


# -- failures -----------------------------------------------------------------------------


async def test_an_audio_only_file_is_refused(tools: Tools, library: dict[str, Path]) -> None:
    with pytest.raises(FramingError, match=r"no video stream \(audio only\)"):
        await probed(tools, library["audio_only"])


async def test_a_truncated_file_without_its_index_is_refused(
    tools: Tools, library: dict[str, Path]
) -> None:
    with pytest.raises(FramingError, match="corrupt or truncated"):
        await probed(tools, library["truncated"])


@pytest.mark.parametrize("name", ["truncated_faststart", "corrupt"])
async def test_damaged_media_gives_frames_or_a_clean_framing_error(
    tools: Tools, library: dict[str, Path], name: str
) -> None:
    """Whatever ffmpeg recovers: frames that are the planned ones, or a FramingError."""
    error: FramingError | None = None
    try:
        video = await probed(tools, library[name])
        targets = planning.interval_targets(video, 0.1)
        the_plan = planning.plan(video, planning.choose(video, targets, 10_000), 0.1)
        frames = await extract(tools, library[name], video, the_plan)
    except FramingError as exc:  # any other exception fails the test
        error = exc
    if error is not None:
        assert error.reason
        return
    assert frames, "no frame and no error"
    planned = {s.pts for s in the_plan.samples}
    assert all(f.sample.pts in planned and abs(f.pts - f.sample.pts) <= 1e-4 for f in frames)
    assert len({f.sample.pts for f in frames}) == len(frames)
    for f in frames:
        assert Image.open(io.BytesIO(f.jpeg)).size == (video.width, video.height)


async def test_a_video_above_the_duration_limit_is_refused_with_the_numbers(
    tools: Tools, library: dict[str, Path]
) -> None:
    with pytest.raises(FramingError) as info:
        await probe(str(library["cfr"]), tools, max_duration_seconds=2)
    assert "6 seconds" in info.value.reason
    assert "limit of 2 seconds" in info.value.reason
