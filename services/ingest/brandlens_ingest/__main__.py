"""``python -m brandlens_ingest``: the ingest worker."""

from __future__ import annotations

import asyncio

from brandlens_core.service import run_worker_service
from brandlens_ingest.app import SERVICE, create_worker
from brandlens_ingest.settings import IngestSettings

if __name__ == "__main__":
    asyncio.run(
        run_worker_service(
            SERVICE, lambda clients, names, ws: create_worker(clients, names, IngestSettings(), ws)
        )
    )
