"""Run ffmpeg for a plan and stream the sampled frames out as JPEG bytes.

Frames leave ffmpeg through a pipe (``image2pipe``), so nothing touches the
disk, and the pipe gives backpressure: when the caller stops reading (its
uploads are behind), ffmpeg blocks. ``showinfo`` reports each frame's exact
presentation time on stderr, in the same order as the images on stdout.
"""

from __future__ import annotations

import asyncio
import math
import re
from bisect import bisect_left
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import ffmpeg  # ffmpeg-python: builds the command lines

from brandlens_framer.jpeg import JpegSplitter, jpeg_size
from brandlens_framer.plan import Plan, Sample, SeekRun, Strategy
from brandlens_framer.probe import VideoInfo
from brandlens_framer.tools import FramingError, Tools, classify_failure

_SHOWINFO = re.compile(r"\bpts:\s*(-?\d+)\s+pts_time:\s*(-?[\d.]+(?:e-?\d+)?)")
_TIME_BASE = re.compile(r"config in time_base:\s*(\d+)/(\d+)")
GRID_EPSILON = 1e-6
MATCH_TOLERANCE = 1e-4
# Points in one select expression: about 50 characters each, so a command-line argument
# stays far below Linux's 128 KiB limit on one argument (MAX_ARG_STRLEN).
MAX_SELECT_POINTS = 1000


@dataclass(frozen=True)
class Frame:
    sample: Sample
    pts: float  # as ffmpeg presented it
    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True)
class OutputOptions:
    longest_side_px: int
    jpeg_quality: int

    @property
    def qscale(self) -> int:
        # mjpeg's -q:v runs 2 (best) .. 31; map quality 100..1 onto it.
        return max(2, min(31, round(2 + (100 - self.jpeg_quality) * 29 / 99)))

    def filters(self, select: str | None) -> str:
        side = self.longest_side_px
        chain = [f"select='{select}'"] if select else []
        chain.append(
            f"scale=w='if(gte(iw,ih),min({side},iw),-2)':h='if(gte(iw,ih),-2,min({side},ih))'"
            ":out_range=full"
        )
        chain.append("showinfo=checksum=0")
        return ",".join(chain)


def _grid_select(start: float, interval: float) -> str:
    def cell(var: str) -> str:
        return f"floor(({var}-{start:.9f}+{GRID_EPSILON})/{interval:.9f})"

    return f"if(isnan(prev_t),gte(t-{start:.9f}+{GRID_EPSILON},0),gt({cell('t')},{cell('prev_t')}))"


def _set_select(points: list[float]) -> str:
    """A ``select`` expression true at exactly these presentation times.

    A binary search over the sorted points (``if(lt(t,middle),left,right)``), so the
    expression nests about log2(n) deep and costs as much per frame. A flat sum of one
    term per point does not scale: ffmpeg refuses it from about 100 terms ("Cannot
    allocate memory" when the first frame reaches the filter) and parses no sum past
    about 200. The length of one command-line argument still bounds a single
    expression (``MAX_SELECT_POINTS``).
    """
    ordered = sorted(points)
    if not ordered:
        raise ValueError("a select expression needs at least one point")

    def tree(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return f"lt(abs(t-{ordered[lo]:.6f}),{MATCH_TOLERANCE})"
        mid = (lo + hi) // 2
        split = (ordered[mid - 1] + ordered[mid]) / 2
        return f"if(lt(t,{split:.6f}),{tree(lo, mid)},{tree(mid, hi)})"

    return tree(0, len(ordered))


def chunks(samples: Sequence[Sample], size: int | None = None) -> list[list[Sample]]:
    """Samples in time order, cut into runs of at most ``size`` (one ffmpeg command each;
    default ``MAX_SELECT_POINTS``)."""
    size = size or MAX_SELECT_POINTS
    ordered = sorted(samples, key=lambda s: s.pts)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class Extractor:
    def __init__(self, tools: Tools, options: OutputOptions) -> None:
        self._tools = tools
        self._options = options

    def passes(self, url: str, video: VideoInfo, plan: Plan) -> list[list[tuple[list[str], int]]]:
        """The ffmpeg command lines for a plan, with how many frames each must output.

        Each pass is a list of commands run one after the other; passes run side by
        side. A set of samples larger than ``MAX_SELECT_POINTS`` is cut into runs of
        consecutive samples, each run seeking to the keyframe at or before its first
        sample, so the video is still decoded about once whatever the sample count.
        """
        if plan.strategy is Strategy.DECODE_ALL:
            if plan.interval_seconds is not None:
                select = _grid_select(video.start_seconds, plan.interval_seconds)
                return [[(self._command(url, select, len(plan.samples)), len(plan.samples))]]
            return [self._chunked(url, video, plan.samples)]
        passes = []
        if plan.keyframe_samples:
            every = len(plan.keyframe_samples) == len(video.keyframes)
            if every:
                count = len(plan.keyframe_samples)
                passes.append([(self._command(url, None, count, keyframes_only=True), count)])
            else:
                passes.append(self._chunked(url, video, plan.keyframe_samples, keyframes_only=True))
        if plan.runs:
            passes.append(
                [(self._run_command(url, run), len(run.samples)) for run in _split_runs(plan.runs)]
            )
        return passes

    def commands(self, url: str, video: VideoInfo, plan: Plan) -> list[tuple[list[str], int]]:
        """Every command of :meth:`passes`, in order."""
        return [command for one_pass in self.passes(url, video, plan) for command in one_pass]

    def _chunked(
        self, url: str, video: VideoInfo, samples: Sequence[Sample], *, keyframes_only: bool = False
    ) -> list[tuple[list[str], int]]:
        commands = []
        for number, chunk in enumerate(chunks(samples)):
            # The first chunk reads from the start, as one command always did; later
            # ones seek (input seeking lands on the keyframe at or before -ss).
            seek = None if number == 0 else _seek_seconds(video.keyframe_at_or_before(chunk[0].pts))
            argv = self._command(
                url,
                _set_select([s.pts for s in chunk]),
                len(chunk),
                keyframes_only=keyframes_only,
                seek_seconds=seek,
            )
            commands.append((argv, len(chunk)))
        return commands

    def _run_command(self, url: str, run: SeekRun) -> list[str]:
        return self._command(
            url,
            _set_select([s.pts for s in run.samples]),
            len(run.samples),
            seek_seconds=_seek_seconds(run.keyframe_pts),
        )

    def _command(
        self,
        url: str,
        select: str | None,
        frames: int,
        *,
        keyframes_only: bool = False,
        seek_seconds: float | None = None,
    ) -> list[str]:
        input_options: dict[str, object] = {}
        if keyframes_only:
            input_options["skip_frame"] = "nokey"
        if seek_seconds is not None:
            input_options["ss"] = f"{seek_seconds:.6f}"
        if self._tools.threads:
            input_options["threads"] = self._tools.threads
        stream = ffmpeg.input(url, **input_options)
        out = stream.output(
            "pipe:1",
            vf=self._options.filters(select),
            format="image2pipe",
            vcodec="mjpeg",
            an=None,
            sn=None,
            dn=None,
            fps_mode="passthrough",
            **{"q:v": self._options.qscale, "frames:v": frames},
        ).global_args("-hide_banner", "-nostdin", "-nostats", "-copyts", "-loglevel", "info")
        argv: list[str] = out.compile(cmd=self._tools.ffmpeg)
        return argv

    async def frames(self, url: str, video: VideoInfo, plan: Plan) -> AsyncIterator[Frame]:
        """Every sampled frame, as ffmpeg produces them (each command in time order)."""
        matcher = _Matcher(plan.samples)
        producers = [[argv for argv, _ in one_pass] for one_pass in self.passes(url, video, plan)]
        if len(producers) == 1:
            for argv in producers[0]:
                async for frame in self._run(argv, matcher):
                    yield frame
            return
        # Seek plan: the keyframe pass and the seek runs progress side by side,
        # so frames come out roughly in time order whatever the mix.
        queue: asyncio.Queue[Frame | BaseException | None] = asyncio.Queue(maxsize=8)

        async def produce(argvs: list[list[str]]) -> None:
            try:
                for argv in argvs:
                    async for frame in self._run(argv, matcher):
                        await queue.put(frame)
            except BaseException as exc:  # handed to the consumer
                await queue.put(exc)
                return
            await queue.put(None)

        tasks = [asyncio.create_task(produce(p)) for p in producers if p]
        finished = 0
        try:
            while finished < len(tasks):
                item = await queue.get()
                if item is None:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, argv: list[str], matcher: _Matcher) -> AsyncIterator[Frame]:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        times: asyncio.Queue[float] = asyncio.Queue()
        time_base: list[Fraction | None] = [None]
        tail: list[str] = []

        async def read_stderr(stream: asyncio.StreamReader) -> None:
            while line := await stream.readline():
                text = line.decode("utf-8", "replace")
                if "Parsed_showinfo" in text:
                    # pts_time is printed with 6 significant digits (ffmpeg 5), too coarse
                    # past 100 s: use the integer pts and the filter's time base.
                    if (tb_match := _TIME_BASE.search(text)) is not None:
                        time_base[0] = Fraction(int(tb_match.group(1)), int(tb_match.group(2)))
                        continue
                    if (match := _SHOWINFO.search(text)) is not None:
                        exact = time_base[0]
                        value = (
                            float(int(match.group(1)) * exact) if exact else float(match.group(2))
                        )
                        times.put_nowait(value)
                        continue
                tail.append(text)
                del tail[:-40]

        stderr_task = asyncio.create_task(read_stderr(proc.stderr))
        splitter = JpegSplitter()
        try:
            while chunk := await proc.stdout.read(256 * 1024):
                for image in splitter.feed(chunk):
                    pts = await asyncio.wait_for(times.get(), 60)
                    sample = matcher.match(pts)
                    if sample is None:
                        continue
                    width, height = jpeg_size(image)
                    yield Frame(sample=sample, pts=pts, jpeg=image, width=width, height=height)
            await stderr_task
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            stderr_task.cancel()
        if code != 0:
            raise classify_failure("".join(tail), "decode the video")
        if splitter.pending_bytes:
            raise FramingError("ffmpeg stopped in the middle of a frame")


def _seek_seconds(keyframe_pts: float) -> float:
    # Input seeking lands on the keyframe at or before -ss; ceil to the
    # microsecond so rounding never lands on the keyframe before that.
    return math.ceil(keyframe_pts * 1e6) / 1e6


def _split_runs(runs: Sequence[SeekRun]) -> list[SeekRun]:
    """Runs of at most ``MAX_SELECT_POINTS`` samples (a long run seeks to its keyframe again)."""
    return [
        SeekRun(run.keyframe_pts, tuple(chunk)) for run in runs for chunk in chunks(run.samples)
    ]


class _Matcher:
    """Finds the planned sample for a frame ffmpeg produced (by presentation time)."""

    def __init__(self, samples: list[Sample]) -> None:
        self._samples = sorted(samples, key=lambda s: s.pts)
        self._pts = [s.pts for s in self._samples]
        self.unmatched: list[float] = []

    def match(self, pts: float) -> Sample | None:
        i = bisect_left(self._pts, pts - MATCH_TOLERANCE)
        if i < len(self._pts) and abs(self._pts[i] - pts) <= MATCH_TOLERANCE:
            return self._samples[i]
        self.unmatched.append(pts)
        return None
