"""``python -m brandlens_ingest``: the ingest worker and the REST API."""

from __future__ import annotations

import asyncio

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_ingest.app import SERVICE, create_worker, start_api
from brandlens_ingest.settings import IngestSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    settings = IngestSettings()
    async with AwsClients(runtime.aws) as clients:
        worker = await create_worker(clients, runtime.names, settings, runtime.worker_settings)
        runner = await start_api(clients, runtime.names, settings)
        worker.install_signal_handlers()
        try:
            await worker.run()
        finally:
            if runner is not None:
                await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
