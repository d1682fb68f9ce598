"""Datasets: JPEG frames in groups (shots), plus a Ground Truth bounding-box manifest.

Frames come in *groups* that simulate stills from one source video: consecutive frames
of a group share their background (distractors included) and the same logos, whose
placement drifts a little from frame to frame. Frames of one group are near-duplicates,
so train/test splits must be made by ``Sample.group`` to avoid leakage.

Files written to ``out_dir``:

* ``000000.jpg`` ... — the frames;
* ``manifest.jsonl`` — one Ground Truth bounding-box output line per frame (also a
  Rekognition Custom Labels training line), ``source-ref`` = ``uri_prefix`` + file name;
  negative frames have an empty ``annotations`` list;
* ``samples.jsonl`` — file name, group, negative flag and labelled boxes per frame.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from .brands import Brand
from .scene import Box, SceneConfig, compose_positive, drift_spec, sample_scene_spec

DEFAULT_CREATION_DATE = "2026-01-01T00:00:00"
DEFAULT_URI_PREFIX = "s3://brandlens-synth/dataset/"


@dataclass(frozen=True)
class Sample:
    """One written frame: where it is, which group (shot) it belongs to, its boxes."""

    index: int
    name: str  # file name relative to the dataset directory
    path: Path
    source_ref: str
    group: str
    width: int
    height: int
    boxes: tuple[Box, ...]
    negative: bool  # drawn without logos (then ``boxes`` is empty)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "file": self.name,
            "source-ref": self.source_ref,
            "group": self.group,
            "width": self.width,
            "height": self.height,
            "negative": self.negative,
            "boxes": [b.to_dict() for b in self.boxes],
        }


def class_map(brands: Sequence[Brand]) -> dict[str, str]:
    """``{"0": "acme", "1": "globex", ...}``: class ids are positions in ``brands``."""
    return {str(i): b.name for i, b in enumerate(brands)}


def manifest_line(
    sample: Sample,
    brands: Sequence[Brand],
    *,
    label_attribute: str = "bounding-box",
    job_name: str = "labeling-job/brandlens-synth",
    creation_date: str = DEFAULT_CREATION_DATE,
) -> dict[str, Any]:
    """The Ground Truth bounding-box output line of ``sample`` (see docs/FORMATS)."""
    ids = {b.name: i for i, b in enumerate(brands)}
    annotations = [
        {"class_id": ids[b.label], "left": b.left, "top": b.top, "width": b.width,
         "height": b.height}
        for b in sample.boxes
    ]  # fmt: skip
    return {
        "source-ref": sample.source_ref,
        label_attribute: {
            "image_size": [{"width": sample.width, "height": sample.height, "depth": 3}],
            "annotations": annotations,
        },
        f"{label_attribute}-metadata": {
            "objects": [{"confidence": 1} for _ in annotations],
            "class-map": class_map(brands),
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": creation_date,
            "job-name": job_name,
        },
    }


def group_sizes(n_images: int, groups: int) -> list[int]:
    """``n_images`` split into ``groups`` contiguous runs whose sizes differ by at most 1."""
    base, extra = divmod(n_images, groups)
    return [base + (1 if g < extra else 0) for g in range(groups)]


@dataclass(frozen=True)
class _GroupJob:
    out_dir: str
    brands: tuple[Brand, ...]
    seed: int
    group: int
    first_index: int
    negatives: tuple[bool, ...]
    width: int
    height: int
    uri_prefix: str
    config: SceneConfig
    jpeg_quality: int


def _render_group(job: _GroupJob) -> list[Sample]:
    rng = np.random.default_rng([job.seed, 1, job.group])
    spec = sample_scene_spec(rng, job.brands, job.width, job.height, config=job.config)
    samples = []
    for k, negative in enumerate(job.negatives):
        if k:
            spec = drift_spec(rng, spec, job.config)
        scene = compose_positive(replace(spec, placements=()) if negative else spec)
        index = job.first_index + k
        name = f"{index:06d}.jpg"
        path = Path(job.out_dir) / name
        scene.image.save(path, "JPEG", quality=job.jpeg_quality)
        samples.append(
            Sample(
                index=index,
                name=name,
                path=path,
                source_ref=job.uri_prefix + name,
                group=f"g{job.group:04d}",
                width=job.width,
                height=job.height,
                boxes=tuple(scene.boxes),
                negative=negative,
            )
        )
    return samples


def generate_dataset(
    out_dir: str | os.PathLike[str],
    *,
    brands: Sequence[Brand],
    n_images: int,
    seed: int,
    negative_fraction: float = 0.15,
    width: int = 1280,
    height: int = 720,
    groups: int | None = None,
    uri_prefix: str = DEFAULT_URI_PREFIX,
    label_attribute: str = "bounding-box",
    job_name: str = "labeling-job/brandlens-synth",
    creation_date: str = DEFAULT_CREATION_DATE,
    manifest_name: str = "manifest.jsonl",
    config: SceneConfig | None = None,
    jpeg_quality: int = 92,
    workers: int = 1,
) -> list[Sample]:
    """Write ``n_images`` JPEG frames, ``manifest.jsonl`` and ``samples.jsonl`` to ``out_dir``.

    ``groups`` is the number of shots (default ``ceil(n_images / 6)``; ``n_images`` gives
    independent frames). Exactly ``round(negative_fraction * n_images)`` frames, chosen at
    random, are negatives (no logo; distractors remain). Everything is a function of
    ``seed`` (and the arguments): the same call writes the same bytes, whatever
    ``workers`` (> 1 renders groups in that many spawned processes; the calling script then
    needs an ``if __name__ == "__main__":`` guard).
    """
    if n_images < 0:
        raise ValueError("n_images must be >= 0")
    if not 0.0 <= negative_fraction <= 1.0:
        raise ValueError("negative_fraction must be within [0, 1]")
    if not brands and negative_fraction < 1.0 and n_images:
        raise ValueError("positive frames need at least one brand")
    names = [b.name for b in brands]
    if len(set(names)) != len(names):
        raise ValueError("brand names must be unique")
    n_groups = max(1, math.ceil(n_images / 6)) if groups is None else groups
    if n_groups < 1:
        raise ValueError("groups must be >= 1")
    n_groups = min(n_groups, max(1, n_images))
    if uri_prefix and not uri_prefix.endswith("/"):
        uri_prefix += "/"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = config or SceneConfig()

    rng = np.random.default_rng([seed, 0])
    negative = np.zeros(n_images, dtype=bool)
    n_negative = round(negative_fraction * n_images)
    negative[rng.choice(n_images, size=n_negative, replace=False)] = True

    jobs = []
    first = 0
    for g, size in enumerate(group_sizes(n_images, n_groups)):
        jobs.append(
            _GroupJob(
                out_dir=str(out),
                brands=tuple(brands),
                seed=seed,
                group=g,
                first_index=first,
                negatives=tuple(bool(v) for v in negative[first : first + size]),
                width=width,
                height=height,
                uri_prefix=uri_prefix,
                config=config,
                jpeg_quality=jpeg_quality,
            )
        )
        first += size

    n_workers = min(max(1, workers), len(jobs))
    if n_workers <= 1 or n_images < 24:
        results = [_render_group(job) for job in jobs]
    else:
        with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_render_group, jobs, chunksize=1))
    samples = [s for group in results for s in group]

    with (out / manifest_name).open("w", encoding="utf-8") as f:
        for s in samples:
            line = manifest_line(
                s,
                brands,
                label_attribute=label_attribute,
                job_name=job_name,
                creation_date=creation_date,
            )
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    with (out / "samples.jsonl").open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s.to_dict(), separators=(",", ":")) + "\n")
    return samples
