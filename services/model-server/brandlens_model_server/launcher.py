"""Run the model-server as its own process on loopback (embedded stack, other services' tests).

server = ModelServerProcess(env=service_env(moto_url, stack), log_path=Path("ms.log"))
await server.start()          # returns once GET /health answers
boto3.client("rekognition", endpoint_url=server.endpoint_url, ...)
await server.stop()           # SIGTERM, wait, SIGKILL past the timeout
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODULE = "brandlens_model_server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ModelServerProcess:
    env: Mapping[str, str]
    log_path: Path
    port: int = 0
    host: str = "127.0.0.1"
    python: str = sys.executable
    process: asyncio.subprocess.Process | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, timeout_seconds: float = 60.0) -> None:
        if not self.port:
            self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = (
            dict(os.environ)
            | dict(self.env)
            | {
                "BRANDLENS_MODEL_SERVER_HOST": self.host,
                "BRANDLENS_MODEL_SERVER_PORT": str(self.port),
            }
        )
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                MODULE,
                *self.extra_args,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"model-server exited with code {self.process.returncode}; see {self.log_path}"
                )
            if await asyncio.to_thread(self._healthy):
                return
            await asyncio.sleep(0.1)
        await self.stop()
        raise RuntimeError(
            f"model-server did not answer on {self.endpoint_url}; see {self.log_path}"
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback http  # nosec B310
                f"{self.endpoint_url}/health", timeout=1
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    async def health(self) -> dict[str, Any]:
        def _get() -> dict[str, Any]:
            with urllib.request.urlopen(  # noqa: S310 - loopback http  # nosec B310
                f"{self.endpoint_url}/health", timeout=5
            ) as response:
                value: dict[str, Any] = json.loads(response.read())
                return value

        return await asyncio.to_thread(_get)

    async def stop(self, timeout_seconds: float = 60.0) -> int | None:
        """SIGTERM, then SIGKILL past ``timeout_seconds``. Returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_seconds)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode

    async def kill(self) -> int | None:
        """SIGKILL: a crash, for restart tests."""
        proc = self.process
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        return proc.returncode
