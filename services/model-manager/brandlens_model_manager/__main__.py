"""``python -m brandlens_model_manager``: the model-manager worker and its reaper."""

from __future__ import annotations

import asyncio

from brandlens_core.aws import AwsClients
from brandlens_core.service import ServiceRuntime
from brandlens_model_manager.app import CLIENTS, SERVICE, create_worker, run
from brandlens_model_manager.settings import ModelManagerSettings


async def main() -> None:
    runtime = ServiceRuntime(SERVICE)
    async with AwsClients(runtime.aws, services=CLIENTS) as clients:
        worker = await create_worker(
            clients, runtime.names, ModelManagerSettings(), runtime.worker_settings
        )
        worker.install_signal_handlers()
        await run(worker, worker.ctx)


if __name__ == "__main__":
    asyncio.run(main())
