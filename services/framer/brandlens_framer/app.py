"""Wiring of the framer worker, shared by ``__main__`` and the tests."""

from __future__ import annotations

from brandlens_core.aws import AwsClients
from brandlens_core.envelopes import CatalogEvent, parse_catalog_event
from brandlens_core.events import MediaAccepted
from brandlens_core.jobs import JobStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker, resolve_queue_url
from brandlens_framer.handler import FramerContext, handle
from brandlens_framer.settings import FramerSettings
from brandlens_framer.tools import Tools

SERVICE = "framer"


def decode(body: str) -> CatalogEvent:
    return parse_catalog_event(body, accept=(MediaAccepted,))


def job_key(message: CatalogEvent) -> str:
    event = message.event
    return getattr(event, "job_id", event.event_id)


async def create_worker(
    clients: AwsClients,
    names: StackNames,
    settings: FramerSettings,
    worker_settings: WorkerSettings,
) -> Worker[CatalogEvent, FramerContext]:
    ctx = FramerContext(
        s3=clients.s3,
        sqs=clients.sqs,
        jobs=JobStore(clients.dynamodb, names.table("jobs")),
        publisher=EventPublisher(clients.events, names.bus, f"brandlens.{SERVICE}"),
        artifacts_bucket=names.artifacts_bucket,
        inferer_queue_url=await resolve_queue_url(clients.sqs, names.queue("inferer")),
        settings=settings,
        tools=Tools.find(settings),
    )
    return await queue_worker(
        clients,
        names,
        service=SERVICE,
        decode=decode,
        handle=handle,
        ctx=ctx,
        worker_settings=worker_settings,
        idempotency_key=job_key,
    )
