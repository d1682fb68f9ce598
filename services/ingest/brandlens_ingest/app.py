"""Wiring of the ingest worker, shared by ``__main__`` and the tests."""

from __future__ import annotations

from aiohttp import web

from brandlens_core.apikeys import ApiKeyStore
from brandlens_core.aws import AwsClients
from brandlens_core.envelopes import S3ObjectCreated, parse_s3_object_created
from brandlens_core.jobs import JobStore
from brandlens_core.logging import get_logger
from brandlens_core.projects import ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker
from brandlens_ingest.api import ApiContext, create_api
from brandlens_ingest.handler import IngestContext, handle, job_id_for
from brandlens_ingest.settings import IngestSettings

SERVICE = "ingest"


async def create_worker(
    clients: AwsClients,
    names: StackNames,
    settings: IngestSettings,
    worker_settings: WorkerSettings,
) -> Worker[S3ObjectCreated, IngestContext]:
    ctx = IngestContext(
        s3=clients.s3,
        jobs=JobStore(clients.dynamodb, names.table("jobs")),
        publisher=EventPublisher(clients.events, names.bus, f"brandlens.{SERVICE}"),
        media_bucket=names.media_bucket,
        settings=settings,
    )
    return await queue_worker(
        clients,
        names,
        service=SERVICE,
        decode=parse_s3_object_created,
        handle=handle,
        ctx=ctx,
        worker_settings=worker_settings,
        # Keyed by the job, not the event: two notifications of one object
        # version are one piece of work.
        idempotency_key=job_id_for,
    )


async def start_api(
    clients: AwsClients, names: StackNames, settings: IngestSettings
) -> web.AppRunner | None:
    """The REST API on ``api_host:api_port`` (port 0: a free one, logged); None if disabled."""
    if not settings.api_enabled:
        return None
    ctx = ApiContext(
        s3=clients.s3,
        jobs=JobStore(clients.dynamodb, names.table("jobs")),
        projects=ProjectStore(clients.dynamodb, names.table("projects")),
        keys=ApiKeyStore(clients.dynamodb, names.table("apikeys")),
        media_bucket=names.media_bucket,
        artifacts_bucket=names.artifacts_bucket,
        settings=settings,
    )
    runner = web.AppRunner(create_api(ctx), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.api_host, settings.api_port)
    await site.start()
    get_logger(SERVICE).info(
        "api.listening", addresses=[f"{a[0]}:{a[1]}" for a in runner.addresses]
    )
    return runner
