"""`brandlens analyze` of several files and a folder, `job`, `jobs` and `models` on a local
stack whose project has a model trained by the real pipeline (every service its own
process, shared by the assertions of one test: training is the expensive part)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.pipeline import BASE_PROJECT, analysis_video, trained_fleet

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed"),
]

JOB_ID = re.compile(r"job-[0-9a-f]{24}")


async def brandlens(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "brandlens_cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=os.environ | {"COLUMNS": "250"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


async def test_analyze_several_files_then_job_jobs_and_models(tmp_path: Path) -> None:
    async with trained_fleet(
        tmp_path / "state", tmp_path / "media", stack_name="cli-many", timeout_seconds=600
    ) as fleet:
        folder = tmp_path / "clips"
        analysis_video(folder, fleet.brands, seconds=4.0, seed=11)
        # the model is small and briefly trained: its own training video is sure to show brands
        shutil.copy(next(fleet.media_dir.glob("train*.mp4")), folder / "clip12.mp4")
        (folder / "notes.txt").write_text("not media")
        single = analysis_video(tmp_path / "more", fleet.brands, seconds=4.0, seed=13)
        at = ("--state-dir", str(fleet.stack.state_dir))

        code, out = await brandlens(
            "analyze", str(folder), str(single), "--project", BASE_PROJECT,
            "--parallel-uploads", "2", *at,
        )  # fmt: skip
        assert code == 0, out
        assert "skipping 1 file(s)" in out
        assert "brands in 3 files" in out
        assert "3 of 3 files analysed" in out
        rows = {
            name: next(line for line in out.splitlines() if line.startswith(f"│ {name}"))
            for name in ("clip11.mp4", "clip12.mp4", "clip13.mp4")
        }
        job_ids = {name: JOB_ID.findall(row)[0] for name, row in rows.items()}
        assert len(set(job_ids.values())) == 3
        assert all("COMPLETED" in row for row in rows.values())

        # the figures: each brand over the three files is the sum of the per-job summaries
        headers = {"Authorization": f"Bearer {fleet.stack.api_key}"}
        summaries = []
        async with aiohttp.ClientSession(headers=headers) as http:
            for job_id in job_ids.values():
                async with http.get(f"{fleet.stack.api_url}/v1/jobs/{job_id}/summary") as r:
                    assert r.status == 200
                    summaries.append(await r.json())
        for job_id in job_ids.values():  # a report saved per job
            assert (fleet.stack.state_dir / "reports" / f"{job_id}.html").exists()
        found = sorted({b for s in summaries for b in s["brands"]})
        assert found, out  # the model finds something in its own brands' videos
        frame_count = sum(s["frame_count"] for s in summaries)
        lines = out.splitlines()
        first_total = next(i for i, line in enumerate(lines) if line.startswith("│ all 3 analysed"))
        for brand in found:
            per_job = [s["brands"][brand] for s in summaries if brand in s["brands"]]
            total = next(
                line for line in lines[first_total:]
                if re.match(rf"^│ (all 3 analysed)?\s+│\s+│\s+│ {re.escape(brand)}\s+│", line)
            )  # fmt: skip
            # file, job, status, brand, screen time, appearances, detections, frames, conf., note
            cells = [c.strip() for c in total.strip().strip("│").split("│")]
            assert cells[4] == seconds(sum(b["screen_time_ms"] for b in per_job)), total
            assert cells[5] == str(sum(len(b["appearances"]) for b in per_job)), total
            assert cells[6] == str(sum(b["detections"] for b in per_job)), total
            assert cells[7] == f"{sum(b['frames'] for b in per_job)}/{frame_count}", total
            assert cells[9] == f"in {len(per_job)} of 3 files", total

        # `brandlens job` of an analysed job: its per-brand table
        job_id, summary = next(
            (j, s) for j, s in zip(job_ids.values(), summaries, strict=True) if s["brands"]
        )
        code, out = await brandlens("job", job_id, *at)
        assert code == 0, out
        for brand, b in summary["brands"].items():
            row = next(line for line in out.splitlines() if line.startswith(f"│ {brand} "))
            assert seconds(b["screen_time_ms"]) in row, row
            assert f"{b['frames']}/{summary['frame_count']}" in row, row

        # `brandlens jobs` says how many it leaves out: 1 training + 3 analysis jobs
        code, out = await brandlens("jobs", "--limit", "2", *at)
        assert code == 0, out
        assert "2 more jobs (newest 2 of 4 shown)" in out
        assert "brandlens jobs --limit 4" in out
        code, out = await brandlens("jobs", "--project", BASE_PROJECT, "--limit", "3", *at)
        assert "1 more job (newest 3 of 4 shown)" in out
        code, out = await brandlens("jobs", *at)
        assert "more job" not in out

        # `brandlens models`: the current version's note says it is current, and why
        code, out = await brandlens("models", BASE_PROJECT, *at)
        assert code == 0, out
        (row,) = [line for line in out.splitlines() if "TRAINED" in line]
        assert "no current version" not in row, out
        assert "current since it was trained" in row, out
