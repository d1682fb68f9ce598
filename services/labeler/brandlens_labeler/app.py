"""Wiring of the labeler worker (and its webhook endpoint), shared by ``__main__`` and tests."""

from __future__ import annotations

from contextlib import AsyncExitStack

from aiohttp import web

from brandlens_core.aws import AwsClients, Client
from brandlens_core.jobs import JobStore
from brandlens_core.projects import ProjectStore
from brandlens_core.publisher import EventPublisher
from brandlens_core.service import queue_worker
from brandlens_core.settings import WorkerSettings
from brandlens_core.stack import StackNames
from brandlens_core.worker import Worker, resolve_queue_url
from brandlens_labeler.batches import BatchStore
from brandlens_labeler.handler import SOURCE, LabelerContext, Message, decode, handle, message_key
from brandlens_labeler.label_studio import LabelStudioClient
from brandlens_labeler.settings import LabelerSettings
from brandlens_labeler.webhook import create_app

SERVICE = "labeler"
CLIENTS = ("s3", "sqs", "events", "dynamodb", "sagemaker", "rekognition")


async def create_worker(
    clients: AwsClients,
    names: StackNames,
    settings: LabelerSettings,
    worker_settings: WorkerSettings,
    exits: AsyncExitStack,
    *,
    sagemaker: Client | None = None,
    rekognition: Client | None = None,
) -> Worker[Message, LabelerContext]:
    """``sagemaker``/``rekognition``: clients other than ``clients``' (another account or
    endpoint, e.g. a model-server)."""
    label_studio = None
    if settings.label_studio_url:
        if settings.label_studio_token is None:
            raise SystemExit(
                "BRANDLENS_LABELER_LABEL_STUDIO_URL is set but "
                "BRANDLENS_LABELER_LABEL_STUDIO_TOKEN is not; copy the token from Label Studio "
                "(Account & Settings)"
            )
        label_studio = await exits.enter_async_context(
            LabelStudioClient(
                settings.label_studio_url,
                settings.label_studio_token.get_secret_value(),
                timeout_seconds=settings.label_studio_timeout_seconds,
            )
        )
    projects = ProjectStore(clients.dynamodb, names.table("projects"))
    queue_url = await resolve_queue_url(clients.sqs, names.queue(SERVICE))
    ctx = LabelerContext(
        s3=clients.s3,
        sqs=clients.sqs,
        jobs=JobStore(clients.dynamodb, names.table("jobs")),
        projects=projects,
        batches=BatchStore(projects),
        publisher=EventPublisher(clients.events, names.bus, SOURCE),
        artifacts_bucket=names.artifacts_bucket,
        media_bucket=names.media_bucket,
        queue_url=queue_url,
        region=clients.settings.region,
        settings=settings,
        sagemaker=sagemaker
        or (clients.get("sagemaker") if "sagemaker" in clients.services else None),
        rekognition=rekognition
        or (clients.get("rekognition") if "rekognition" in clients.services else None),
        label_studio=label_studio,
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


async def start_webhook(
    clients: AwsClients, names: StackNames, settings: LabelerSettings
) -> web.AppRunner | None:
    """The webhook endpoint on ``webhook_host:webhook_port``; None when the port is 0."""
    if not settings.webhook_port:
        return None
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    queue_url = await resolve_queue_url(clients.sqs, names.queue(SERVICE))
    runner = web.AppRunner(create_app(clients.sqs, queue_url, secret))
    await runner.setup()
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    return runner
