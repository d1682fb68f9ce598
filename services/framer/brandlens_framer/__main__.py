"""``python -m brandlens_framer``: the framer worker."""

from __future__ import annotations

import asyncio

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_framer.app import SERVICE, create_worker
from brandlens_framer.settings import FramerSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    settings = FramerSettings()
    async with AwsClients(runtime.aws) as clients:
        worker = await create_worker(clients, runtime.names, settings, runtime.worker_settings)
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
