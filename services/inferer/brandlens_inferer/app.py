"""Wiring of the inferer worker, shared by ``__main__`` and the tests."""

from __future__ import annotations

from brandlens_core.aws import AwsClients, Client
from brandlens_core.jobs import JobStore
from brandlens_core.projects import ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.runtime import RuntimeStore
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker, resolve_queue_url
from brandlens_inferer.handler import SOURCE, InfererContext, Message, decode, handle, message_key
from brandlens_inferer.settings import InfererSettings

SERVICE = "inferer"
CLIENTS = ("s3", "sqs", "events", "dynamodb", "rekognition")


async def create_worker(
    clients: AwsClients,
    names: StackNames,
    settings: InfererSettings,
    worker_settings: WorkerSettings,
    *,
    rekognition: Client | None = None,
) -> Worker[Message, InfererContext]:
    """The worker's ``max_in_flight_messages`` bounds the batches held (backpressure);
    ``settings.max_in_flight_frames`` the DetectCustomLabels calls at once."""
    ctx = InfererContext(
        s3=clients.s3,
        sqs=clients.sqs,
        rekognition=rekognition or clients.get("rekognition"),
        jobs=JobStore(clients.dynamodb, names.table("jobs")),
        projects=ProjectStore(clients.dynamodb, names.table("projects")),
        runtime=RuntimeStore(clients.dynamodb, names.table("runtime")),
        publisher=EventPublisher(clients.events, names.bus, SOURCE),
        queue_url=await resolve_queue_url(clients.sqs, names.queue(SERVICE)),
        manager_queue_url=await resolve_queue_url(clients.sqs, names.queue("model-manager")),
        artifacts_bucket=names.artifacts_bucket,
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
