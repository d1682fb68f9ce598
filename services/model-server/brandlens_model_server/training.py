"""Training: one process per project version, speaking CONTRACT.md §1.

``CreateProjectVersion`` records the version TRAINING_IN_PROGRESS and hands
it here. At most ``max_concurrent_trainings`` processes run at once; the
others wait for a slot (still TRAINING_IN_PROGRESS, StatusMessage
``queued: waiting for a training slot``). A run:

1. writes the spec to a fresh work dir under ``cache_dir/training/``;
2. starts ``<training_python> -m <training_module> --spec SPEC.json`` as an
   asyncio subprocess in its own session (the server stays responsive; only
   the server signals it), stdout piped, stderr to ``train.log`` in the work dir;
3. reads the JSON lines: ``progress`` becomes StatusMessage ``training: 42%`` (with
   ``(step 840/2000)`` when the line says its step); once progress has advanced for
   :data:`MIN_ESTIMATE_SECONDS`, its rate predicts the end (``expected_end_at``, capped
   by the time limit), which DescribeProjectVersions renders as ``, about 95 s left``;
   the final ``result`` line decides TRAINING_COMPLETED (with EvaluationResult)
   or TRAINING_FAILED (with the process's message); a completed run that
   reached the time limit before its step budget says so in its StatusMessage;
4. a process that runs past its budget plus a grace, or is still running at
   shutdown, gets SIGTERM, then SIGKILL after ``training_stop_grace_seconds``.

The budget (steps, seconds, seed) is the version's own, recorded when it was
created. A run that a restart interrupted is started again from scratch by the
next server (``ModelService.recover``): a new work dir, the full budget, and a
StatusMessage that says which attempt it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brandlens_core.aws import Client
from brandlens_core.logging import get_logger
from brandlens_model_server.records import (
    S3Location,
    TrainingBudget,
    VersionRecord,
    VersionStatus,
    now_epoch,
    restart_note,
)
from brandlens_model_server.s3util import prefix_has_objects
from brandlens_model_server.settings import ModelServerSettings

log = get_logger(__name__)

QUEUED_MESSAGE = "queued: waiting for a training slot"
COMPLETED_MESSAGE = "The model is ready to run."
STDOUT_LINE_LIMIT_BYTES = 1024 * 1024
STDERR_TAIL_BYTES = 4096
WORK_DIR_SUFFIX_CHARS = 8  # work dir: cache_dir/training/<project>-<version>-<hex>
MIN_ESTIMATE_SECONDS = 5.0  # progress observed for less than this predicts no end

Save = Callable[[VersionRecord], Awaitable[None]]


@dataclass
class Outcome:
    completed: bool
    message: str
    f1: float | None = None


class TrainingManager:
    def __init__(self, settings: ModelServerSettings, s3: Client, save: Save) -> None:
        self.settings = settings
        self.s3 = s3
        self._save = save
        self._slots = asyncio.Semaphore(settings.max_concurrent_trainings)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._waiting: set[str] = set()  # submitted, not yet holding a slot
        self._stopping = False

    @property
    def running(self) -> int:
        return len(self._processes)

    @property
    def queued(self) -> int:
        # counted where the slot is taken, not from the task list: a finished run's
        # task lives on while its TRAINING_COMPLETED record is being saved
        return len(self._waiting)

    def submit(self, record: VersionRecord) -> None:
        """Train ``record`` when a slot is free (it is saved TRAINING_IN_PROGRESS already)."""
        if self._stopping:
            raise RuntimeError("the training manager is shutting down")
        task = asyncio.create_task(self._train(record), name=f"train-{record.arn}")
        self._tasks[record.arn] = task
        self._waiting.add(record.arn)

        def _done(_task: asyncio.Task[None], arn: str = record.arn) -> None:
            self._tasks.pop(arn, None)
            self._waiting.discard(arn)

        task.add_done_callback(_done)

    async def shutdown(self) -> None:
        """End every training process (SIGTERM, wait, SIGKILL) and the queued ones.

        Their records stay TRAINING_IN_PROGRESS in the state; the next start
        trains them again (see ``ModelService.recover``).
        """
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one run ------------------------------------------------------------------

    async def remove_work_dirs(self, record: VersionRecord) -> None:
        """Delete the work dirs of ``record``'s runs that a killed server left behind."""
        pattern = f"{record.project}-{record.version}-{'[0-9a-f]' * WORK_DIR_SUFFIX_CHARS}"
        for path in (self.settings.cache_dir / "training").glob(pattern):
            log.info("training.work_dir_removed", arn=record.arn, path=str(path))
            await asyncio.to_thread(shutil.rmtree, path, True)

    def budget_of(self, record: VersionRecord) -> TrainingBudget:
        """The version's recorded budget; the current settings for a record without one."""
        return record.training_budget or budget_from(self.settings)

    def message(self, record: VersionRecord, text: str) -> str:
        """``text``, plus which attempt this is when restarts interrupted earlier runs."""
        if record.training_attempts <= 1:
            return text
        return (
            f"{text}; {restart_note(record.training_attempts, self.settings.max_training_attempts)}"
        )

    async def _train(self, record: VersionRecord) -> None:
        async with self._slots:
            self._waiting.discard(record.arn)
            suffix = uuid.uuid4().hex[:WORK_DIR_SUFFIX_CHARS]
            work_dir = (
                self.settings.cache_dir / "training" / f"{record.project}-{record.version}-{suffix}"
            )
            started = time.monotonic()
            try:
                record.training_started_at = now_epoch()
                record.training_attempts += 1
                record.progress = 0.0
                record.expected_end_at = None
                record.status_message = self.message(record, "training: 0%")
                await self._save(record)
                outcome = await self._run(record, work_dir)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("training.error", arn=record.arn)
                outcome = Outcome(False, f"the model server could not run the training: {exc}")
            finally:
                await asyncio.to_thread(shutil.rmtree, work_dir, True)
            await asyncio.shield(self._finish(record, outcome, time.monotonic() - started))

    async def _finish(self, record: VersionRecord, outcome: Outcome, seconds: float) -> None:
        record.training_end_at = now_epoch()
        record.billable_training_seconds = round(seconds)
        if outcome.completed:
            prefix = record.artifacts_prefix
            bucket = record.output_bucket
            record.status = VersionStatus.TRAINING_COMPLETED
            record.status_message = outcome.message
            record.progress = 1.0
            record.f1_score = outcome.f1
            record.evaluation_summary = S3Location(
                bucket=bucket, key=f"{prefix}evaluation/summary.json"
            )
            record.model_location = S3Location(bucket=bucket, key=f"{prefix}model/")
            record.train_manifest_used = S3Location(
                bucket=bucket, key=f"{prefix}manifests/train.manifest"
            )
            record.test_manifest_used = S3Location(
                bucket=bucket, key=f"{prefix}manifests/test.manifest"
            )
        else:
            record.status = VersionStatus.TRAINING_FAILED
            record.status_message = outcome.message
        log.info(
            "training.finished",
            arn=record.arn,
            status=record.status.value,
            status_message=record.status_message,
            f1=record.f1_score,
            duration_ms=int(seconds * 1000),
        )
        await self._save(record)

    def spec_for(self, record: VersionRecord, work_dir: Path) -> dict[str, Any]:
        budget = self.budget_of(record)
        return {
            "train_manifest_uri": record.train_manifest.uri,
            "test_manifest_uri": record.test_manifest.uri if record.test_manifest else None,
            "autocreate_test_percent": 20,
            "output_uri": record.output_uri,
            "work_dir": str(work_dir),
            "max_training_seconds": budget.max_training_seconds,
            "max_training_steps": budget.max_training_steps,
            "seed": budget.seed,
            "server_pid": os.getpid(),
        }

    async def _run(self, record: VersionRecord, work_dir: Path) -> Outcome:
        spec_path = work_dir / "spec.json"
        await asyncio.to_thread(_write_spec, spec_path, self.spec_for(record, work_dir))
        log_path = work_dir / "train.log"
        with log_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                self.settings.training_python,
                "-m",
                self.settings.training_module,
                "--spec",
                str(spec_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                cwd=str(work_dir),
                start_new_session=True,
                limit=STDOUT_LINE_LIMIT_BYTES,
            )
        self._processes[record.arn] = process
        log.info(
            "training.started",
            arn=record.arn,
            pid=process.pid,
            spec=self.spec_for(record, work_dir),
        )
        budget = self.budget_of(record)
        max_seconds = budget.max_training_seconds
        deadline = max_seconds + self.settings.training_deadline_grace_seconds
        try:
            result = await asyncio.wait_for(self._follow(record, process), deadline)
        except TimeoutError:
            await self._terminate(process)
            return Outcome(
                False,
                f"training took longer than {max_seconds} seconds and was stopped",
            )
        except asyncio.CancelledError:
            await asyncio.shield(self._terminate(process))
            raise
        finally:
            self._processes.pop(record.arn, None)
        code = process.returncode
        return await self._outcome(record, result, code, log_path)

    async def _follow(
        self, record: VersionRecord, process: asyncio.subprocess.Process
    ) -> dict[str, Any] | None:
        """Read progress lines until EOF; return the result line, if one came."""
        assert process.stdout is not None
        result: dict[str, Any] | None = None
        shown = -1
        origin: tuple[float, float] | None = None  # (epoch, progress) of the first step line
        budget = self.budget_of(record)
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # one line longer than the limit: skip it
                continue
            if not raw:
                break
            line = _json_line(raw)
            if line is None:
                log.debug(
                    "training.output", arn=record.arn, line=raw[:500].decode(errors="replace")
                )
                continue
            if "result" in line:
                result = line
                continue
            progress = line.get("progress")
            if isinstance(progress, int | float) and not isinstance(progress, bool):
                percent = max(0, min(100, int(progress * 100)))
                record.progress = max(0.0, min(1.0, float(progress)))
                now = now_epoch()
                if origin is None and record.progress > 0:
                    origin = (now, record.progress)
                if percent != shown:
                    shown = percent
                    record.expected_end_at = expected_end(
                        origin,
                        now,
                        record.progress,
                        record.training_started_at,
                        budget.max_training_seconds,
                    )
                    record.status_message = self.message(
                        record,
                        progress_text(
                            percent,
                            line.get("steps"),
                            line.get("max_steps", budget.max_training_steps),
                        ),
                    )
                    await self._save(record)
        await process.wait()
        return result

    async def _outcome(
        self, record: VersionRecord, result: dict[str, Any] | None, code: int | None, log_path: Path
    ) -> Outcome:
        if result is not None and result.get("result") == "TRAINING_COMPLETED" and code == 0:
            f1 = result.get("f1")
            if not isinstance(f1, int | float) or isinstance(f1, bool):
                return Outcome(False, "the training process reported no F1 score")
            if not await prefix_has_objects(
                self.s3, record.output_bucket, f"{record.artifacts_prefix}model/"
            ):
                return Outcome(
                    False, f"the training process wrote no model under {record.output_uri}model/"
                )
            return Outcome(True, _completed_message(result), float(f1))
        if result is not None and result.get("result") == "TRAINING_FAILED":
            message = result.get("message")
            return Outcome(False, str(message) if message else "training failed")
        tail = _last_line(log_path)
        if code is not None and code < 0:
            what = f"the training process was killed by signal {-code}"
        elif code == 0:
            what = "the training process ended without reporting a result"
        else:
            what = f"the training process crashed (exit code {code})"
        log.warning("training.crashed", arn=record.arn, exit_code=code, stderr_tail=tail)
        return Outcome(False, f"{what}: {tail}" if tail else what)

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.settings.training_stop_grace_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("training.terminated", pid=process.pid, exit_code=process.returncode)


def progress_text(percent: int, steps: object, max_steps: object) -> str:
    """``training: 42%``, with ``(step 840/2000)`` when the progress line names both."""
    text = f"training: {percent}%"
    if _count(steps) and _count(max_steps):
        text += f" (step {steps}/{max_steps})"
    return text


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def expected_end(
    origin: tuple[float, float] | None,
    now: float,
    progress: float,
    started_at: float | None,
    max_seconds: float,
) -> float | None:
    """When a training at ``progress`` (0-1) ``now`` should end, at the rate it has advanced
    since ``origin`` (the first line past 0: image loading reports 0); None until it has
    advanced for :data:`MIN_ESTIMATE_SECONDS`. Never past the time limit's stop."""
    if progress >= 1.0:
        return now
    if origin is None or now - origin[0] < MIN_ESTIMATE_SECONDS or progress <= origin[1]:
        return None
    rate = (progress - origin[1]) / (now - origin[0])
    end = now + (1.0 - progress) / rate
    if started_at is not None:
        end = min(end, started_at + max_seconds)
    return round(max(end, now), 3)


def budget_from(settings: ModelServerSettings) -> TrainingBudget:
    return TrainingBudget(
        max_training_steps=settings.max_training_steps,
        max_training_seconds=settings.max_training_seconds,
        seed=settings.training_seed,
    )


def _completed_message(result: dict[str, Any]) -> str:
    """``The model is ready to run.``, plus a warning when the time limit ended training."""
    if result.get("stopped_by") != "time_limit":
        return COMPLETED_MESSAGE
    steps, max_steps, seconds = (
        result.get("steps"), result.get("max_steps"), result.get("max_seconds")
    )  # fmt: skip
    return (
        f"{COMPLETED_MESSAGE} Training hit its time limit ({seconds} s of training) after "
        f"{steps} of {max_steps} steps, so the model may be weaker than a full run: raise "
        "BRANDLENS_MODEL_SERVER_MAX_TRAINING_SECONDS, or lower MAX_TRAINING_STEPS, and train again."
    )


def _write_spec(path: Path, spec: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2))


def _json_line(raw: bytes) -> dict[str, Any] | None:
    text = raw.strip()
    if not text.startswith(b"{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - STDERR_TAIL_BYTES))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
