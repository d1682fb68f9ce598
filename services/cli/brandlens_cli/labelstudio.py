"""A self-hosted Label Studio on loopback, run from its own virtual environment.

``make labelstudio`` builds ``.venv-labelstudio`` (pinned by
constraints-labelstudio.txt), apart from the services' environment. This
launcher starts it with a data directory, an admin user and a known API token;
the labeler then talks to it over HTTP like to any Label Studio.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DEFAULT_VENV = Path(__file__).resolve().parents[3] / ".venv-labelstudio"


def find_label_studio() -> Path | None:
    """The ``label-studio`` executable: $BRANDLENS_LABEL_STUDIO_BIN, the project's venv, PATH."""
    configured = os.environ.get("BRANDLENS_LABEL_STUDIO_BIN")
    if configured:
        return Path(configured)
    candidate = DEFAULT_VENV / "bin" / "label-studio"
    if candidate.exists():
        return candidate
    found = shutil.which("label-studio")
    return Path(found) if found else None


@dataclass
class LabelStudioServer:
    data_dir: Path
    port: int = 0
    username: str = "admin@brandlens.local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    token: str = field(default_factory=lambda: secrets.token_hex(20))
    allow_loopback_webhooks: bool = True
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @classmethod
    def persistent(cls, root: Path) -> LabelStudioServer:
        """A server whose data and credentials survive restarts (kept under ``root``)."""
        root.mkdir(parents=True, exist_ok=True)
        credentials = root / "credentials.json"
        try:
            saved = json.loads(credentials.read_text())
            server = cls(data_dir=root / "data", **saved)
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            server = cls(data_dir=root / "data")
            fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(
                    {
                        "username": server.username,
                        "password": server.password,
                        "token": server.token,
                        "webhook_secret": server.webhook_secret,
                    },
                    out,
                )
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_seconds: float = 180.0) -> None:
        executable = find_label_studio()
        if executable is None:
            raise RuntimeError(
                "Label Studio is not installed: run `make labelstudio` (it builds "
                ".venv-labelstudio) or set BRANDLENS_LABEL_STUDIO_BIN"
            )
        if not self.port:
            from brandlens_cli.embedded import free_port

            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRANDLENS_"))} | {
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
        }
        if self.allow_loopback_webhooks:
            # Label Studio refuses webhooks to private addresses by default; the labeler's
            # endpoint is on loopback here.
            env["SSRF_PROTECTION_ENABLED"] = "false"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        argv = [
            str(executable), "start", "--no-browser",
            "--internal-host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--username", self.username, "--password", self.password,
            "--user-token", self.token, "--enable-legacy-api-token",
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv  # nosec B603
            argv,
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise RuntimeError(f"Label Studio exited with {self._process.returncode}{where}")
            if self._ready():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Label Studio did not answer within {timeout_seconds:.0f}s")

    def _ready(self) -> bool:
        request = urllib.request.Request(  # noqa: S310 - loopback URL we built
            f"{self.url}/api/projects", headers={"Authorization": f"Token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310  # nosec B310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # its own session: stop the whole group (the server may fork workers)
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
