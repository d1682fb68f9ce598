"""The HTTP side: AWS JSON 1.1 over aiohttp, and the server's lifecycle.

Requests are ``POST /`` with ``X-Amz-Target: RekognitionService.<Operation>``
and a JSON body, as botocore, the AWS CLI and every SDK send them. The
SigV4 ``Authorization`` header is neither required nor verified: the server
is meant for loopback or a private network (see README). ``GET /health``
answers once the state is loaded.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from brandlens_core.aws import Client
from brandlens_core.logging import get_logger
from brandlens_model_server.errors import (
    ApiError,
    InternalServerError,
    UnknownOperationException,
    ValidationException,
)
from brandlens_model_server.schema import TARGET_PREFIX, parse_input
from brandlens_model_server.service import ModelService
from brandlens_model_server.settings import MIB, ModelServerSettings
from brandlens_model_server.state import StateStore

log = get_logger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
# 5 MB of image bytes is ~6.7 MB of base64; beyond this the body is refused outright.
MAX_BODY_BYTES = 8 * MIB


def error_response(error: ApiError, request_id: str) -> web.Response:
    return web.Response(
        status=error.status,
        body=json.dumps({"__type": error.code, "message": error.message}).encode(),
        headers={
            "Content-Type": CONTENT_TYPE,
            "x-amzn-ErrorType": error.code,
            "x-amzn-RequestId": request_id,
        },
    )


class ModelServer:
    """The model-server: state, training, running models and the HTTP API."""

    def __init__(
        self,
        settings: ModelServerSettings,
        s3: Client,
        *,
        state_bucket: str,
        region: str,
    ) -> None:
        self.settings = settings
        self.state = StateStore(s3, state_bucket, settings.state_prefix)
        self.service = ModelService(settings, s3, self.state, region)
        self._runner: web.AppRunner | None = None
        self.port: int = settings.port

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/health", self._health)
        app.router.add_route("*", "/{tail:.*}", self._api)
        return app

    async def start(self) -> int:
        """Load and recover the state, then listen. Returns the port."""
        self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
        await self.service.recover()
        self._runner = web.AppRunner(
            self.build_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.settings.shutdown_grace_seconds,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info(
            "model_server.listening",
            host=self.settings.host,
            port=self.port,
            state=f"s3://{self.state.bucket}/{self.state.prefix}",
        )
        return self.port

    async def stop(self) -> None:
        """Stop listening (in-flight requests get a grace), end training processes, unload."""
        log.info("model_server.stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.service.training.shutdown()
        await self.service.host.shutdown()
        log.info("model_server.stopped")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.health())

    async def _api(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        target = request.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        try:
            result = await self._dispatch(request, target, operation)
        except ApiError as error:
            (log.warning if error.status >= 500 else log.debug)(
                "api.error",
                operation=operation,
                code=error.code,
                error_message=error.message,
                request_id=request_id,
            )
            return error_response(error, request_id)
        except Exception as exc:
            log.exception("api.internal_error", operation=operation, request_id=request_id)
            return error_response(
                InternalServerError(f"Amazon Rekognition experienced a service issue: {exc}"),
                request_id,
            )
        log.debug(
            "api.ok",
            operation=operation,
            request_id=request_id,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        return web.Response(
            status=200,
            body=json.dumps(result).encode(),
            headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
        )

    async def _dispatch(self, request: web.Request, target: str, operation: str) -> dict[str, Any]:
        if request.method != "POST":
            raise UnknownOperationException(
                f"{request.method} {request.path} is not an operation: "
                "POST / with X-Amz-Target: RekognitionService.<Operation>"
            )
        if not operation:
            raise UnknownOperationException(
                f"Missing or unknown X-Amz-Target {target!r}: expected {TARGET_PREFIX}<Operation>"
            )
        handler = self.service.operations.get(operation)
        if handler is None:
            raise UnknownOperationException(
                f"Operation {operation} is not supported by the brandlens model-server"
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ValidationException(
                f"The request body is larger than {MAX_BODY_BYTES} bytes"
            ) from None
        return await handler(parse_input(operation, body))
