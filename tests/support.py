"""Test helpers: awaiting conditions, capturing events, running services."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from brandlens_cli.embedded import service_env
from brandlens_core.aws import AwsClients
from brandlens_core.stack import StackNames

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Await ``probe()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


@dataclass
class Stack:
    names: StackNames
    queue_urls: dict[str, str]
    clients: AwsClients
    endpoint_url: str
    capture_url: str | None = None
    captured: list[dict[str, Any]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return service_env(self.endpoint_url, self.names.stack_name)

    async def dlq_url(self, logical: str) -> str:
        r = await self.clients.sqs.get_queue_url(QueueName=self.names.dlq(logical))
        return str(r["QueueUrl"])

    async def queue_depth(self, url: str) -> int:
        r = await self.clients.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        a = r["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(
            a["ApproximateNumberOfMessagesNotVisible"]
        )

    async def capture_events(self) -> None:
        """Route every event on the project bus to a capture queue."""
        sqs, events = self.clients.sqs, self.clients.events
        url = (await sqs.create_queue(QueueName=f"{self.names.stack_name}-capture"))["QueueUrl"]
        arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        rule = f"{self.names.stack_name}-capture"
        await events.put_rule(
            Name=rule,
            EventBusName=self.names.bus,
            EventPattern=json.dumps({"source": [{"prefix": "brandlens."}]}),
        )
        await events.put_targets(
            Rule=rule, EventBusName=self.names.bus, Targets=[{"Id": "capture", "Arn": arn}]
        )
        self.capture_url = url

    async def collect(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """Drain the capture queue into ``captured`` and return everything captured."""
        assert self.capture_url, "call capture_events() first"
        while True:
            r = await self.clients.sqs.receive_message(
                QueueUrl=self.capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            messages = r.get("Messages", [])
            if not messages:
                return self.captured
            for m in messages:
                self.captured.append(json.loads(m["Body"]))
            await self.clients.sqs.delete_message_batch(
                QueueUrl=self.capture_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
            wait_seconds = 0

    async def events_of(self, detail_type: str) -> list[dict[str, Any]]:
        await self.collect()
        return [e for e in self.captured if e["detail-type"] == detail_type]


def fast_worker_settings(**overrides: Any) -> Any:
    """Worker settings for tests: short polls and delays, same code paths."""
    from brandlens_core.settings import WorkerSettings

    base: dict[str, Any] = {
        "max_in_flight_messages": 10,
        "wait_time_seconds": 1,
        "visibility_timeout_seconds": 30,
        "message_deadline_seconds": 60,
        "retry_base_delay_seconds": 0.5,
        "retry_max_delay_seconds": 2,
        "drain_grace_seconds": 5,
    }
    return WorkerSettings(**(base | overrides))


class RunningWorker:
    """A worker run as a task in this event loop; stop() drains it."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.task: asyncio.Task[None] = asyncio.create_task(worker.run())

    async def stop(self) -> None:
        self.worker.stop()
        await asyncio.wait_for(self.task, 30)


async def start_ingest(
    stack: Stack, settings: Any = None, **worker_overrides: Any
) -> RunningWorker:
    from brandlens_ingest.app import create_worker
    from brandlens_ingest.settings import IngestSettings

    worker = await create_worker(
        stack.clients,
        stack.names,
        settings or IngestSettings(),
        fast_worker_settings(**worker_overrides),
    )
    return RunningWorker(worker)
