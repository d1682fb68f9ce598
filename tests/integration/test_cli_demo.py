"""`brandlens demo`, exactly as `make run` calls it: a whole local stack, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

JOB_LINE = re.compile(r"^│ (image|video|fake video)\s+│ (job-[0-9a-f]{24}) │ (\w+)\s+│", re.M)


def test_the_demo_accepts_the_samples_and_rejects_the_fake(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "brandlens_cli.main", "demo", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "200"},  # one table row per job
        timeout=280,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    jobs = {sample: (job_id, status) for sample, job_id, status in JOB_LINE.findall(output)}
    assert set(jobs) == {"image", "video", "fake video"}, output
    # ingest accepts them and the framer, which the embedded stack runs, frames them
    assert jobs["image"][1] == "FRAMED"
    assert jobs["video"][1] == "FRAMED"
    assert jobs["fake video"][1] == "REJECTED"
    assert "unsupported file type" in output
    assert len({job_id for job_id, _ in jobs.values()}) == 3
    assert "demo passed" in output
    assert "elapsed:" in output
    # The samples were made in the state dir; the stack's state is gone, its logs kept.
    assert {p.name for p in (tmp_path / "samples").iterdir()} == {
        "shelf.jpg",
        "promo.mp4",
        "not-a-video.mp4",
    }
    assert not (tmp_path / "demo" / "local.json").exists()
    assert (tmp_path / "demo" / "logs" / "ingest.log").exists()
