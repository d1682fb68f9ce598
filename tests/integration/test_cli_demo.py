"""`brandlens demo`, exactly as `make run` calls it: a whole local stack trains a detector
on generated media and analyses another video with it, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

ELAPSED = re.compile(r"^elapsed: ([0-9.]+)s$", re.M)
REPORT = re.compile(r"^report: (\S+\.html)$", re.M)


def test_the_demo_trains_then_finds_the_brands(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "brandlens_cli.main", "demo", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "200"},  # one table row per brand
        timeout=1100,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for step in ("project 'demo' created", "model trained: F1", "analysing analysis.mp4"):
        assert step in output, output
    # the comparison table: brand, on screen (truth), found, appearances (truth), found
    _, _, comparison = output.partition("found vs the video's ground truth")
    for brand in ("acme", "globex", "initech"):
        row = re.search(rf"^│ {brand}\s+│ +([0-9.]+) s │ +([0-9.]+) s", comparison, re.M)
        assert row, (brand, output)
        truth, found = float(row[1]), float(row[2])
        # issue 19: the demo's screen time within 5 % of the truth, per brand
        assert abs(found - truth) <= 0.05 * truth, (brand, truth, found, output)
    assert "demo passed" in output
    (elapsed,) = ELAPSED.findall(output)
    assert float(elapsed) < 600, output  # the budget: 10 minutes on 2 cores
    (report,) = REPORT.findall(output)
    html = Path(report).read_text()
    assert html.startswith("<!doctype html>")
    assert "class='proof'" in html
    # the stack's state is gone, its logs kept
    assert not (tmp_path / "demo" / "local.json").exists()
    assert (tmp_path / "demo" / "logs" / "model-server.log").exists()
