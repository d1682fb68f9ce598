"""``python -m brandlens_inferer``: the inferer worker."""

from __future__ import annotations

import asyncio

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_inferer.app import CLIENTS, SERVICE, create_worker
from brandlens_inferer.settings import InfererSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    async with AwsClients(runtime.aws, services=CLIENTS) as clients:
        worker = await create_worker(
            clients, runtime.names, InfererSettings(), runtime.worker_settings
        )
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
