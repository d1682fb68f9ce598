"""``python -m brandlens_labeler``: the labeler worker and its Label Studio webhook endpoint."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_labeler.app import CLIENTS, SERVICE, create_worker, start_webhook
from brandlens_labeler.settings import LabelerSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    settings = LabelerSettings()
    async with AsyncExitStack() as exits:
        clients = await exits.enter_async_context(AwsClients(runtime.aws, services=CLIENTS))
        worker = await create_worker(
            clients, runtime.names, settings, runtime.worker_settings, exits
        )
        runner = await start_webhook(clients, runtime.names, settings)
        worker.install_signal_handlers()
        try:
            await worker.run()
        finally:
            if runner is not None:
                await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
