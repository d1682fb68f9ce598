"""Ingest killed in the middle of a message: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from brandlens_core.jobs import JobStatus, JobStore
from tests.integration.test_ingest import jpeg_bytes
from tests.support import HoldingProxy, Stack, eventually, start_service

pytestmark = pytest.mark.integration

FAST = {
    "BRANDLENS_INGEST_WORKER_VISIBILITY_TIMEOUT_SECONDS": "3",
    "BRANDLENS_INGEST_WORKER_WAIT_TIME_SECONDS": "1",
    "BRANDLENS_INGEST_WORKER_RETRY_BASE_DELAY_SECONDS": "0.5",
}


async def test_sigkill_mid_message_leaves_one_job_and_one_event(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.capture_events()
    jobs = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    # Ingest publishes through a proxy that stalls PutEvents: the job row is
    # written, the event is not, and that is where the worker gets killed.
    proxy = HoldingProxy(stack.endpoint_url, hold_target="AWSEvents.PutEvents")
    await proxy.start()
    first = await start_service(
        "brandlens_ingest",
        stack.env() | FAST | {"BRANDLENS_AWS_EVENTS_ENDPOINT_URL": proxy.url},
        tmp_path / "ingest-1.log",
    )
    try:
        await stack.clients.s3.put_object(
            Bucket=stack.names.media_bucket, Key="analysis/acme/crash.jpg", Body=jpeg_bytes()
        )
        await asyncio.wait_for(proxy.held.wait(), 30)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    finally:
        if first.returncode is None:
            first.kill()
        await proxy.stop()

    half_done = await jobs.list()
    assert [(j.status, j.published) for j in half_done] == [(JobStatus.ACCEPTED, set())]
    assert await stack.collect() == []

    second = await start_service("brandlens_ingest", stack.env() | FAST, tmp_path / "ingest-2.log")
    try:
        await eventually(
            lambda: stack.events_of("MediaAccepted"),
            timeout=30,
            message="MediaAccepted after the restart",
        )
        await eventually(lambda: _drained(stack), timeout=30, message="ingest queue drained")
    finally:
        second.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(second.wait(), 30)
    assert code == 0, (tmp_path / "ingest-2.log").read_text()

    final = await jobs.list()
    assert len(final) == 1
    assert final[0].job_id == half_done[0].job_id
    assert final[0].published == {"MediaAccepted"}
    assert len(await stack.events_of("MediaAccepted")) == 1
    assert await stack.queue_depth(await stack.dlq_url("ingest")) == 0


async def _drained(stack: Stack) -> bool:
    return await stack.queue_depth(stack.queue_urls["ingest"]) == 0
