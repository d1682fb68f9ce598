"""``python -m brandlens_ingest``: the ingest worker."""

from __future__ import annotations

import asyncio

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_ingest.app import SERVICE, create_worker
from brandlens_ingest.settings import IngestSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    settings = IngestSettings()
    async with AwsClients(runtime.aws) as clients:
        worker = await create_worker(clients, runtime.names, settings, runtime.worker_settings)
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
