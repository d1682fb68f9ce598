"""`brandlens submit`, `jobs` and `job` against a running local stack (moto + ingest)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from brandlens_cli.main import PART_SIZE
from brandlens_core.jobs import JobStatus, JobStore
from tests.support import Stack, start_ingest

pytestmark = pytest.mark.integration


def write_local_state(state_dir: Path, stack: Stack) -> None:
    """Describe the test's stack as `brandlens up` would; this process plays its pid."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "local.json").write_text(
        json.dumps(
            {
                "endpoint_url": stack.endpoint_url,
                "stack_name": stack.names.stack_name,
                "region": "us-east-1",
                "services": ["ingest"],
                "pid": os.getpid(),
                "media_bucket": stack.names.media_bucket,
                "artifacts_bucket": stack.names.artifacts_bucket,
            }
        )
    )


async def brandlens(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "brandlens_cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def big_jpeg(path: Path) -> Path:
    """A real JPEG larger than one part (noise compresses badly)."""
    width, height = 2400, 1800
    noise = random.Random(7).randbytes(width * height * 3)
    Image.frombytes("RGB", (width, height), noise).save(path, "JPEG", quality=100)
    assert path.stat().st_size > PART_SIZE
    return path


def job_id_in(output: str) -> str:
    match = re.search(r"job-[0-9a-f]{24}", output)
    assert match, output
    return match.group(0)


async def test_submit_uploads_in_parts_and_follows_the_job(stack: Stack, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    write_local_state(state_dir, stack)
    photo = big_jpeg(tmp_path / "shelf.jpg")
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video")
    worker = await start_ingest(stack)
    try:
        code, out = await brandlens(
            "submit", str(photo), "--project", "acme", "--purpose", "analysis",
            "--state-dir", str(state_dir), "--timeout-seconds", "60",
        )  # fmt: skip
        assert code == 0, out
        assert "ACCEPTED" in out
        accepted_id = job_id_in(out)

        code, out = await brandlens(
            "submit", str(fake), "--project", "acme", "--purpose", "training",
            "--state-dir", str(state_dir), "--timeout-seconds", "60",
        )  # fmt: skip
        assert code == 1, out
        assert "REJECTED" in out
        assert "unsupported file type" in out
        rejected_id = job_id_in(out)
    finally:
        await worker.stop()

    store = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    accepted = await store.get(accepted_id)
    assert accepted.status is JobStatus.ACCEPTED
    assert accepted.media["key"] == "analysis/acme/shelf.jpg"
    assert accepted.media["size_bytes"] == photo.stat().st_size
    # Multipart: nothing left half-uploaded.
    uploads = await stack.clients.s3.list_multipart_uploads(Bucket=stack.names.media_bucket)
    assert not uploads.get("Uploads")

    code, out = await brandlens("jobs", "--project", "acme", "--state-dir", str(state_dir))
    assert code == 0, out
    assert accepted_id in out
    assert rejected_id in out

    code, out = await brandlens("job", accepted_id, "--json", "--state-dir", str(state_dir))
    assert code == 0, out
    row = json.loads(out)
    assert row["job_id"] == accepted_id
    assert row["status"] == "ACCEPTED"
    assert row["media"]["format"] == "jpeg"

    code, out = await brandlens("job", rejected_id, "--state-dir", str(state_dir))
    assert code == 0, out
    assert "REJECTED" in out

    code, out = await brandlens(
        "job", "job-000000000000000000000000", "--state-dir", str(state_dir)
    )
    assert code == 1
    assert "no job job-000000000000000000000000" in out


async def test_submit_times_out_with_exit_code_2_when_no_ingest_runs(
    stack: Stack, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    write_local_state(state_dir, stack)
    photo = tmp_path / "p.jpg"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(photo, "JPEG")
    code, out = await brandlens(
        "submit", str(photo), "--project", "acme", "--purpose", "analysis",
        "--state-dir", str(state_dir), "--timeout-seconds", "1.5",
    )  # fmt: skip
    assert code == 2, out
    assert "timed out" in out
    assert f"brandlens job {job_id_in(out)}" in out
