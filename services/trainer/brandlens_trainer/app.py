"""Wiring of the trainer worker, shared by ``__main__`` and the tests."""

from __future__ import annotations

from brandlens_core.aws import AwsClients, Client
from brandlens_core.projects import ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker, resolve_queue_url
from brandlens_trainer.handler import SOURCE, Message, TrainerContext, decode, handle, message_key
from brandlens_trainer.models import ModelStore
from brandlens_trainer.settings import TrainerSettings

SERVICE = "trainer"
CLIENTS = ("s3", "sqs", "events", "dynamodb", "rekognition")


async def create_worker(
    clients: AwsClients,
    names: StackNames,
    settings: TrainerSettings,
    worker_settings: WorkerSettings,
    *,
    rekognition: Client | None = None,
) -> Worker[Message, TrainerContext]:
    """``rekognition``: a client other than ``clients``' (e.g. one for a model-server)."""
    projects = ProjectStore(clients.dynamodb, names.table("projects"))
    ctx = TrainerContext(
        s3=clients.s3,
        sqs=clients.sqs,
        rekognition=rekognition or clients.get("rekognition"),
        projects=projects,
        models=ModelStore(projects),
        publisher=EventPublisher(clients.events, names.bus, SOURCE),
        artifacts_bucket=names.artifacts_bucket,
        queue_url=await resolve_queue_url(clients.sqs, names.queue(SERVICE)),
        stack_name=names.stack_name,
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
