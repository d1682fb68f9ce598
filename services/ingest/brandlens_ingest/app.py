"""Wiring of the ingest worker, shared by ``__main__`` and the tests."""

from __future__ import annotations

from brandlens_core.aws import AwsClients
from brandlens_core.envelopes import S3ObjectCreated, parse_s3_object_created
from brandlens_core.jobs import JobStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker
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
