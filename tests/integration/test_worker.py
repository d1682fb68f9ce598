"""The SQS worker runtime, on a real queue with a DLQ, with handlers written for the test."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest

from brandlens_core.aws import AwsClients
from brandlens_core.idempotency import IdempotencyStore
from brandlens_core.worker import RetryLaterError, Worker
from tests.support import RunningWorker, Stack, eventually, fast_worker_settings

pytestmark = pytest.mark.integration


async def make_queue(clients: AwsClients, name: str, max_receive_count: int = 3) -> tuple[str, str]:
    dlq = (await clients.sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    dlq_arn = (await clients.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    url = (
        await clients.sqs.create_queue(
            QueueName=name,
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
                )
            },
        )
    )["QueueUrl"]
    return url, dlq


async def send(clients: AwsClients, url: str, bodies: list[str]) -> None:
    for i in range(0, len(bodies), 10):
        await clients.sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])],
        )


async def depth(clients: AwsClients, url: str) -> tuple[int, int]:
    a = (
        await clients.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


class Recorder:
    """A handler whose behaviour per body is scripted by the test."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.running = 0
        self.peak_running = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, body: str, ctx: Any) -> None:
        self.calls[body] += 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            await self.gate.wait()
            await self.behave(body, self.calls[body])
        finally:
            self.running -= 1

    async def behave(self, body: str, attempt: int) -> None:
        if body.startswith("fail"):
            raise RuntimeError(f"scripted failure of {body}")
        if body.startswith("slow"):
            await asyncio.sleep(float(body.split(":")[1]))
        if body.startswith("hang-once") and attempt == 1:
            await asyncio.sleep(3600)
        if body.startswith("later-once") and attempt == 1:
            raise RetryLaterError(1.0, "not yet")
        if body.startswith("flaky-once") and attempt == 1:
            raise RuntimeError("first attempt fails")
        if body == "hang":
            await asyncio.sleep(3600)


def worker(stack: Stack, url: str, handler: Recorder, **overrides: Any) -> Worker[str, None]:
    idempotency = overrides.pop("idempotency", None)
    return Worker(
        name="test",
        sqs=stack.clients.sqs,
        queue_url=url,
        decode=lambda body: body,
        handle=handler,
        ctx=None,
        settings=fast_worker_settings(**overrides),
        idempotency=idempotency,
        idempotency_key=(lambda body: body.split("#")[0]) if idempotency else None,
    )


async def test_each_message_succeeds_or_fails_on_its_own(stack: Stack) -> None:
    url, dlq = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    await send(stack.clients, url, [f"ok-{i}" for i in range(10)] + ["fail-a", "fail-b", "fail-c"])
    running = RunningWorker(worker(stack, url, handler, retry_base_delay_seconds=0.2))
    try:
        await eventually(lambda: _depth_is(stack, dlq, 3), timeout=30, message="3 in the DLQ")
        await eventually(lambda: _depth_is(stack, url, 0), message="queue empty")
    finally:
        await running.stop()
    assert all(handler.calls[f"ok-{i}"] == 1 for i in range(10))
    assert [handler.calls[f] for f in ("fail-a", "fail-b", "fail-c")] == [3, 3, 3]
    assert running.worker.stats.succeeded == 10


async def _depth_is(stack: Stack, url: str, n: int) -> bool:
    visible, invisible = await depth(stack.clients, url)
    return visible + invisible == n


async def test_never_holds_more_messages_than_the_in_flight_bound(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    handler.gate.clear()
    await send(stack.clients, url, [f"m-{i}" for i in range(25)])
    running = RunningWorker(worker(stack, url, handler, max_in_flight_messages=4))
    try:
        await eventually(lambda: _running(handler, 4), message="4 handlers running")
        # While the handlers are blocked, a few long polls pass: nothing more is fetched.
        for _ in range(3):
            await asyncio.sleep(0.5)  # observing an absence: nothing can be awaited
            assert await depth(stack.clients, url) == (21, 4)
        handler.gate.set()
        await eventually(lambda: _depth_is(stack, url, 0), message="all processed")
    finally:
        await running.stop()
    assert running.worker.stats.peak_in_flight == 4
    assert handler.peak_running == 4
    assert running.worker.stats.succeeded == 25


async def _running(handler: Recorder, n: int) -> bool:
    return handler.running == n


async def test_a_long_handler_keeps_its_message_invisible_with_a_heartbeat(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    await send(stack.clients, url, ["slow:5"])
    running = RunningWorker(worker(stack, url, handler, visibility_timeout_seconds=2))
    try:
        await eventually(lambda: _succeeded(running, 1), timeout=20, message="slow one done")
    finally:
        await running.stop()
    assert handler.calls["slow:5"] == 1  # 5 s of work under a 2 s visibility: never redelivered
    assert await depth(stack.clients, url) == (0, 0)


async def test_a_worker_busy_in_every_slot_stays_healthy(stack: Stack, tmp_path: Any) -> None:
    """The health file is touched by polls and by the visibility heartbeat of work in
    progress, so a worker that cannot poll (all slots busy) is not taken for hung."""
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    beat = tmp_path / "alive"
    await send(stack.clients, url, ["slow:6"])
    running = RunningWorker(
        worker(
            stack, url, Recorder(), max_in_flight_messages=1, visibility_timeout_seconds=1,
            heartbeat_file=str(beat),
        )
    )  # fmt: skip
    try:

        async def busy() -> bool:
            return bool(running.worker.stats.in_flight == 1)

        await eventually(busy, timeout=10, message="busy")
        ages = []
        for _ in range(8):  # 4 s of a single busy slot: no poll happens
            await asyncio.sleep(0.5)
            ages.append(time.time() - beat.stat().st_mtime)
        assert max(ages) < 1.5, ages  # touched about every visibility / 3
    finally:
        await running.stop()


async def _succeeded(running: RunningWorker, n: int) -> bool:
    return running.worker.stats.succeeded >= n


async def test_a_handler_past_its_deadline_is_cancelled_and_retried(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    await send(stack.clients, url, ["hang-once"])
    running = RunningWorker(
        worker(stack, url, handler, message_deadline_seconds=0.5, retry_base_delay_seconds=0.2)
    )
    try:
        await eventually(lambda: _succeeded(running, 1), message="second attempt succeeds")
    finally:
        await running.stop()
    assert handler.calls["hang-once"] == 2
    assert running.worker.stats.failed == 1


async def test_retry_later_delays_the_message_without_failing_it(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    await send(stack.clients, url, ["later-once"])
    running = RunningWorker(worker(stack, url, handler))
    started = time.monotonic()
    try:
        await eventually(lambda: _succeeded(running, 1), message="done after the delay")
    finally:
        await running.stop()
    assert time.monotonic() - started >= 1.0
    assert handler.calls["later-once"] == 2
    assert running.worker.stats.failed == 0


async def test_sigterm_lets_in_flight_work_finish(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    await send(stack.clients, url, ["slow:1"])
    running = RunningWorker(worker(stack, url, handler, drain_grace_seconds=10))
    await eventually(lambda: _running(handler, 1), message="handler running")
    await running.stop()
    assert running.worker.stats.succeeded == 1
    assert await depth(stack.clients, url) == (0, 0)


async def test_work_past_the_drain_grace_is_cancelled_and_handed_back_at_once(
    stack: Stack,
) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    handler = Recorder()
    await send(stack.clients, url, ["hang"])
    running = RunningWorker(
        worker(stack, url, handler, drain_grace_seconds=0.5, visibility_timeout_seconds=600)
    )
    await eventually(lambda: _running(handler, 1), message="handler running")
    await running.stop()
    # Visible again now, not after the 600 s visibility timeout.
    assert await depth(stack.clients, url) == (1, 0)


async def test_an_idempotency_record_lets_a_key_run_once(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    store = IdempotencyStore(
        stack.clients.dynamodb, stack.names.table("idempotency"), "test", ttl_seconds=60
    )
    handler = Recorder()
    await send(stack.clients, url, ["k1#a"])
    running = RunningWorker(worker(stack, url, handler, idempotency=store))
    try:
        await eventually(lambda: _succeeded(running, 1), message="first handled")
        await send(stack.clients, url, ["k1#b"])  # same key, another message
        await eventually(lambda: _depth_is(stack, url, 0), message="duplicate acknowledged")
    finally:
        await running.stop()
    assert handler.calls == Counter({"k1#a": 1})
    assert running.worker.stats.duplicates == 1


async def test_a_killed_workers_message_received_again_takes_its_claim_over(
    stack: Stack,
) -> None:
    """The claim's own message is not a copy: found by the chaos run, where a framer's
    message came back a moment before its claim expired and was acknowledged (job lost)."""
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    store = IdempotencyStore(
        stack.clients.dynamodb, stack.names.table("idempotency"), "test", ttl_seconds=60
    )
    sent = await stack.clients.sqs.send_message(QueueUrl=url, MessageBody="k2#a")
    # the worker that received it claimed the key and was killed; the claim has not expired
    await store.acquire("k2", 600, owner=sent["MessageId"])
    handler = Recorder()
    running = RunningWorker(worker(stack, url, handler, idempotency=store))
    try:
        await eventually(lambda: _succeeded(running, 1), message="the redelivery handled")
        await send(stack.clients, url, ["k2#b"])  # another message of the key: a copy
        await eventually(lambda: _depth_is(stack, url, 0), message="copy acknowledged")
    finally:
        await running.stop()
    assert handler.calls == Counter({"k2#a": 1})
    assert running.worker.stats.duplicates == 1


async def test_a_failed_attempt_releases_its_idempotency_record(stack: Stack) -> None:
    url, _ = await make_queue(stack.clients, f"{stack.names.stack_name}-w")
    store = IdempotencyStore(
        stack.clients.dynamodb, stack.names.table("idempotency"), "test", ttl_seconds=60
    )
    handler = Recorder()
    await send(stack.clients, url, ["flaky-once"])
    running = RunningWorker(
        worker(stack, url, handler, idempotency=store, retry_base_delay_seconds=0.2)
    )
    try:
        await eventually(lambda: _succeeded(running, 1), message="retry succeeds")
    finally:
        await running.stop()
    assert handler.calls["flaky-once"] == 2
