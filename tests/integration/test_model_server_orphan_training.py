"""A real training process does not outlive its model-server.

The server starts training in a session of its own, so when it is killed by
SIGKILL (alone, or with the whole local stack) nothing signals the training
process. It must notice and end by itself: otherwise it trains on for up to its
time limit for nothing (the next server trains its version again from scratch and
never reads its output), taking the CPU from that new run and writing into the same
output prefix. Before it watched its
parent (``end_with_server``), an orphan ended only at its next progress line (the
write to the dead server's pipe fails): every 40 steps in the loop, 200 steps of
silence per validation pass at large budgets, none during the evaluation and the
upload of its model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.test_model_server_e2e import pytestmark as e2e_marks
from tests.integration.test_model_server_e2e import upload_split
from tests.integration.test_model_server_support import (
    MODEL_SERVER_SRC,
    ModelServerHarness,
    pid_alive,
    rekognition,
    unique,
    version_status,
)
from tests.support import Stack, eventually

pytestmark = [*e2e_marks[:1], *e2e_marks[2:], pytest.mark.timeout(300)]


@pytest.fixture
async def harness(stack: Stack, tmp_path: Path) -> AsyncIterator[ModelServerHarness]:
    h = ModelServerHarness(
        stack,
        tmp_path,
        overrides={
            "BRANDLENS_MODEL_SERVER_TRAINING_MODULE": "brandlens_model_server.detector.train",
            "BRANDLENS_MODEL_SERVER_RUNTIME_MODULE": "brandlens_model_server.detector.runtime",
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_STEPS": "2000",
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_SECONDS": "900",
        },
    )
    yield h
    await h.stop_all()


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


async def test_a_killed_servers_training_process_ends_by_itself(
    harness: ModelServerHarness, stack: Stack
) -> None:
    rng = random.Random(11)
    root = unique("training/acme-orphan")
    train_key = await upload_split(stack, root, rng, 48, "train")
    test_key = await upload_split(stack, root, rng, 12, "test")
    bucket = stack.names.media_bucket
    server = await harness.start()
    assert server.process is not None
    async with rekognition(server) as client:
        project = (await client.create_project(ProjectName=unique("acme")))["ProjectArn"]
        await client.create_project_version(
            ProjectArn=project,
            VersionName="v1",
            OutputConfig={"S3Bucket": stack.names.artifacts_bucket, "S3KeyPrefix": "models"},
            TrainingData={
                "Assets": [
                    {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": train_key}}}
                ]
            },
            TestingData={
                "Assets": [
                    {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": test_key}}}
                ]
            },
        )
        pid = server.process.pid

        async def started() -> list[int]:
            return children(pid)

        [trainer] = await eventually(started, timeout=30, message="a training process")
        # wherever it is (importing, loading images, in the loop), not at its end
        await asyncio.sleep(3)
        assert (await version_status(client, project, "v1"))["Status"] == "TRAINING_IN_PROGRESS"
    try:
        await server.kill()  # nothing signals the trainer: it has a session of its own

        async def gone() -> bool:
            return not pid_alive(trainer)

        await eventually(gone, timeout=60, message="the orphaned training process ended")
    finally:
        if pid_alive(trainer):
            os.kill(trainer, signal.SIGKILL)


CHILD = """
import sys, time
from brandlens_model_server.detector.train import end_with_server
end_with_server(int(sys.argv[1]), interval=0.1)
print("watching", flush=True)
time.sleep(120)  # silent: no progress line whose write would fail (EPIPE) and end it
"""

PARENT = """
import subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], str(__import__("os").getpid())],
    stdout=subprocess.PIPE, start_new_session=True,
)
child.stdout.readline()
print(child.pid, flush=True)
time = __import__("time")
time.sleep(120)
"""


async def test_a_silent_training_process_notices_its_server_is_gone(tmp_path: Path) -> None:
    """Between two progress lines (a validation pass, the evaluation, the upload) too."""
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(MODEL_SERVER_SRC), os.environ.get("PYTHONPATH", "")])
    }
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, CHILD, stdout=asyncio.subprocess.PIPE, env=env
    )
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), 120)
    child = int(line)
    try:
        assert pid_alive(child)
        parent.kill()
        await parent.wait()

        async def gone() -> bool:
            return not pid_alive(child)

        await eventually(gone, timeout=10, message="the child ended with its parent")
    finally:
        if pid_alive(child):
            os.kill(child, signal.SIGKILL)
