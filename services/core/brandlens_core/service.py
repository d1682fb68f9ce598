"""What every service's ``__main__`` starts with: settings and logging read once, the worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from brandlens_core.aws import AwsClients
from brandlens_core.idempotency import IdempotencyStore
from brandlens_core.logging import configure_logging, get_logger
from brandlens_core.settings import (
    AwsSettings,
    LogSettings,
    StackSettings,
    WorkerSettings,
    worker_settings_for,
)
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker, resolve_queue_url

M = TypeVar("M")
C = TypeVar("C")


class ServiceRuntime:
    """Settings shared by the parts of one service process."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.aws = AwsSettings()
        self.stack = StackSettings()
        self.names = StackNames.from_settings(self.stack)
        self.worker_settings: WorkerSettings = worker_settings_for(service)
        logs = LogSettings()
        configure_logging(service, logs.level, logs.json_output)
        self.log: Any = get_logger(service)


async def queue_worker(
    clients: AwsClients,
    names: StackNames,
    *,
    service: str,
    decode: Callable[[str], M],
    handle: Callable[[M, C], Awaitable[None]],
    ctx: C,
    worker_settings: WorkerSettings,
    idempotency_key: Callable[[M], str | None] | None = None,
) -> Worker[M, C]:
    """A worker on the service's own queue, with idempotency records when keyed."""
    return Worker(
        name=service,
        sqs=clients.sqs,
        queue_url=await resolve_queue_url(clients.sqs, names.queue(service)),
        decode=decode,
        handle=handle,
        ctx=ctx,
        settings=worker_settings,
        idempotency=IdempotencyStore(
            clients.dynamodb,
            names.table("idempotency"),
            scope=service,
            ttl_seconds=worker_settings.idempotency_ttl_seconds,
        )
        if idempotency_key
        else None,
        idempotency_key=idempotency_key,
    )


async def run_worker_service(
    service: str,
    create_worker: Callable[[AwsClients, StackNames, WorkerSettings], Awaitable[Worker[Any, Any]]],
) -> None:
    """A queue-fed service's main: settings, logging, clients, the worker until SIGTERM."""
    runtime = ServiceRuntime(service)
    async with AwsClients(runtime.aws) as clients:
        worker = await create_worker(clients, runtime.names, runtime.worker_settings)
        worker.install_signal_handlers()
        await worker.run()
