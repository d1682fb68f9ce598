"""``python -m brandlens_framer``: the framer worker."""

from __future__ import annotations

import asyncio

from brandlens_core.service import run_worker_service
from brandlens_framer.app import SERVICE, create_worker
from brandlens_framer.settings import FramerSettings

if __name__ == "__main__":
    asyncio.run(
        run_worker_service(
            SERVICE, lambda clients, names, ws: create_worker(clients, names, FramerSettings(), ws)
        )
    )
