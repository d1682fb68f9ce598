"""Wiring of the model-manager (worker + reaper timer), shared by ``__main__`` and tests."""

from __future__ import annotations

import asyncio
import contextlib

from brandlens_core.aws import AwsClients, Client
from brandlens_core.logging import get_logger
from brandlens_core.publisher import EventPublisher
from brandlens_core.runtime import RuntimeStore
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker, resolve_queue_url
from brandlens_model_manager.handler import (
    SOURCE,
    Command,
    ManagerContext,
    decode,
    handle,
    message_key,
    reap,
)
from brandlens_model_manager.settings import ModelManagerSettings

SERVICE = "model-manager"
CLIENTS = ("s3", "sqs", "events", "dynamodb", "rekognition")
log = get_logger(__name__)


async def create_worker(
    clients: AwsClients,
    names: StackNames,
    settings: ModelManagerSettings,
    worker_settings: WorkerSettings,
    *,
    rekognition: Client | None = None,
) -> Worker[Command, ManagerContext]:
    ctx = ManagerContext(
        sqs=clients.sqs,
        rekognition=rekognition or clients.get("rekognition"),
        runtime=RuntimeStore(clients.dynamodb, names.table("runtime")),
        publisher=EventPublisher(clients.events, names.bus, SOURCE),
        queue_url=await resolve_queue_url(clients.sqs, names.queue(SERVICE)),
        settings=settings,
    )
    return await queue_worker(
        clients,
        names,
        service=SERVICE,
        decode=decode,
        handle=handle,
        ctx=ctx,
        worker_settings=worker_settings,
        idempotency_key=message_key,
    )


async def reaper(ctx: ManagerContext, stop: asyncio.Event) -> None:
    """The manager's own timer: reap every ``reap_interval_seconds`` until ``stop``."""
    while not stop.is_set():
        try:
            await reap(ctx)
        except Exception as exc:  # DynamoDB unreachable for a moment: try next tick
            log.error("reaper.failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ctx.settings.reap_interval_seconds)


async def run(worker: Worker[Command, ManagerContext], ctx: ManagerContext) -> None:
    stop = asyncio.Event()
    timer = asyncio.create_task(reaper(ctx, stop))
    try:
        await worker.run()
    finally:
        stop.set()
        await timer
