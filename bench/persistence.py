"""What keeping the local stack's AWS state costs: save, restore, and the steady overhead.

What it measures
    **State** (``--part state``): a state of ``--jobs`` (1,000) jobs, ``--frames``
    (10,000) frames and ``--models`` (2) models, written through the AWS APIs (16
    requests at a time) into a moto server started as the embedded stack starts it
    (``brandlens_cli.embedded.MotoServer`` with a state dir: the stack's resources
    deployed, ``POST /_brandlens/state/restore`` on the empty state, then the writes):

    * job rows in the jobs table shaped like real ones (``brandlens_core.jobs.Job``:
      80 % single images, 20 % videos of 46 frames, COMPLETED, with media, framing,
      progress, published detail-types, counted batch ids, summary and report keys);
    * frame JPEGs under ``frames/<job>/<index>.jpg`` in the artifacts bucket, 1280x720,
      30-60 KB: ``--distinct`` (300) different images (gradients, shapes, noise; cached
      in ``bench/.cache/persistence/``), each body made unique by a JPEG comment
      segment naming the frame, so the store's content-addressed blobs cannot
      deduplicate them (they would otherwise make saving look cheaper than it is);
    * model artifacts of ``--model-mb`` (19) MB of random bytes (a trained model
      compresses no better) under ``models/<project>/<version>/model/model.pt``.

    Then: **save**, a clean stop (SIGTERM; moto compacts its journal into the
    snapshot, then exits), timed from the signal to the process's exit; bytes on disk;
    **restore**, a new moto on the same state dir, timed from the start of the process
    to the restore's answer, split into process start (the store loads its snapshot
    before answering), deploying the resources and the restore request; and the check
    that what came back is what was written: object and item counts, and the bodies of
    every model and of ``--sample`` (300) random frames byte-identical (sha256), and as
    many random job rows equal. Last, the restored state is stopped again (a second
    save, of a state that did not change since the restore).

    **Load** (``--part load``): bench/load.py's workload (images and videos dropped into
    the media bucket at once, the whole embedded stack with a model trained for the
    run) without and with persistence, in that order, in this process: frames analysed
    per second and the drain time of each, and moto's CPU seconds during each drain.

Baselines, measured in the same run
    State: the same writes, in the same order and concurrency, into a moto server
    without a state dir (written first); the ratio is persistence's steady cost per API
    request on a write-only workload. Load: the run without persistence (first;
    ``--load-rounds N`` runs N pairs, alternating the order, and keeps the fastest run
    of each: one pair on a shared machine measures its drift as much as persistence).

Targets
    Everything written comes back after the restart (counts, sampled bodies and rows);
    load throughput with persistence >= 0.9 x without (issue 18: at most 10 % slower).
    Exit code 1 when either is missed. Save and restore times have no target: they are
    the figures issue 18 asks for.

Run (about 11 minutes on 2 cores: the state part 6, the load part two runs of 3;
a busy machine doubles it)
    .venv/bin/python bench/persistence.py [--part all|state|load] [--jobs 1000]
        [--frames 10000] [--models 2] [--model-mb 19] [--distinct 300] [--sample 300]
        [--images 60] [--videos 2] [--video-seconds 10] [--load-rounds 1]

Results are printed and written to bench/results/persistence.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import io
import json
import os
import platform
import random
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "persistence.json"
CACHE = ROOT / ".cache" / "persistence"
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from brandlens_core.logging import configure_logging  # noqa: E402

FRAMES_PER_VIDEO = 46
BATCH_SIZE = 16
PROJECT = "acme"
LOAD_TARGET = 0.9
LOAD_FIGURES = (
    "frames_analysed",
    "drain_seconds",
    "frames_per_second",
    "moto_cpu_seconds_in_drain",
    "base_model_seconds",
    "wall_seconds",
)


# -- the data ------------------------------------------------------------------------


def _base_jpeg(seed: int, width: int = 1280, height: int = 720) -> bytes:
    """A 1280x720 JPEG of 30-60 KB: a gradient, shapes, sensor-like noise."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    corners = rng.uniform(0, 255, (3, 3))
    base = np.stack(
        [c[0] + (c[1] - c[0]) * x / width + (c[2] - c[0]) * 0.5 * y / height for c in corners],
        axis=-1,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(6, 20))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = [x0, y0, x0 + int(rng.integers(20, 300)), y0 + int(rng.integers(20, 200))]
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
    pixels = np.asarray(image).astype(np.int16)
    pixels += rng.normal(0, rng.uniform(2.0, 4.5), pixels.shape).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=75)
    return out.getvalue()


def base_jpegs(count: int) -> list[bytes]:
    """``count`` distinct JPEGs, made once and cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    bodies = []
    for seed in range(count):
        path = CACHE / f"base{seed:04d}.jpg"
        if not path.exists():
            path.write_bytes(_base_jpeg(seed))
        bodies.append(path.read_bytes())
    return bodies


def frame_body(bases: list[bytes], index: int, key: str) -> bytes:
    """Base JPEG ``index % len(bases)`` with a comment segment naming the frame: a valid
    JPEG of the same size give or take 40 bytes, and a body no other frame has."""
    base = bases[index % len(bases)]
    comment = f"brandlens bench frame {index} {key}".encode()
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + base[2:]


def model_body(index: int, megabytes: float) -> bytes:
    return random.Random(1000 + index).randbytes(int(megabytes * 2**20))


def make_jobs(names: Any, jobs: int, frames: int) -> list[tuple[dict[str, Any], int]]:
    """(job row as a DynamoDB item, its frame count): videos of FRAMES_PER_VIDEO frames
    and single images, ``frames`` in all."""
    from brandlens_core.events import Purpose, deterministic_id
    from brandlens_core.jobs import Job, JobStatus

    # v videos and (jobs - v) images: v * FRAMES_PER_VIDEO + jobs - v = frames
    videos = max(0, min(jobs, (frames - jobs) // (FRAMES_PER_VIDEO - 1)))
    counts = [FRAMES_PER_VIDEO] * videos + [1] * (jobs - videos)
    counts[0] += frames - sum(counts)  # the remainder on the first video
    rng = random.Random(7)
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    out = []
    for i, count in enumerate(counts):
        video = i < videos
        name = f"clip{i:04d}.mp4" if video else f"still{i:04d}.jpg"
        key = f"analysis/{PROJECT}/campaign-{i // 100:02d}/{name}"
        version = deterministic_id("version", key)
        job_id = "job-" + deterministic_id("media", names.media_bucket, key, version)[:24]
        batches = (count + BATCH_SIZE - 1) // BATCH_SIZE
        created = start + timedelta(minutes=7 * i, seconds=rng.random())
        media: dict[str, Any] = {
            "bucket": names.media_bucket,
            "key": key,
            "version_id": version,
            "etag": '"' + deterministic_id("etag", key) + '"',
            "kind": "video" if video else "image",
            "format": "mp4" if video else "jpeg",
            "content_type": "video/mp4" if video else "image/jpeg",
            "width": 1920 if video else 1280,
            "height": 1080 if video else 720,
            "size_bytes": rng.randint(8, 40) * 2**20 if video else rng.randint(30, 900) * 1024,
        }
        framing: dict[str, Any] = {
            "frame_count": count,
            "batch_count": batches,
            "batch_size_frames": BATCH_SIZE,
            "manifest_key": f"frames/{job_id}/manifest.jsonl",
            "artifacts_bucket": names.artifacts_bucket,
        }
        if video:
            media["duration_seconds"] = count * 0.5
            framing |= {
                "strategy": "decode_all",
                "frames_planned": count,
                "frames_missing": 0,
                "duration_seconds": count * 0.5,
                "fps": 29.97,
                "codec": "h264",
                "rotation": 0,
            }
        else:
            framing["strategy"] = "image"
        job = Job(
            job_id=job_id,
            project=PROJECT,
            purpose=Purpose.ANALYSIS,
            status=JobStatus.COMPLETED,
            media=media,
            created_at=created,
            updated_at=created + timedelta(seconds=20 + 2 * count),
            revision=5 + batches,
            published={"MediaAccepted", "FramesExtracted", "AnalysisCompleted"},
            progress={
                "frames_done": count,
                "frames_planned": count,
                "frames_analysed": count,
            },
            framing=framing,
            model_arn=(
                f"arn:aws:rekognition:us-east-1:123456789012:project/brandlens-{PROJECT}/"
                f"version/brandlens-{PROJECT}.v{1 + i % 2}/1700000000000"
            ),
            batches_done=batches,
            aggregation_started_at=created.timestamp() + 15 + 2 * count,
            summary_key=f"results/{job_id}/summary.json",
            report_key=f"results/{job_id}/report.html",
        )
        item = job.to_item()
        item["analyzed_batches"] = {"SS": [f"{job_id}:{b:06d}" for b in range(batches)]}
        out.append((item, count))
    return out


class Data:
    """Everything the state part writes, and how to check it came back."""

    def __init__(self, names: Any, args: argparse.Namespace) -> None:
        self.names = names
        self.bases = base_jpegs(args.distinct)
        self.jobs = make_jobs(names, args.jobs, args.frames)
        self.frame_keys = [
            f"frames/{item['job_id']['S']}/{index:06d}.jpg"
            for item, count in self.jobs
            for index in range(count)
        ]
        self.models = [
            (
                f"models/{PROJECT}/brandlens-{PROJECT}.v{m + 1}/model/model.pt",
                model_body(m, args.model_mb),
            )
            for m in range(args.models)
        ]
        self.frame_bytes = sum(
            len(frame_body(self.bases, i, k)) for i, k in enumerate(self.frame_keys)
        )
        self.model_bytes = sum(len(body) for _, body in self.models)


async def bounded(concurrency: int, calls: list[Callable[[], Awaitable[Any]]]) -> None:
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def populate(clients: Any, data: Data, concurrency: int) -> dict[str, float]:
    """Write the jobs, the frames, then the models; seconds of each and in all."""
    ddb, s3 = clients.dynamodb, clients.s3
    table, bucket = data.names.table("jobs"), data.names.artifacts_bucket
    times: dict[str, float] = {}
    started = time.monotonic()

    def put_item(item: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
        return lambda: ddb.put_item(TableName=table, Item=item)

    def put_frame(index: int, key: str) -> Callable[[], Awaitable[Any]]:
        return lambda: s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=frame_body(data.bases, index, key),
            ContentType="image/jpeg",
        )

    def put_model(key: str, body: bytes) -> Callable[[], Awaitable[Any]]:
        return lambda: s3.put_object(Bucket=bucket, Key=key, Body=body)

    t0 = time.monotonic()
    await bounded(concurrency, [put_item(item) for item, _ in data.jobs])
    times["jobs_seconds"] = time.monotonic() - t0
    t0 = time.monotonic()
    await bounded(concurrency, [put_frame(i, k) for i, k in enumerate(data.frame_keys)])
    times["frames_seconds"] = time.monotonic() - t0
    t0 = time.monotonic()
    await bounded(2, [put_model(k, b) for k, b in data.models])
    times["models_seconds"] = time.monotonic() - t0
    times["seconds"] = time.monotonic() - started
    return {k: round(v, 2) for k, v in times.items()}


def _normal(item: dict[str, Any]) -> dict[str, Any]:
    """An item with its sets sorted (DynamoDB does not keep a set's order)."""
    out = {}
    for name, value in item.items():
        ((kind, inner),) = value.items()
        out[name] = {kind: sorted(inner)} if kind in ("SS", "NS", "BS") else value
    return out


async def verify(clients: Any, data: Data, sample: int) -> dict[str, Any]:
    """Counts, sampled bodies (sha256) and sampled rows, against what was written."""
    s3, ddb = clients.s3, clients.dynamodb
    bucket, table = data.names.artifacts_bucket, data.names.table("jobs")
    objects = 0
    stored_bytes = 0
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects += len(page.get("Contents", []))
        stored_bytes += sum(o["Size"] for o in page.get("Contents", []))
    items = 0
    async for page in ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
        items += page["Count"]
    rng = random.Random(11)
    indexes = rng.sample(range(len(data.frame_keys)), min(sample, len(data.frame_keys)))
    wanted = [
        (key, frame_body(data.bases, i, key))
        for i, key in ((i, data.frame_keys[i]) for i in indexes)
    ] + data.models
    body_mismatches: list[str] = []

    async def check_body(key: str, body: bytes) -> None:
        got = await s3.get_object(Bucket=bucket, Key=key)
        async with got["Body"] as stream:
            read = await stream.read()
        if hashlib.sha256(read).digest() != hashlib.sha256(body).digest():
            body_mismatches.append(key)

    await bounded(8, [functools.partial(check_body, k, b) for k, b in wanted])
    item_mismatches: list[str] = []
    for item, _ in rng.sample(data.jobs, min(sample, len(data.jobs))):
        got = await ddb.get_item(TableName=table, Key={"job_id": item["job_id"]})
        if _normal(got.get("Item", {})) != _normal(item):
            item_mismatches.append(item["job_id"]["S"])
    expected_objects = len(data.frame_keys) + len(data.models)
    return {
        "objects": objects,
        "objects_expected": expected_objects,
        "object_bytes": stored_bytes,
        "object_bytes_expected": data.frame_bytes + data.model_bytes,
        "items": items,
        "items_expected": len(data.jobs),
        "bodies_checked": len(wanted),
        "body_mismatches": body_mismatches,
        "rows_checked": min(sample, len(data.jobs)),
        "row_mismatches": item_mismatches,
        "ok": (
            objects == expected_objects
            and stored_bytes == data.frame_bytes + data.model_bytes
            and items == len(data.jobs)
            and not body_mismatches
            and not item_mismatches
        ),
    }


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_stop(moto: Any) -> float:
    """SIGTERM (a clean stop: moto saves, then exits); seconds to the process's exit."""
    t0 = time.monotonic()
    moto.stop()
    return round(time.monotonic() - t0, 3)


async def state_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from brandlens_cli.embedded import MotoServer
    from brandlens_cli.persist import size_of
    from brandlens_core.aws import AwsClients
    from brandlens_core.settings import AwsSettings
    from brandlens_core.stack import StackNames, define, deploy

    names = StackNames("persist")
    t0 = time.monotonic()
    data = await asyncio.to_thread(Data, names, args)
    print(
        f"data: {len(data.jobs)} jobs, {len(data.frame_keys)} frames "
        f"({data.frame_bytes / len(data.frame_keys) / 1024:.0f} KB each on average, "
        f"{len(data.bases)} distinct images, every body unique), {len(data.models)} models "
        f"of {args.model_mb} MB; {(data.frame_bytes + data.model_bytes) / 2**20:.0f} MB "
        f"in all; made in {time.monotonic() - t0:.0f} s"
    )

    def settings(moto: Any) -> AwsSettings:
        return AwsSettings(endpoint_url=moto.endpoint_url, max_attempts=1)

    state_dir = work / "aws"
    populations: dict[str, dict[str, Any]] = {}
    moto_cpu: dict[str, float] = {}
    save: dict[str, Any] = {}
    for mode in ("plain", "persistent"):
        moto = MotoServer(
            log_path=work / f"moto-{mode}.log",
            state_dir=state_dir if mode == "persistent" else None,
        )
        moto.start()
        try:
            async with AwsClients(settings(moto)) as clients:
                await deploy(clients, define(names))
                if mode == "persistent":
                    moto.restore_state()  # empty: starts recording, as the stack does
                assert moto._process is not None
                cpu0 = cpu_seconds(moto._process.pid)
                populations[mode] = await populate(clients, data, args.concurrency)
                moto_cpu[mode] = round(cpu_seconds(moto._process.pid) - cpu0, 2)
            print(
                f"populate, {'with' if mode == 'persistent' else 'without'} persistence: "
                f"{populations[mode]['seconds']:.1f} s (jobs "
                f"{populations[mode]['jobs_seconds']:.1f}, frames "
                f"{populations[mode]['frames_seconds']:.1f}, models "
                f"{populations[mode]['models_seconds']:.1f}); moto CPU {moto_cpu[mode]:.1f} s"
            )
            if mode == "persistent":
                journal = state_dir / "journal.jsonl"
                save["journal_bytes_before_stop"] = journal.stat().st_size
                save["bytes_before_stop"] = size_of(state_dir)
                save["seconds"] = timed_stop(moto)
        finally:
            moto.stop()
    save["bytes_on_disk"] = size_of(state_dir)
    save["snapshot_bytes"] = (state_dir / "snapshot.jsonl").stat().st_size
    save["blob_files"] = sum(1 for _ in (state_dir / "blobs").glob("*/*"))

    # restart on the same state dir, as `brandlens up` does
    restart: dict[str, Any] = {}
    t0 = time.monotonic()
    moto = MotoServer(log_path=work / "moto-restart.log", state_dir=state_dir)
    moto.start(timeout_seconds=600)
    restart["process_start_seconds"] = round(time.monotonic() - t0, 3)
    try:
        async with AwsClients(settings(moto)) as clients:
            t1 = time.monotonic()
            await deploy(clients, define(names))
            restart["deploy_seconds"] = round(time.monotonic() - t1, 3)
            t1 = time.monotonic()
            restored = await asyncio.to_thread(moto.restore_state)
            restart["restore_request_seconds"] = round(time.monotonic() - t1, 3)
            restart["seconds"] = round(time.monotonic() - t0, 3)
            restart["restored"] = restored
            t1 = time.monotonic()
            check = await verify(clients, data, args.sample)
            check["seconds"] = round(time.monotonic() - t1, 2)
        save_again = timed_stop(moto)
    finally:
        moto.stop()

    plain, persistent = populations["plain"]["seconds"], populations["persistent"]["seconds"]
    return {
        "jobs": len(data.jobs),
        "frames": len(data.frame_keys),
        "models": len(data.models),
        "distinct_images": len(data.bases),
        "frame_bytes": data.frame_bytes,
        "model_bytes": data.model_bytes,
        "requests": len(data.jobs) + len(data.frame_keys) + len(data.models),
        "concurrency": args.concurrency,
        "populate": populations,
        "populate_ratio": round(persistent / plain, 3),
        "populate_moto_cpu_seconds": moto_cpu,
        "populate_moto_cpu_ratio": (
            round(moto_cpu["persistent"] / moto_cpu["plain"], 3) if moto_cpu["plain"] else None
        ),
        "save": save,
        "restart": restart,
        "save_after_restore_seconds": save_again,
        "verify": check,
    }


def show_state(r: dict[str, Any]) -> None:
    mb = 2**20
    plain, persistent = r["populate"]["plain"], r["populate"]["persistent"]
    print(
        f"\nstate of {r['jobs']} jobs, {r['frames']} frames, {r['models']} models "
        f"({(r['frame_bytes'] + r['model_bytes']) / mb:.0f} MB), {r['requests']} requests "
        f"{r['concurrency']} at a time:"
    )
    print(
        f"  populate: {persistent['seconds']:.1f} s with persistence, {plain['seconds']:.1f} s "
        f"without: ratio {r['populate_ratio']:.2f} (moto CPU "
        f"{r['populate_moto_cpu_seconds']['persistent']:.1f} s / "
        f"{r['populate_moto_cpu_seconds']['plain']:.1f} s = {r['populate_moto_cpu_ratio']})"
    )
    for part in ("jobs", "frames", "models"):
        a, b = persistent[f"{part}_seconds"], plain[f"{part}_seconds"]
        print(f"    {part:<7} {a:7.2f} s vs {b:7.2f} s  ratio {a / b if b else 0:.2f}")
    s = r["save"]
    print(
        f"  save (clean stop, SIGTERM to exit): {s['seconds']:.2f} s; journal before it "
        f"{s['journal_bytes_before_stop'] / mb:.1f} MB; on disk after "
        f"{s['bytes_on_disk'] / mb:.0f} MB (snapshot {s['snapshot_bytes'] / mb:.1f} MB, "
        f"{s['blob_files']} blobs)"
    )
    t = r["restart"]
    rep = t["restored"]
    print(
        f"  restart + restore: {t['seconds']:.2f} s from start to restored (process up "
        f"{t['process_start_seconds']:.2f} s incl. loading the snapshot "
        f"{rep.get('load_seconds', 0):.2f} s; deploy {t['deploy_seconds']:.2f} s; restore "
        f"request {t['restore_request_seconds']:.2f} s, of which moto's restore "
        f"{rep.get('seconds', 0):.2f} s)"
    )
    print(
        f"    restored: {rep.get('objects')} objects, {rep.get('items')} items, "
        f"{rep.get('messages')} messages; {rep.get('bytes_on_disk', 0) / mb:.0f} MB on disk"
    )
    print(f"  save again (restored state, unchanged): {r['save_after_restore_seconds']:.2f} s")
    v = r["verify"]
    print(
        f"  verify: objects {v['objects']}/{v['objects_expected']}, bytes "
        f"{v['object_bytes']}/{v['object_bytes_expected']}, items "
        f"{v['items']}/{v['items_expected']}, {v['bodies_checked']} bodies "
        f"({len(v['body_mismatches'])} differ), {v['rows_checked']} rows "
        f"({len(v['row_mismatches'])} differ): {'PASS' if v['ok'] else 'FAIL'}"
    )


# -- the load bench with and without persistence ----------------------------------------


async def load_part(args: argparse.Namespace) -> dict[str, Any]:
    import load

    # rounds: without, with; then with, without (ABBA: a drift in the machine's load
    # counts against both); the fastest drain of each is kept
    order = [
        persist
        for i in range(args.load_rounds)
        for persist in ((False, True), (True, False))[i % 2]
    ]
    every: dict[str, list[dict[str, Any]]] = {"plain": [], "persistent": []}
    for persist in order:
        mode = "persistent" if persist else "plain"
        print(f"\nload bench, {'with' if persist else 'without'} persistence:")
        ns = argparse.Namespace(
            images=args.images,
            videos=args.videos,
            video_seconds=args.video_seconds,
            timeout_seconds=args.timeout_seconds,
            persist=persist,
        )
        t0 = time.monotonic()
        result = await load.run(ns)
        result.pop("timeline", None)
        result["wall_seconds"] = round(time.monotonic() - t0, 1)
        every[mode].append(result)
        print(
            f"  {result['jobs']}; {result['frames_analysed']} frames drained in "
            f"{result['drain_seconds']} s: {result['frames_per_second']} frames/s; moto CPU "
            f"{result['moto_cpu_seconds_in_drain']} s; whole run {result['wall_seconds']} s"
        )
    runs = {mode: max(rs, key=lambda r: r["frames_per_second"]) for mode, rs in every.items()}
    plain, persistent = runs["plain"], runs["persistent"]
    ok = (
        all(
            set(r["jobs"]) == {"COMPLETED"} and not r["dlq"] and not r["frame_problems"]
            for rs in every.values()
            for r in rs
        )
        and plain["frames_analysed"] == persistent["frames_analysed"]
    )
    ratio = (
        persistent["frames_per_second"] / plain["frames_per_second"]
        if plain["frames_per_second"]
        else 0.0
    )
    return {
        "images": args.images,
        "videos": args.videos,
        "video_seconds": args.video_seconds,
        "rounds": args.load_rounds,
        "order": ["persistent" if p else "plain" for p in order],
        "runs": runs,
        "every_run": {
            mode: [{k: r[k] for k in LOAD_FIGURES} for r in rs] for mode, rs in every.items()
        },
        "throughput_ratio": round(ratio, 3),
        "drain_ratio": round(persistent["drain_seconds"] / plain["drain_seconds"], 3),
        "moto_cpu_ratio": (
            round(persistent["moto_cpu_seconds_in_drain"] / plain["moto_cpu_seconds_in_drain"], 3)
            if plain["moto_cpu_seconds_in_drain"]
            else None
        ),
        "all_jobs_completed": ok,
        "target": LOAD_TARGET,
        "passed": ok and ratio >= LOAD_TARGET,
    }


def show_load(r: dict[str, Any]) -> None:
    plain, persistent = r["runs"]["plain"], r["runs"]["persistent"]
    print(
        f"\nload bench ({r['images']} images + {r['videos']} videos of {r['video_seconds']} s; "
        f"runs: {', '.join(r['order'])}; the fastest of each kept):"
    )
    print(f"  {'':<22}{'without':>10}{'with':>10}{'ratio':>8}")
    for label, key in (
        ("frames analysed", "frames_analysed"),
        ("drain (s)", "drain_seconds"),
        ("frames/s", "frames_per_second"),
        ("moto CPU in drain (s)", "moto_cpu_seconds_in_drain"),
        ("base model (s)", "base_model_seconds"),
    ):
        a, b = plain[key], persistent[key]
        print(f"  {label:<22}{a:>10}{b:>10}{(b / a if a else 0):>8.3f}")
    print(f"  AWS state on disk after the run: {persistent['state_bytes_on_disk'] / 2**20:.1f} MB")
    print(
        f"  throughput with / without persistence: {r['throughput_ratio']:.3f} "
        f"(target >= {r['target']}); every job COMPLETED both ways: {r['all_jobs_completed']}: "
        f"{'PASS' if r['passed'] else 'FAIL'}"
    )


# -- main ----------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from brandlens_cli.embedded import LOCAL_CREDENTIALS

    os.environ.update(LOCAL_CREDENTIALS)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = {}
    if args.part in ("all", "state"):
        work = Path(tempfile.mkdtemp(prefix="brandlens-bench-persistence-"))
        try:
            result["state"] = await state_part(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        show_state(result["state"])
    if args.part in ("all", "load"):
        result["load"] = await load_part(args)
    passed = [result["state"]["verify"]["ok"]] if "state" in result else []
    passed += [result["load"]["passed"]] if "load" in result else []
    result |= {
        "passed": all(passed),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("all", "state", "load"), default="all")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--model-mb", type=float, default=19.0)
    parser.add_argument("--distinct", type=int, default=300, help="distinct frame images")
    parser.add_argument("--sample", type=int, default=300, help="bodies and rows compared")
    parser.add_argument("--concurrency", type=int, default=16, help="requests at once")
    parser.add_argument("--images", type=int, default=60, help="load part: images dropped")
    parser.add_argument("--videos", type=int, default=2, help="load part: videos dropped")
    parser.add_argument("--video-seconds", type=float, default=10.0)
    parser.add_argument("--timeout-seconds", type=float, default=1200.0)
    parser.add_argument(
        "--load-rounds",
        type=int,
        default=1,
        help="load part: rounds of (without, with), alternating the order; best kept",
    )
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    if min(args.jobs, args.frames, args.distinct, args.concurrency, args.load_rounds) < 1 or (
        args.frames < args.jobs
    ):
        parser.error("--jobs, --frames, --distinct, --concurrency must be positive, frames >= jobs")
    result = asyncio.run(bench(args))
    if "load" in result:
        show_load(result["load"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    shown = RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS
    print(f"  passed: {result['passed']}  (written to {shown})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
