"""``python -m brandlens_model_server``: the Rekognition Custom Labels model-server."""

from __future__ import annotations

import asyncio
import signal

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_model_server.app import ModelServer
from brandlens_model_server.settings import ModelServerSettings

SERVICE = "model-server"


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    settings = ModelServerSettings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AwsClients(runtime.aws, services=("s3",)) as clients:
        server = ModelServer(
            settings,
            clients.s3,
            state_bucket=settings.state_bucket or runtime.names.artifacts_bucket,
            region=runtime.aws.region,
        )
        try:
            await server.start()
            await stop.wait()
        finally:
            await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
