"""`brandlens analyze` against a running local stack's REST API: what a user sees when the
project is missing, has no model yet, or when no stack runs."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from PIL import Image

from brandlens_cli.embedded import EmbeddedStack
from brandlens_core.aws import AwsClients
from brandlens_core.jobs import JobStatus, JobStore
from brandlens_core.projects import Project, ProjectStore
from brandlens_core.settings import AwsSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
async def local_stack(tmp_path: Path) -> AsyncIterator[EmbeddedStack]:
    stack = EmbeddedStack(
        stack_name="cli-analyze", state_dir=tmp_path / "state", services=("ingest",)
    )
    await stack.start()
    try:
        await stack.wait_for_api()
        yield stack
    finally:
        await stack.stop()


def brandlens(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "brandlens_cli.main", *args],
        capture_output=True, text=True, env=os.environ | {"COLUMNS": "200"}, timeout=120,
        check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


async def test_analyze_says_what_is_missing(local_stack: EmbeddedStack, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    at = ("--state-dir", str(local_stack.state_dir))
    code, out = brandlens("analyze", str(clip), "--project", "nope", *at)
    assert code == 1
    assert "project 'nope' not found" in out
    async with AwsClients(AwsSettings(endpoint_url=local_stack.endpoint_url)) as clients:
        await ProjectStore(clients.dynamodb, local_stack.names.table("projects")).create_project(
            Project(project="fresh", brands=["Acme"])
        )
    code, out = brandlens("analyze", str(clip), "--project", "fresh", *at)
    assert code == 1
    assert "has no trained model yet" in out
    code, out = brandlens(
        "analyze", str(clip), "--project", "fresh", "--api-key", "blk_" + "x" * 43, *at
    )
    assert code == 1
    assert "the API answered 401" in out
    code, out = brandlens(
        "analyze", str(clip), "--project", "fresh", "--state-dir", str(tmp_path / "none")
    )
    assert code == 1
    assert f"no local stack is running for state dir {tmp_path / 'none'}" in out
    assert "--state-dir DIR" in out  # where another one may be found


def test_apikey_commands_create_list_revoke(local_stack: EmbeddedStack) -> None:
    at = ("--state-dir", str(local_stack.state_dir))
    code, out = brandlens("apikey", "create", "ci", "--tenant", "acme", *at)
    assert code == 0, out
    secret = next(line for line in out.splitlines() if line.startswith("blk_"))
    code, out = brandlens("apikey", "list", *at)
    assert code == 0, out
    assert "tenant acme" in out
    assert "local stack" in out  # the key the stack made
    assert secret not in out  # never shown again
    key_id = next(line.split("│")[1].strip() for line in out.splitlines() if "tenant acme" in line)
    code, out = brandlens("apikey", "revoke", key_id, *at)
    assert code == 0, out
    code, out = brandlens("apikey", "create", "bad", *at)
    assert code == 2
    assert "exactly one of --tenant" in out


def jpeg(path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, "JPEG")
    return path


def interrupt(args: list[str], when: Callable[[], bool]) -> tuple[int, str]:
    """Run `brandlens *args`, SIGINT it once ``when()`` holds; its exit code and output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "brandlens_cli.main", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"COLUMNS": "200"},
        # as from a terminal: a shell may start tests with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not when() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def interrupt_after_start(args: list[str], delay: float) -> tuple[int, str]:
    """SIGINT `brandlens *args` ``delay`` seconds after its package was imported (as
    ``-X importtime`` reports it); its exit code and output."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "brandlens_cli.main", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"COLUMNS": "200"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.rstrip().endswith("| brandlens_cli"):
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(line for line in [*lines, *rest.splitlines(True)] if "import time:" not in line)
    return proc.returncode, out


async def test_ctrl_c_and_timeout_leave_the_job_running_and_say_which(
    local_stack: EmbeddedStack, tmp_path: Path
) -> None:
    # with only ingest running, an analysis job stays ACCEPTED: analyze follows it forever
    async with AwsClients(AwsSettings(endpoint_url=local_stack.endpoint_url)) as clients:
        projects = ProjectStore(clients.dynamodb, local_stack.names.table("projects"))
        await projects.create_project(Project(project="shop", brands=["Acme"]))
        await projects.update("shop", "project", {"current_model_arn": "arn:aws:rekognition:v1"})
        jobs = JobStore(clients.dynamodb, local_stack.names.table("jobs"))
        state = str(local_stack.state_dir)
        photo = jpeg(tmp_path / "shelf.jpg")

        # Ctrl-C while following: the job's id, that it keeps running, how to follow it
        loop = asyncio.get_running_loop()
        found: list[str] = []

        def job_exists() -> bool:
            listed = asyncio.run_coroutine_threadsafe(jobs.list(project="shop"), loop).result()
            found[:] = [j.job_id for j in listed]
            return bool(found)

        code, out = await asyncio.to_thread(
            interrupt, ["analyze", str(photo), "--project", "shop", "--state-dir", state],
            job_exists,
        )  # fmt: skip
        assert code == 130, out
        (job_id,) = found
        assert f"shelf.jpg: job {job_id} (ACCEPTED)" in out
        assert "the job keeps running on the stack" in out
        assert f"`brandlens job {job_id} --state-dir {state}`" in out
        assert "Traceback" not in out
        assert (await jobs.get(job_id)).status is JobStatus.ACCEPTED  # not cancelled

        # Ctrl-C in the first second (modules loading, stack discovery, the upload): no
        # traceback. Counted from when the interpreter runs brandlens code: on 2 busy cores
        # Python's own start-up (site, before any of ours) can take longer than 0.4 s.
        for delay in (0.0, 0.2, 0.5, 1.0):
            code, out = await asyncio.to_thread(
                interrupt_after_start,
                ["analyze", str(photo), "--project", "shop", "--state-dir", state], delay,
            )  # fmt: skip
            assert code == 130, (delay, out)
            assert "interrupted" in out, (delay, out)
            assert "Traceback" not in out, (delay, out)

        # --timeout-seconds: exit 2 as `submit` documents, with the job still running
        code, out = await asyncio.to_thread(
            brandlens, "analyze", str(photo), "--project", "shop", "--timeout-seconds", "3",
            "--state-dir", state,
        )  # fmt: skip
        assert code == 2, out
        assert "timed out after 3s" in out
        (job_id,) = re.findall(r"shelf\.jpg: job (job-[0-9a-f]{24}) \(ACCEPTED\)", out)
        assert (await jobs.get(job_id)).status is JobStatus.ACCEPTED
