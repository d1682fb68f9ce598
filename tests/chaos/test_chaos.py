"""Chaos: 20 analysis jobs and 1 training job in flight on the embedded stack while a
service process is SIGKILLed every few seconds and the local supervisor restarts it.

Every service is killed in turn (a shuffled round each time, so each one dies several
times), the model-server included. At the end: every job completed or failed with a
reason, every frame of every analysis job analysed exactly once (the framer's manifest,
the per-batch detections and the summary agree), no job stuck, the DLQs empty. The tally
is printed and kept in tests/artifacts/chaos-tally.json.

``make chaos`` runs this alone; ``make test`` (and so .ci/run) runs it with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from brandlens_core.events import Purpose
from brandlens_core.jobs import Job, JobStatus
from brandlens_trainer.models import ModelStatus
from tests.conftest import ARTIFACTS
from tests.pipeline import BASE_PROJECT, Fleet, analysis_video, trained_fleet, training_media

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed"),
]

ANALYSIS_JOBS = 20
DISTINCT_VIDEOS = 4  # each uploaded under several keys: every key is its own job
ANALYSIS_SECONDS = 10.0  # 40 frames at 250 ms: 3 batches of at most 16
RETRAIN_PROJECT = "retrain"
KILL_EVERY_SECONDS = (2.0, 5.0)
SEED = 20261122
DEADLINE_SECONDS = 900


class Monkey:
    """SIGKILLs one service every few seconds: shuffled rounds over every service."""

    def __init__(self, fleet: Fleet, seed: int) -> None:
        self.fleet = fleet
        self.rng = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.timeline: list[tuple[float, str]] = []
        self._task: asyncio.Task[None] | None = None
        self.started = time.monotonic()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        names = sorted(self.fleet.stack.processes)
        while True:
            self.rng.shuffle(names)
            for name in names:
                await asyncio.sleep(self.rng.uniform(*KILL_EVERY_SECONDS))
                process = self.fleet.stack.processes[name]
                if process.process is not None and process.process.returncode is None:
                    process.kill()
                    self.kills[name] += 1
                    self.timeline.append((round(time.monotonic() - self.started, 1), name))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _finished(jobs: list[Job], fleet_models: dict[str, Any]) -> bool:
    if len(jobs) < ANALYSIS_JOBS + 1 or not all(j.terminal for j in jobs):
        return False
    training = next(j for j in jobs if j.purpose is Purpose.TRAINING)
    if training.status is not JobStatus.COMPLETED:
        return True  # no model will come of it
    model = fleet_models.get(RETRAIN_PROJECT)
    return model is not None and model.status is not ModelStatus.TRAINING


def _every(
    depths: list[tuple[float, dict[str, int]]], seconds: float
) -> list[tuple[float, dict[str, int]]]:
    """One sample per ``seconds``, only the queues that held something."""
    out, due = [], 0.0
    for at, sample in depths:
        if at >= due:
            out.append((at, {q: n for q, n in sample.items() if n}))
            due = at + seconds
    return out


async def _state(fleet: Fleet) -> tuple[list[Job], dict[str, Any]]:
    jobs = [
        j
        for j in await fleet.all_jobs()
        if not (j.project == BASE_PROJECT and j.purpose is Purpose.TRAINING)  # the base model's
    ]
    versions = await fleet.models.all(RETRAIN_PROJECT)
    return jobs, ({RETRAIN_PROJECT: versions[-1]} if versions else {})


async def test_jobs_survive_services_killed_every_few_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    debug = {"BRANDLENS_LOG_LEVEL": "DEBUG"}  # message.received lines: what was never settled
    async with trained_fleet(
        tmp_path / "state", tmp_path / "media", stack_name="chaos", extra_env=debug
    ) as fleet:
        base_ready = fleet.timings["base_model_seconds"]
        videos = await asyncio.gather(
            *(
                asyncio.to_thread(
                    analysis_video,
                    fleet.media_dir,
                    fleet.brands,
                    seconds=ANALYSIS_SECONDS,
                    seed=40 + i,
                )
                for i in range(DISTINCT_VIDEOS)
            ),
            asyncio.to_thread(training_media, fleet.media_dir, fleet.brands, seconds=12, seed=9),
        )
        retrain_video = videos.pop()
        restarts_before = {n: p.restarts for n, p in fleet.stack.processes.items()}
        monkey = Monkey(fleet, SEED)
        started = time.monotonic()
        monkey.start()
        await asyncio.gather(
            fleet.submit_training(RETRAIN_PROJECT, retrain_video),
            *(
                fleet.put(f"analysis/{BASE_PROJECT}/chaos-{i:02d}.mp4", videos[i % len(videos)])
                for i in range(ANALYSIS_JOBS)
            ),
        )
        depths: list[tuple[float, dict[str, int]]] = []
        try:
            while True:
                jobs, models = await _state(fleet)
                depths.append((round(time.monotonic() - started, 1), await fleet.queue_depths()))
                if _finished(jobs, models):
                    break
                if time.monotonic() - started > DEADLINE_SECONDS:
                    break  # the tally is written, then the test fails on the stuck jobs
                await asyncio.sleep(2)
        finally:
            await monkey.stop()
        elapsed = time.monotonic() - started
        # the last kill's messages come back within the visibility timeout: let them settle
        await asyncio.sleep(15)
        jobs, models = await _state(fleet)
        final_depths = await fleet.queue_depths()
        restarts = {n: p.restarts - restarts_before[n] for n, p in fleet.stack.processes.items()}
        analysis = [j for j in jobs if j.purpose is Purpose.ANALYSIS]
        training = next((j for j in jobs if j.purpose is Purpose.TRAINING), None)
        frames: Counter[str] = Counter()
        problems: dict[str, list[str]] = {}
        for job in analysis:
            if job.status is JobStatus.COMPLETED:
                tally = await fleet.frame_tally(job)
                frames["in manifests"] += len(tally.manifest)
                frames["analysed once"] += sum(1 for n in tally.detected.values() if n == 1)
                frames["analysed more than once"] += sum(
                    1 for n in tally.detected.values() if n > 1
                )
                frames["in summaries"] += tally.summary_frame_count
                if tally.problems():
                    problems[job.job_id] = tally.problems()
        model = models.get(RETRAIN_PROJECT)
        report = {
            "seed": SEED,
            "base_model_ready_seconds": round(base_ready, 1),
            "chaos_seconds": round(elapsed, 1),
            "kills": dict(sorted(monkey.kills.items())),
            "kills_total": sum(monkey.kills.values()),
            "restarts": dict(sorted(restarts.items())),
            "analysis_jobs": dict(Counter(j.status.value for j in analysis)),
            "failed_reasons": {j.job_id: j.reason for j in jobs if j.status is JobStatus.FAILED},
            "training_job": training.status.value if training else None,
            "retrained_model": (
                {"status": model.status.value, "reason": model.reason} if model else None
            ),
            "frames": dict(frames),
            "frame_problems": problems,
            "peak_queue_depths": {q: max(d[q] for _, d in depths) for q in depths[0][1]}
            if depths
            else {},
            "final_queue_depths": final_depths,
            "kill_timeline": monkey.timeline,
            "queue_depths_every_10s": _every(depths, 10.0),
        }
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "chaos-tally.json").write_text(json.dumps(report, indent=2))
        with capsys.disabled():  # shown in every run, not only a failing one
            print(
                "\nchaos tally:\n"
                + json.dumps(
                    {
                        k: v
                        for k, v in report.items()
                        if k not in ("kill_timeline", "queue_depths_every_10s")
                    },
                    indent=2,
                )
            )

        stuck = {j.job_id: j.status.value for j in jobs if not j.terminal}
        assert not stuck, (
            f"jobs not finished after {DEADLINE_SECONDS}s: {stuck} "
            f"(logs in {fleet.stack.state_dir / 'logs'})"
        )
        assert training is not None, "the training video has no job"
        assert len(analysis) == ANALYSIS_JOBS, f"{len(analysis)} analysis jobs of {ANALYSIS_JOBS}"
        for job in jobs:
            assert job.terminal, f"{job.job_id} stuck in {job.status}"
            if job.status is not JobStatus.COMPLETED:
                assert job.reason, f"{job.job_id} {job.status} without a reason"
        assert not problems, problems
        assert frames["analysed more than once"] == 0
        assert frames["in summaries"] == frames["in manifests"] > 0
        if training.status is JobStatus.COMPLETED:
            assert model is not None
            assert model.status in (ModelStatus.TRAINED, ModelStatus.FAILED)
            if model.status is ModelStatus.FAILED:
                assert model.reason
        dlqs = {q: n for q, n in final_depths.items() if q.endswith("-dlq") and n}
        assert not dlqs, f"messages in DLQs: {dlqs}"
        for name, count in monkey.kills.items():
            assert restarts[name] >= count, f"{name} killed {count}x, restarted {restarts[name]}x"
        assert set(monkey.kills) == set(fleet.stack.processes), "every service was killed"
