"""``python -m brandlens_trainer``: the trainer worker."""

from __future__ import annotations

import asyncio

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_trainer.app import CLIENTS, SERVICE, create_worker
from brandlens_trainer.settings import TrainerSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    async with AwsClients(runtime.aws, services=CLIENTS) as clients:
        worker = await create_worker(
            clients, runtime.names, TrainerSettings(), runtime.worker_settings
        )
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
