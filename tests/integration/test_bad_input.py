"""The bad-input corpus: hostile media, keys and messages, generated here, run through the
real services at once with a good video in flight beside them.

Every bad object ends in a terminal state with a reason a person can act on (REJECTED
by ingest, or FAILED by the framer); every malformed or oversized message on each
queue-fed service's queue is retried and dead-lettered while the service keeps running;
the good video is framed as if nothing happened. The tally (item, outcome, reason) is
printed and kept in tests/artifacts/bad-input-tally.json.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from brandlens_core.jobs import Job, JobStatus
from brandlens_framer.settings import FramerSettings
from tests.conftest import ARTIFACTS
from tests.support import (
    Stack,
    eventually,
    make_mp4,
    s3_event,
    start_framer,
    start_ingest,
    start_service,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PROJECT = "corpus"
DECODABLE = ("corrupt-mdat-late.mov",)  # may be framed: the decoder conceals the damage
QUEUE_FED = ("ingest", "framer", "labeler", "trainer", "model-manager", "inferer")
SUBPROCESS_SERVICES = {
    "labeler": "brandlens_labeler",
    "trainer": "brandlens_trainer",
    "model-manager": "brandlens_model_manager",
    "inferer": "brandlens_inferer",
}


# -- media -------------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    """A 1-bit greyscale PNG of any declared size; its pixels are zeros, compressed as a
    stream, so a 30000 x 30000 image is ~100 KB on disk and 112 MB decoded."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _patch_box(data: bytes, kind: bytes, patch: Callable[[bytearray, int], None]) -> bytes:
    """Apply ``patch(buffer, offset_after_type)`` to every ``kind`` box."""
    out = bytearray(data)
    start = 0
    while (at := out.find(kind, start)) != -1:
        patch(out, at + 4)
        start = at + 4
    return bytes(out)


def _absurd_duration(mp4: bytes) -> bytes:
    """mvhd, tkhd and mdhd (version 0) all declare ~136 years."""

    def mvhd(b: bytearray, o: int) -> None:  # version/flags, ctime, mtime, timescale, duration
        b[o + 12 : o + 16] = struct.pack(">I", 1)
        b[o + 16 : o + 20] = struct.pack(">I", 0xFFFFFFF0)

    def tkhd(b: bytearray, o: int) -> None:  # version/flags, ctime, mtime, id, reserved, duration
        b[o + 20 : o + 24] = struct.pack(">I", 0xFFFFFFF0)

    out = _patch_box(mp4, b"mvhd", mvhd)
    out = _patch_box(out, b"tkhd", tkhd)
    return _patch_box(out, b"mdhd", mvhd)


def _absurd_frame_rate(mp4: bytes) -> bytes:
    """The video track's timescale becomes 1,000,000 and every frame lasts one tick:
    a million frames per second, and a 1 s clip declares 10 microseconds."""

    def mdhd(b: bytearray, o: int) -> None:
        b[o + 12 : o + 16] = struct.pack(">I", 1_000_000)
        b[o + 16 : o + 20] = struct.pack(">I", 10)

    def stts(b: bytearray, o: int) -> None:  # version/flags, count, (samples, delta)...
        count = struct.unpack(">I", b[o + 4 : o + 8])[0]
        for i in range(min(count, 64)):
            at = o + 8 + 8 * i + 4
            b[at : at + 4] = struct.pack(">I", 1)

    return _patch_box(_patch_box(mp4, b"mdhd", mdhd), b"stts", stts)


def _corrupt(data: bytes, start_fraction: float, length: int, seed: int) -> bytes:
    out = bytearray(data)
    start = int(len(out) * start_fraction)
    out[start : start + length] = bytes(
        (seed * 31 + i * 17) % 256 for i in range(min(length, len(out) - start))
    )
    return bytes(out)


def media_corpus(tmp: Path) -> dict[str, bytes]:
    mp4 = make_mp4(tmp / "base.mp4", seconds=2.0)
    mov_path = tmp / "base.mov"
    mov = make_mp4(mov_path, seconds=2.0)  # ffmpeg picks the QuickTime muxer from .mov
    moov = mp4.find(b"moov")
    mdat = mp4.find(b"mdat")
    return {
        "zero-length.mp4": b"",
        "text-named.mp4": b"this is not a video\n" * 20,
        "png-magic-then-garbage.png": b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50,
        "jpeg-magic-only.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 12,
        "truncated-in-ftyp.mp4": mp4[:12],
        "truncated-in-moov.mp4": mp4[: moov + 40],
        "truncated-in-mdat.mp4": mp4[: mdat + (len(mp4) - mdat) // 2],
        "truncated.mov": mov[: len(mov) // 3],
        "corrupt-moov.mp4": _corrupt(mp4, moov / len(mp4), 200, seed=1),
        "corrupt-mdat.mp4": _corrupt(mp4, (mdat + 64) / len(mp4), 2000, seed=2),
        "corrupt-mdat-late.mov": _corrupt(mov, 0.5, 2000, seed=3),
        "absurd-duration.mp4": _absurd_duration(mp4),
        "absurd-frame-rate.mp4": _absurd_frame_rate(mp4),
        "bomb-30000x30000.png": _png(30_000, 30_000),
        "tall-1x20001.png": _png(1, 20_001),
        "wide-20001x1.png": _png(20_001, 1),
    }


HOSTILE_KEYS = {
    "traversal": f"analysis/{PROJECT}/../../etc/passwd.mp4",
    "encoded-traversal": f"analysis/{PROJECT}/%2e%2e/%2e%2e/x.mp4",
    "control-characters": f"analysis/{PROJECT}/bell%07and%1bescape.mp4",
    "non-utf8": f"analysis/{PROJECT}/caf%E9%FF.mp4",
    "bidi-override": f"analysis/{PROJECT}/%E2%80%AEgpj.mp4",
}


def bad_messages() -> dict[str, str]:
    oversized = json.dumps(
        {"detail-type": "Object Created", "source": "aws.s3", "detail": {"pad": "x" * 250_000}}
    )
    return {
        "not-json": "{this is not json",
        "wrong-shape": json.dumps({"unexpected": [1, 2, 3]}),
        "oversized": oversized,  # just under SQS's 256 KiB
    }


# -- the run -------------------------------------------------------------------------------


async def _jobs(stack: Stack) -> list[Job]:
    rows = (await stack.clients.dynamodb.scan(TableName=stack.names.table("jobs")))["Items"]
    return [Job.from_item(r) for r in rows]


def passed_framer(job: Job) -> bool:
    """The framer wrote a manifest of decoded frames for the job."""
    return bool(job.framing.get("manifest_key")) and int(job.framing.get("frame_count", 0)) > 0


async def test_the_bad_input_corpus_fails_clearly_and_loses_nothing_else(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.capture_events()
    media = await asyncio.to_thread(media_corpus, tmp_path)
    good = make_mp4(tmp_path / "good.mp4", seconds=2.0)
    fast = {"retry_base_delay_seconds": 0.2, "retry_max_delay_seconds": 1.0}
    workers = [
        await start_ingest(stack, **fast),
        await start_framer(stack, FramerSettings(analysis_interval_ms=500), **fast),
    ]
    env = stack.env()
    for service in SUBPROCESS_SERVICES:
        prefix = f"BRANDLENS_{service.upper().replace('-', '_')}_WORKER_"
        env |= {
            prefix + "RETRY_BASE_DELAY_SECONDS": "0.2",
            prefix + "RETRY_MAX_DELAY_SECONDS": "1",
            prefix + "WAIT_TIME_SECONDS": "1",
        }
    processes = {
        name: await start_service(module, env, tmp_path / f"{name}.log")
        for name, module in SUBPROCESS_SERVICES.items()
    }
    try:
        bucket = stack.names.media_bucket
        puts = [
            stack.clients.s3.put_object(Bucket=bucket, Key=f"analysis/{PROJECT}/{name}", Body=body)
            for name, body in media.items()
        ]
        puts.append(
            stack.clients.s3.put_object(
                Bucket=bucket, Key=f"analysis/{PROJECT}/good.mp4", Body=good
            )
        )
        await asyncio.gather(*puts)
        ingest_url = stack.queue_urls["ingest"]
        for i, key in enumerate(HOSTILE_KEYS.values()):
            event = s3_event(bucket, key, version_id=f"hostile{i}", event_id=f"hostile-{i}")
            await stack.clients.sqs.send_message(QueueUrl=ingest_url, MessageBody=json.dumps(event))
        messages = bad_messages()
        for service in QUEUE_FED:
            for body in messages.values():
                await stack.clients.sqs.send_message(
                    QueueUrl=stack.queue_urls[service], MessageBody=body
                )
        expected_jobs = len(media) + 1 + len(HOSTILE_KEYS)

        async def settled() -> list[Job]:
            jobs = await _jobs(stack)
            done = [j for j in jobs if j.terminal or j.status is JobStatus.FRAMED]
            return jobs if len(jobs) >= expected_jobs and len(done) == len(jobs) else []

        jobs = await eventually(settled, timeout=240, interval=1, message="every job settled")

        async def dead_lettered() -> dict[str, int]:
            depths = {s: await stack.queue_depth(await stack.dlq_url(s)) for s in QUEUE_FED}
            return depths if all(n >= len(messages) for n in depths.values()) else {}

        dlqs = await eventually(
            dead_lettered, timeout=120, interval=1, message="bad messages DLQ'd"
        )
        queues = {s: await stack.queue_depth(stack.queue_urls[s]) for s in QUEUE_FED}
        alive = {name: p.returncode is None for name, p in processes.items()}
        alive |= {w.worker.name: not w.task.done() for w in workers}
    finally:
        for proc in processes.values():
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        for worker in workers:
            await worker.stop()

    by_name: dict[str, Job] = {}
    for job in jobs:
        key = str(job.media.get("key") or job.job_id)
        prefix = f"analysis/{PROJECT}/"
        by_name[key.removeprefix(prefix) if key.startswith(prefix) else repr(key)] = job
    tally = [
        {
            "item": name,
            "outcome": job.status.value,
            "frames": int(job.framing.get("frame_count", 0)),
            "reason": job.reason,
        }
        for name, job in sorted(by_name.items())
    ]
    report = {
        "jobs": tally,
        "dead_lettered_per_queue": dlqs,
        "left_on_queues": queues,
        "services_alive": alive,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bad-input-tally.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print("\nbad-input tally:")
        for row in tally:
            print(
                f"  {row['item'][:34]:34} {row['outcome']:9} {row['frames']:>3} frames  "
                f"{(row['reason'] or '')[:100]}"
            )
        print(f"  dead-lettered per queue: {dlqs}; services alive: {alive}")

    assert len(jobs) == expected_jobs, sorted(by_name)
    # The project has no model, so the inferer may already have failed a framed job for
    # that (a race with the snapshot above); what matters is that the framer framed it.
    good_job = by_name["good.mp4"]
    assert passed_framer(good_job), good_job
    assert good_job.status is JobStatus.FRAMED or (
        good_job.status is JobStatus.FAILED and "no trained model" in (good_job.reason or "")
    ), good_job
    for name, job in by_name.items():
        if name == "good.mp4":
            continue
        assert job.status in (JobStatus.REJECTED, JobStatus.FAILED, JobStatus.FRAMED), name
        if job.status is not JobStatus.FRAMED:
            assert job.reason, f"{name}: no reason"
            assert len(job.reason) > 10, f"{name}: no clear reason: {job.reason!r}"
    # damage a decoder conceals (late in the payload) is a damaged but playable video:
    # framed like one; everything else must be refused or failed
    framed_bad = sorted(
        n for n, j in by_name.items() if n not in ("good.mp4", *DECODABLE) and passed_framer(j)
    )
    assert framed_bad == [], f"accepted and framed as if fine: {framed_bad}"
    assert all(alive.values()), alive
    assert dlqs == {s: len(messages) for s in QUEUE_FED}, dlqs
    assert not any(queues.values()), f"left on the queues (a loop?): {queues}"
