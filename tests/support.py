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


def make_mp4(path: Any, seconds: float = 1.0, size: str = "160x120") -> bytes:
    """A real H.264 MP4 made by the ffmpeg binary of imageio-ffmpeg."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate=10",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    with open(path, "rb") as f:
        return f.read()


def s3_event(
    bucket: str,
    key: str,
    *,
    version_id: str | None = "v1",
    size: int = 1,
    event_id: str = "17793124-05d4-b198-2fde-7ededc63b103",
) -> dict[str, Any]:
    """An 'Object Created' event as S3 puts it on EventBridge (see tests/events/)."""
    obj: dict[str, Any] = {
        "key": key,
        "size": size,
        "etag": "b1946ac92492d2347c6235b4d2611184",
        "sequencer": "617f08299329d189",
    }
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-12T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


class HoldingProxy:
    """A loopback HTTP proxy in front of the moto server that can hold one AWS operation.

    Requests whose ``X-Amz-Target`` equals ``hold_target`` (JSON APIs), or for
    which ``hold_when(request)`` is true (e.g. S3's REST calls, told apart by
    method, path and query), are never forwarded: the caller hangs as if the
    network stalled, and ``held`` is set. ``intercept(request)`` sees every
    request first (its body already read) and may answer it itself by
    returning a response, e.g. a 500; returning None lets the request go on.
    Everything else is forwarded as it is. Used to stop a service at an exact point.
    """

    def __init__(
        self,
        upstream: str,
        hold_target: str | None = None,
        rewrite: Callable[[str | None, bytes, bytes], bytes | None] | None = None,
        *,
        hold_when: Callable[[Any], bool] | None = None,
        intercept: Callable[[Any], Awaitable[Any]] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.hold_target = hold_target
        self.hold_when = hold_when
        self.intercept = intercept
        # rewrite(target, request_body, response_body) -> new response body or None
        self.rewrite = rewrite
        self.held = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: Any = None
        self._session: Any = None
        self.url = ""

    async def start(self) -> str:
        import aiohttp
        from aiohttp import web

        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _forward(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        if self.intercept is not None:
            answer = await self.intercept(request)
            if answer is not None:
                return answer
        if (self.hold_target and request.headers.get("X-Amz-Target") == self.hold_target) or (
            self.hold_when is not None and self.hold_when(request)
        ):
            self.held.set()
            await self._release.wait()
            return web.Response(status=503, text="held by the test proxy")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            if self.rewrite is not None:
                changed = self.rewrite(request.headers.get("X-Amz-Target"), body, payload)
                payload = payload if changed is None else changed
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            return web.Response(status=upstream.status, headers=passed, body=payload)

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


async def start_service(module: str, env: dict[str, str], log_path: Any) -> Any:
    """Run ``python -m module`` as its own process, logs to ``log_path``."""
    import os
    import sys

    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ) | env,
        )
    finally:
        log.close()


async def start_framer(
    stack: Stack, settings: Any = None, **worker_overrides: Any
) -> RunningWorker:
    from brandlens_framer.app import create_worker
    from brandlens_framer.settings import FramerSettings

    worker = await create_worker(
        stack.clients,
        stack.names,
        settings or FramerSettings(),
        fast_worker_settings(**worker_overrides),
    )
    return RunningWorker(worker)


async def receive_all(stack: Stack, url: str) -> list[dict[str, Any]]:
    """Every message now on a queue (received, then deleted)."""
    bodies: list[dict[str, Any]] = []
    while True:
        r = await stack.clients.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = r.get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(m["Body"]) for m in messages)
        await stack.clients.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
