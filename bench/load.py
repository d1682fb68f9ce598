"""Load: 200 images and 5 videos dropped into the media bucket at once, on the whole
embedded stack (every service its own process, the model-server with a trained model).

Prints: the queue depths over time, jobs finished over time, the time to drain (drop to
the last job terminal), throughput (frames analysed per second, jobs per second), the
peak memory of each service (resident set of its process and its children: ffmpeg under
the framer, model processes under the model-server, sampled every second), and, as the
baseline measured in the same run after the drain, the bare DetectCustomLabels rate of
the same model on the same frames (one at a time, and 16 at once as the inferer does).
Checks on the way: every job COMPLETED, every frame of every video once, DLQs empty;
exits 1 otherwise. Writes bench/results/load.json.

    python bench/load.py [--images 200] [--videos 5] [--video-seconds 20] [--no-persist]

``--no-persist`` runs moto without a state dir (no journal of S3/DynamoDB/SQS changes);
bench/persistence.py runs this bench both ways to measure what keeping the state costs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "load.json"
sys.path.insert(0, str(ROOT.parent))


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` itself, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_images(directory: Path, count: int, brands: list[Any]) -> list[Path]:
    """``count`` distinct JPEGs: frames of synthetic brand videos (backgrounds, distractors,
    logos moving), 640x360."""
    from brandlens_synth.video import render_video_frames

    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    seed = 100
    while len(paths) < count:
        for _, image in render_video_frames(
            brands=brands, seconds=5, fps=4, width=640, height=360, seed=seed
        ):
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=88)
            path = directory / f"img{len(paths):04d}.jpg"
            path.write_bytes(out.getvalue())
            paths.append(path)
            if len(paths) == count:
                break
        seed += 1
    return paths


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.pipeline import BASE_PROJECT, analysis_video, trained_fleet

    from brandlens_cli.embedded import LOCAL_CREDENTIALS
    from brandlens_cli.persist import size_of
    from brandlens_core.aws import AwsClients
    from brandlens_core.events import Purpose
    from brandlens_core.jobs import JobStatus
    from brandlens_core.settings import AwsSettings

    os.environ.update(LOCAL_CREDENTIALS)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    work = Path(tempfile.mkdtemp(prefix="brandlens-load-"))
    persist = getattr(args, "persist", True)
    async with trained_fleet(
        work / "state", work / "media", stack_name="load", persist=persist
    ) as fleet:
        print(f"stack up and base model trained in {fleet.timings['base_model_seconds']:.0f}s")
        made = time.monotonic()
        images, videos = await asyncio.gather(
            asyncio.to_thread(make_images, work / "images", args.images, fleet.brands),
            asyncio.gather(
                *(
                    asyncio.to_thread(
                        analysis_video,
                        work / "videos",
                        fleet.brands,
                        seconds=args.video_seconds,
                        seed=200 + i,
                    )
                    for i in range(args.videos)
                )
            ),
        )
        print(
            f"{len(images)} images and {len(videos)} videos made in {time.monotonic() - made:.0f}s"
        )
        expected = len(images) + len(videos)
        before = {j.job_id for j in await fleet.all_jobs()}
        dropped = time.monotonic()
        await asyncio.gather(
            *(fleet.put(f"analysis/{BASE_PROJECT}/load/{p.name}", p) for p in images),
            *(fleet.put(f"analysis/{BASE_PROJECT}/load/{p.name}", p) for p in videos),
        )
        drop_seconds = time.monotonic() - dropped
        pids = {n: p.process.pid for n, p in fleet.stack.processes.items() if p.process}
        moto_process = fleet.stack.moto._process if fleet.stack.moto else None
        moto_pid = moto_process.pid if moto_process else 0
        moto_cpu_at_drop = cpu_seconds(moto_pid)
        peak_rss: Counter[str] = Counter()
        timeline: list[dict[str, Any]] = []
        last_terminal = dropped
        while True:
            now = time.monotonic() - dropped
            for name, pid in pids.items():
                peak_rss[name] = max(peak_rss[name], tree_rss_bytes(pid))
            jobs = [j for j in await fleet.all_jobs() if j.job_id not in before]
            terminal = [j for j in jobs if j.terminal]
            depths = await fleet.queue_depths()
            timeline.append(
                {"t": round(now, 1), "jobs_done": len(terminal), "jobs": len(jobs), **depths}
            )
            if len(terminal) > (timeline[-2]["jobs_done"] if len(timeline) > 1 else 0):
                last_terminal = time.monotonic()
            if len(jobs) >= expected and len(terminal) == len(jobs):
                break
            if now > args.timeout_seconds:
                print(f"not drained after {args.timeout_seconds:.0f}s", file=sys.stderr)
                break
            await asyncio.sleep(1.0)
        drain_seconds = last_terminal - dropped
        moto_cpu = cpu_seconds(moto_pid) - moto_cpu_at_drop
        statuses = Counter(j.status.value for j in jobs)
        frames = 0
        problems: dict[str, list[str]] = {}
        video_seconds = 0.0
        for job in jobs:
            if job.status is not JobStatus.COMPLETED or job.purpose is not Purpose.ANALYSIS:
                continue
            if str(job.media.get("kind")) == "video":
                tally = await fleet.frame_tally(job)
                frames += len(tally.manifest)
                video_seconds += float(job.media.get("duration_seconds") or args.video_seconds)
                if tally.problems():
                    problems[job.job_id] = tally.problems()
            else:
                frames += 1
        final_depths = await fleet.queue_depths()
        dlq = {q: n for q, n in final_depths.items() if q.endswith("-dlq") and n}

        # the baseline: bare DetectCustomLabels against the same model on the same frames
        model = (await fleet.models.all(BASE_PROJECT))[-1].version_arn
        keys = [
            f"frames/{j.job_id}/000000.jpg"
            for j in jobs
            if j.status is JobStatus.COMPLETED and str(j.media.get("kind")) != "video"
        ][:64]
        settings = AwsSettings(
            endpoint_url=fleet.stack.endpoint_url,
            rekognition_endpoint_url=fleet.stack.model_server_url,
            max_attempts=1,
        )
        async with AwsClients(settings, services=("rekognition",)) as clients:
            rek = clients.get("rekognition")
            bucket = fleet.stack.names.artifacts_bucket

            async def call(key: str) -> None:
                """One answered call; a throttled one is tried again (the model serves
                its inference units' rate, as in the pipeline)."""
                while True:
                    try:
                        await rek.detect_custom_labels(
                            ProjectVersionArn=model,
                            Image={"S3Object": {"Bucket": bucket, "Name": key}},
                        )
                        return
                    except Exception as exc:
                        if "ProvisionedThroughputExceeded" not in type(exc).__name__:
                            raise
                        await asyncio.sleep(0.05)

            await call(keys[0])  # warm
            t0 = time.monotonic()
            for key in keys:
                await call(key)
            sequential = len(keys) / (time.monotonic() - t0)
            t0 = time.monotonic()
            sem = asyncio.Semaphore(16)

            async def bounded(key: str) -> None:
                async with sem:
                    await call(key)

            await asyncio.gather(*(bounded(k) for k in keys * 2))
            concurrent = 2 * len(keys) / (time.monotonic() - t0)
        state_bytes = size_of(fleet.stack.aws_state_dir) if persist else 0

    throughput = frames / drain_seconds if drain_seconds > 0 else 0.0
    return {
        "persist": persist,
        "images": len(images),
        "videos": len(videos),
        "video_seconds_each": args.video_seconds,
        "drop_seconds": round(drop_seconds, 2),
        "drain_seconds": round(drain_seconds, 1),
        "jobs": dict(statuses),
        "frames_analysed": frames,
        "frames_per_second": round(throughput, 2),
        "jobs_per_second": round(len(jobs) / drain_seconds, 3) if drain_seconds else 0,
        "images_per_second": round(len(images) / drain_seconds, 2) if drain_seconds else 0,
        "video_seconds_per_second": round(video_seconds / drain_seconds, 2) if drain_seconds else 0,
        "bare_call_frames_per_second": {
            "sequential": round(sequential, 2),
            "16_at_once": round(concurrent, 2),
        },
        "pipeline_over_bare_16": round(throughput / concurrent, 3) if concurrent else None,
        "peak_rss_mb": {n: round(b / 2**20) for n, b in sorted(peak_rss.items())},
        "base_model_seconds": round(fleet.timings["base_model_seconds"], 1),
        "moto_cpu_seconds_in_drain": round(moto_cpu, 2),
        "state_bytes_on_disk": state_bytes,
        "dlq": dlq,
        "frame_problems": problems,
        "timeline": timeline,
        "machine": {"cpus": os.cpu_count()},
        "at": datetime.now(UTC).isoformat(),
    }


def show(r: dict[str, Any]) -> None:
    queues = ["ingest", "framer", "inferer", "model-manager"]
    print(f"\nqueue depths after the drop ({r['images']} images + {r['videos']} videos):")
    print(f"{'t (s)':>7} {'jobs done':>10} " + " ".join(f"{q:>13}" for q in queues))
    due = 0.0
    for row in r["timeline"]:
        if row["t"] >= due:
            print(
                f"{row['t']:7.0f} {row['jobs_done']:>5}/{row['jobs']:<4} "
                + " ".join(f"{row.get(q, 0):>13}" for q in queues)
            )
            due = row["t"] + 10
    print(f"\ndropped in {r['drop_seconds']} s; drained in {r['drain_seconds']} s")
    print(f"jobs: {r['jobs']}; frames analysed: {r['frames_analysed']}")
    print(
        f"throughput: {r['frames_per_second']} frames/s, {r['jobs_per_second']} jobs/s, "
        f"{r['images_per_second']} images/s, {r['video_seconds_per_second']} video-s per s"
    )
    bare = r["bare_call_frames_per_second"]
    print(
        f"bare DetectCustomLabels (same model, same frames): {bare['sequential']} frames/s "
        f"one at a time, {bare['16_at_once']} frames/s 16 at once"
    )
    print(f"pipeline / bare (16 at once): {r['pipeline_over_bare_16']}")
    print(
        "peak memory per service (MB, process + children): "
        + ", ".join(f"{n} {mb}" for n, mb in r["peak_rss_mb"].items())
    )
    print(f"DLQs: {r['dlq'] or 'empty'}; frame problems: {r['frame_problems'] or 'none'}")
    state = f"{r['state_bytes_on_disk'] / 2**20:.1f} MB on disk" if r["persist"] else "not kept"
    print(f"moto CPU during the drain: {r['moto_cpu_seconds_in_drain']} s; AWS state: {state}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--videos", type=int, default=5)
    parser.add_argument("--video-seconds", type=float, default=20.0)
    parser.add_argument("--timeout-seconds", type=float, default=1800.0)
    parser.add_argument(
        "--no-persist",
        dest="persist",
        action="store_false",
        help="moto without a state dir (the AWS state is not kept)",
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    show(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    ok = set(result["jobs"]) == {"COMPLETED"} and not result["dlq"] and not result["frame_problems"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
