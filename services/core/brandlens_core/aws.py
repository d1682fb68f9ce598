"""aiobotocore clients, built once at start-up from settings.

Endpoints come from :class:`AwsSettings` only, so the same code talks to AWS,
the moto server or LocalStack.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from brandlens_core.settings import AwsSettings

Client = Any  # aiobotocore clients are generated at run time


@dataclass
class AwsClients:
    """The clients a service uses. Enter it once; it closes them on exit."""

    settings: AwsSettings
    services: tuple[str, ...] = ("s3", "sqs", "events", "dynamodb")
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _clients: dict[str, Client] = field(default_factory=dict)

    async def __aenter__(self) -> AwsClients:
        session = get_session()
        config = AioConfig(
            max_pool_connections=self.settings.max_pool_connections,
            connect_timeout=self.settings.connect_timeout_seconds,
            read_timeout=self.settings.read_timeout_seconds,
            retries={"mode": "standard", "total_max_attempts": self.settings.max_attempts},
            s3={"addressing_style": "path"} if self.settings.endpoint_for("s3") else None,
        )
        for name in self.services:
            self._clients[name] = await self._stack.enter_async_context(
                session.create_client(
                    name,
                    region_name=self.settings.region,
                    endpoint_url=self.settings.endpoint_for(name),
                    config=config,
                )
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
        self._clients.clear()

    def get(self, name: str) -> Client:
        try:
            return self._clients[name]
        except KeyError:
            raise RuntimeError(f"no {name} client: add it to AwsClients(services=...)") from None

    @property
    def s3(self) -> Client:
        return self.get("s3")

    @property
    def sqs(self) -> Client:
        return self.get("sqs")

    @property
    def events(self) -> Client:
        return self.get("events")

    @property
    def dynamodb(self) -> Client:
        return self.get("dynamodb")


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
