"""The Label Studio webhook endpoint: a completed annotation becomes a ``check`` command.

Label Studio calls ``POST /label-studio/webhook`` on annotation changes. The
endpoint only validates the payload and queues a check of the task's batch on
the labeler's own queue (a few seconds delayed, so a burst of annotations costs
one look more or less); the worker does the rest, so a webhook that arrives
twice, late or never changes nothing (polling covers a missed one).
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from brandlens_core.aws import Client
from brandlens_core.logging import get_logger
from brandlens_labeler.handler import Command
from brandlens_labeler.label_studio import SECRET_HEADER

log = get_logger(__name__)

PATH = "/label-studio/webhook"
CHECK_DELAY_SECONDS = 3
MAX_BODY_BYTES = 4 << 20


class _TaskData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    batch: str
    project: str


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: _TaskData


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: str
    task: _Task | None = None


def create_app(sqs: Client, queue_url: str, secret: str | None) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        if secret is not None:
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return web.json_response({"error": "bad or missing secret"}, status=401)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.json_response({"error": "payload too large"}, status=413)
        try:
            body: Any = await request.json()
            payload = WebhookPayload.model_validate(body)
        except (ValueError, ValidationError) as exc:
            return web.json_response({"error": f"not a Label Studio webhook: {exc}"}, status=400)
        if payload.task is None:
            return web.json_response({"queued": False, "reason": "no task in payload"})
        try:
            command = Command(
                command="check", project=payload.task.data.project, batch_id=payload.task.data.batch
            )
        except ValidationError:
            return web.json_response({"queued": False, "reason": "not a brandlens task"})
        await sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=command.model_dump_json(),
            DelaySeconds=CHECK_DELAY_SECONDS,
        )
        log.info("webhook.queued_check", action=payload.action, batch_id=command.batch_id)
        return web.json_response({"queued": True})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PATH, webhook)
    app.router.add_get("/health", health)
    return app
