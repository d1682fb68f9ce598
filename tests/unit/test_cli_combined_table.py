"""`brandlens analyze` of several files: the combined table gives a still detections, not
screen time (an image once showed "0.0 s" there), and a video its screen time."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from brandlens_cli.analyze import FileAnalysis, brand_totals, combined_table
from brandlens_inferer.aggregate import AggregationSettings, aggregate
from tests.unit.test_aggregate import frames, label


def summary(kind: str, labels_per_frame: list[list[dict[str, Any]]]) -> dict[str, Any]:
    made = aggregate(
        frames(1000, labels_per_frame), job_id=f"job-{kind}", project="p", model="m",
        media_kind=kind, settings=AggregationSettings(merge_gap_ms=1500, min_duration_ms=2000),
    )  # fmt: skip
    return made.model_dump(mode="json")


def item(name: str, job_id: str, found: dict[str, Any]) -> FileAnalysis:
    job = {"job_id": job_id, "status": "COMPLETED"}
    return FileAnalysis(Path(name), jobs_url="u", job=job, summary=found)


def rendered(table: Any) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(table)
    return out.getvalue().splitlines()


def test_a_still_shows_detections_and_a_video_its_screen_time() -> None:
    shelf = summary("image", [[label("acme"), label("acme"), label("globex")]])
    clip = summary("video", [[label("acme")]] * 6)  # 6 s of acme at 1 s sampling
    items = [item("shelf.jpg", "job-image", shelf), item("clip.mp4", "job-video", clip)]
    lines = rendered(combined_table(items))

    image_row = next(line for line in lines if "shelf.jpg" in line)
    assert "0.0 s" not in image_row
    cells = [c.strip() for c in image_row.split("│")]
    assert cells[4:8] == ["acme", "image", "-", "2"]
    video_row = next(line for line in lines if "clip.mp4" in line)
    assert [c.strip() for c in video_row.split("│")][4:8] == ["acme", "6.0 s", "1", "6"]

    totals = {t.brand: t for t in brand_totals([shelf, clip])}
    assert totals["acme"].screen_time_ms == 6000  # the still adds no screen time
    assert totals["acme"].detections == 2 + 6
    assert totals["acme"].files == 2
    assert totals["globex"].detections == 1
    acme_total = next(line for line in lines if "in 2 of 2 files" in line)
    assert [c.strip() for c in acme_total.split("│")][4:8] == ["acme", "6.0 s", "1", "8"]
