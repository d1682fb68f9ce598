"""The embedded local stack: moto server on loopback, resources, service processes.

Nothing here is used on AWS. ``brandlens up`` and ``brandlens demo`` use it,
and so do the end-to-end tests, so they exercise exactly what a user runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from brandlens_cli.persist import StateError, Store
from brandlens_core.apikeys import ApiKeyStore
from brandlens_core.aws import AwsClients
from brandlens_core.settings import AwsSettings
from brandlens_core.stack import StackNames, define, deploy

# service name -> python module run as ``python -m module``
SERVICES: dict[str, str] = {
    "ingest": "brandlens_ingest",
    "framer": "brandlens_framer",
    "labeler": "brandlens_labeler",
    "trainer": "brandlens_trainer",
    "model-manager": "brandlens_model_manager",
    "inferer": "brandlens_inferer",
    "model-server": "brandlens_model_server",
}
HTTP_SERVICES = frozenset({"model-server"})  # no queue, no heartbeat file

# moto accepts any credentials; these only keep botocore from looking for real ones.
LOCAL_CREDENTIALS = dict.fromkeys(
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "testing"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """A moto server in its own process, answering on 127.0.0.1:port."""

    port: int = 0
    log_path: Path | None = None
    state_dir: Path | None = None  # keep S3, DynamoDB and SQS data here (persist.Store)
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_seconds: float = 30.0) -> None:
        if not self.port:
            self.port = free_port()
        env = dict(os.environ) | {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv  # nosec B603
            [
                sys.executable,
                "-m",
                "brandlens_cli.motoserver",
                "-H",
                "127.0.0.1",
                "-p",
                str(self.port),
                *(["--state-dir", str(self.state_dir)] if self.state_dir is not None else []),
            ],
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                said = _state_error(self.log_path)
                raise RuntimeError(
                    said
                    or f"moto server exited with code {self._process.returncode} "
                    f"(is port {self.port} in use?{where})"
                )
            try:
                with urllib.request.urlopen(  # noqa: S310 - loopback http  # nosec B310
                    f"{self.endpoint_url}/moto-api/", timeout=1
                ):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint_url} in time")

    def restore_state(self) -> dict[str, Any]:
        """Load the saved state into moto (resources deployed first); start recording."""
        url = f"{self.endpoint_url}/_brandlens/state/restore"
        request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310  # nosec B310
        try:
            with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310  # nosec B310
                report: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", str(exc))
            raise RuntimeError(f"could not restore the saved state: {detail}") from None
        return report

    def stop(self, timeout_seconds: float = 300.0) -> None:
        """SIGTERM (moto saves its state, then exits); SIGKILL after ``timeout_seconds``."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def service_env(endpoint_url: str, stack_name: str, region: str = "us-east-1") -> dict[str, str]:
    """The environment a service process needs to talk to the local stack."""
    return {
        **LOCAL_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "BRANDLENS_AWS_REGION": region,
        "BRANDLENS_AWS_ENDPOINT_URL": endpoint_url,
        "BRANDLENS_STACK_NAME": stack_name,
    }


@dataclass
class ServiceProcess:
    """One service in its own process, restarted with backoff when it dies."""

    name: str
    module: str
    env: Mapping[str, str]
    log_path: Path
    restarts: int = 0
    process: asyncio.subprocess.Process | None = None
    _stopping: bool = False
    _killed: bool = False  # by kill(): restarted at once, no crash-loop backoff
    _supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ) | dict(self.env),
                start_new_session=True,  # only the supervisor signals it
            )
        finally:
            log.close()

    async def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping:
            started = time.monotonic()
            self.process = await self._spawn()
            code = await self.process.wait()
            if self._stopping:
                return
            self.restarts += 1
            if time.monotonic() - started > 30 or self._killed:
                backoff = 0.5
            self._killed = False
            print(
                f"[brandlens] {self.name} exited with code {code}; restarting in {backoff:.1f}s "
                f"(log: {self.log_path})",
                file=sys.stderr,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def kill(self) -> None:
        """SIGKILL the current process (the supervisor restarts it): for chaos tests."""
        if self.process is not None and self.process.returncode is None:
            self._killed = True
            self.process.kill()

    async def stop(self, timeout_seconds: float = 35.0) -> None:
        self._stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_seconds)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor


@dataclass
class EmbeddedStack:
    """moto server + every resource + every service process, on this machine."""

    stack_name: str = "brandlens"
    port: int = 0
    state_dir: Path = Path(".brandlens")
    services: tuple[str, ...] = tuple(SERVICES)
    region: str = "us-east-1"
    extra_env: dict[str, str] = field(default_factory=dict)
    moto: MotoServer | None = None
    model_server_port: int = 0
    label_studio: bool = False  # also run a Label Studio (from .venv-labelstudio)
    label_studio_server: Any = None
    labeler_webhook_port: int = 0
    api_port: int = 0  # the REST API (served by ingest); 0: a free one at start
    api_key: str | None = None  # the admin key (STATE_DIR/api-key; made at the first start)
    persist: bool = True  # keep AWS state in STATE_DIR/aws across restarts (see persist.py)
    restored: dict[str, Any] = field(default_factory=dict)  # what the start loaded back
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        if self.moto is None:
            raise RuntimeError("the stack is not started")
        return self.moto.endpoint_url

    @property
    def names(self) -> StackNames:
        return StackNames(self.stack_name)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "local.json"

    @property
    def aws_state_dir(self) -> Path:
        return self.state_dir / "aws"

    @property
    def api_url(self) -> str | None:
        return f"http://127.0.0.1:{self.api_port}" if self.api_port else None

    @property
    def api_key_file(self) -> Path:
        return self.state_dir / "api-key"

    @property
    def model_server_url(self) -> str:
        return f"http://127.0.0.1:{self.model_server_port}"

    def env(self) -> dict[str, str]:
        env = service_env(self.endpoint_url, self.stack_name, self.region)
        if self.model_server_port:
            env["BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL"] = self.model_server_url
        return env | self.extra_env

    def _service_env(self, name: str) -> dict[str, str]:
        if name == "model-server":
            return self.env() | {
                "BRANDLENS_MODEL_SERVER_PORT": str(self.model_server_port),
                "BRANDLENS_MODEL_SERVER_CACHE_DIR": str(
                    (self.state_dir / "model-server").resolve()
                ),
            }
        variable = f"BRANDLENS_{name.upper().replace('-', '_')}_WORKER_HEARTBEAT_FILE"
        env = self.env() | {variable: str((self.state_dir / f"{name}.alive").resolve())}
        if name == "ingest":
            env |= {
                "BRANDLENS_INGEST_API_PORT": str(self.api_port),
                "BRANDLENS_INGEST_API_HOST": "127.0.0.1",
            }
        if name == "labeler" and self.label_studio_server is not None:
            ls = self.label_studio_server
            env |= {
                "BRANDLENS_LABELER_LABEL_STUDIO_URL": ls.url,
                "BRANDLENS_LABELER_LABEL_STUDIO_TOKEN": ls.token,
                "BRANDLENS_LABELER_WEBHOOK_PORT": str(self.labeler_webhook_port),
                "BRANDLENS_LABELER_WEBHOOK_URL": (
                    f"http://127.0.0.1:{self.labeler_webhook_port}/label-studio/webhook"
                ),
                "BRANDLENS_LABELER_WEBHOOK_SECRET": ls.webhook_secret,
            }
        return env

    async def start(self) -> None:
        if self.persist:
            try:
                Store(self.aws_state_dir).check_format()
            except StateError as exc:
                raise RuntimeError(str(exc)) from None
        self.moto = MotoServer(
            self.port,
            log_path=self.state_dir / "logs" / "moto.log",
            state_dir=self.aws_state_dir.resolve() if self.persist else None,
        )
        await asyncio.to_thread(self.moto.start)
        with _patched_env(LOCAL_CREDENTIALS):
            settings = AwsSettings(region=self.region, endpoint_url=self.endpoint_url)
            async with AwsClients(settings) as clients:
                await deploy(clients, define(self.names))
                if self.persist:
                    self.restored = await asyncio.to_thread(self.moto.restore_state)
                if "ingest" in self.services:
                    keys = ApiKeyStore(clients.dynamodb, self.names.table("apikeys"))
                    self.api_key = await self._saved_api_key(keys)
                    if self.api_key is None:
                        self.api_key, _ = await keys.create("local stack", admin=True)
                        self.state_dir.mkdir(parents=True, exist_ok=True)
                        _write_private(self.api_key_file, f"{self.api_key}\n")
        ports = self._ports()
        if "ingest" in self.services:
            self.api_port = self.api_port or ports.take("api")
        if "model-server" in self.services:
            self.model_server_port = ports.take("model-server")
        if self.label_studio:
            from brandlens_cli.labelstudio import LabelStudioServer

            server = LabelStudioServer.persistent(self.state_dir / "label-studio")
            server.log_path = self.state_dir / "logs" / "label-studio.log"
            server.port = server.port or ports.take("label-studio")
            await asyncio.to_thread(server.start)
            self.label_studio_server = server
            self.labeler_webhook_port = ports.take("labeler-webhook")
        ports.save()
        for name in self.services:
            proc = ServiceProcess(
                name=name,
                module=SERVICES[name],
                env=self._service_env(name),
                log_path=self.state_dir / "logs" / f"{name}.log",
            )
            await proc.start()
            self.processes[name] = proc
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.describe(), indent=2))

    def _ports(self) -> _Ports:
        """Loopback ports of an earlier start, kept while free (persist), else free ones.

        With kept state the REST API's URL stays the same across restarts, and so do the
        addresses Label Studio holds (its webhooks to the labeler).
        """
        path = self.state_dir / "ports.json" if self.persist else None
        saved: dict[str, int] = {}
        if path is not None:
            with contextlib.suppress(FileNotFoundError, ValueError, AttributeError):
                loaded = json.loads(path.read_text())
                saved = {str(k): int(v) for k, v in loaded.items() if isinstance(v, int)}
        return _Ports(path, saved)

    async def _saved_api_key(self, keys: ApiKeyStore) -> str | None:
        """The admin key of an earlier start, if the restored state still honours it."""
        if not self.persist:
            return None
        try:
            secret = self.api_key_file.read_text().strip()
        except FileNotFoundError:
            return None
        key = await keys.check(secret) if secret else None
        return secret if key is not None and key.admin else None

    async def wait_for_api(self, timeout_seconds: float = 30.0) -> None:
        """Until the REST API answers /health (ingest binds it a moment after it starts)."""
        if self.api_url is None:
            return
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                await asyncio.to_thread(_get, f"{self.api_url}/health")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the REST API did not answer on {self.api_url} in {timeout_seconds:.0f}s; "
                        f"see {self.state_dir / 'logs' / 'ingest.log'}"
                    ) from None
                await asyncio.sleep(0.2)

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "stack_name": self.stack_name,
            "region": self.region,
            "services": list(self.services),
            "pid": os.getpid(),
            "model_server_url": self.model_server_url if self.model_server_port else None,
            "label_studio_url": self.label_studio_server.url if self.label_studio_server else None,
            "api_url": self.api_url,
            "api_key_file": str(self.api_key_file.resolve()) if self.api_key else None,
            "media_bucket": self.names.media_bucket,
            "artifacts_bucket": self.names.artifacts_bucket,
        }

    async def crash(self) -> None:
        """SIGKILL every process of the stack at once, as a power cut would: for tests.

        Nothing is saved on the way down; a new EmbeddedStack on the same state dir then
        shows what a crash keeps.
        """
        victims = [p.process for p in self.processes.values() if p.process is not None]
        for proc in self.processes.values():
            proc._stopping = True  # the supervisors must not restart them
        if self.moto is not None and self.moto._process is not None:
            self.moto._process.kill()
            self.moto._process.wait()
        ls = self.label_studio_server
        if ls is not None and ls._process is not None and ls._process.poll() is None:
            os.killpg(ls._process.pid, signal.SIGKILL)
            ls._process.wait()
        self.label_studio_server = None
        for victim in victims:
            if victim.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    victim.kill()
                await victim.wait()
        for proc in self.processes.values():
            if proc._supervisor is not None:
                proc._supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await proc._supervisor
        self.processes.clear()
        if self.moto is not None and self.moto._log is not None:
            self.moto._log.close()
            self.moto._log = None

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes.values()))
        for name in self.processes:
            if name not in HTTP_SERVICES:
                (self.state_dir / f"{name}.alive").unlink(missing_ok=True)
        self.processes.clear()
        if self.label_studio_server is not None:
            await asyncio.to_thread(self.label_studio_server.stop)
            self.label_studio_server = None
        if self.moto is not None:
            await asyncio.to_thread(self.moto.stop)
        with contextlib.suppress(FileNotFoundError):
            state = json.loads(self.state_file.read_text())
            if state.get("pid") == os.getpid():
                self.state_file.unlink()


@dataclass
class _Ports:
    path: Path | None
    saved: dict[str, int]
    chosen: dict[str, int] = field(default_factory=dict)

    def take(self, name: str) -> int:
        port = self.saved.get(name)
        if port is None or not 1024 <= port <= 65535 or not port_is_free(port):
            port = free_port()
        self.chosen[name] = port
        return port

    def save(self) -> None:
        if self.path is not None and self.chosen:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.saved | self.chosen, indent=2) + "\n")
            tmp.replace(self.path)


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port: our servers (which set SO_REUSEADDR, as this
    check does) can bind it now, also while the last start's connections linger."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _state_error(log_path: Path | None) -> str | None:
    """What the moto server said about unusable saved state, if it exited for that."""
    if log_path is None:
        return None
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines[-50:]):
        if line.startswith("[brandlens state] "):
            return line.removeprefix("[brandlens state] ")
    return None


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback http  # nosec B310
        pass


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by this user only."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def read_local_state(state_dir: Path = Path(".brandlens")) -> dict[str, Any] | None:
    """The running local stack's description, if one is up."""
    path = state_dir / "local.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return state


@contextlib.contextmanager
def _patched_env(values: Mapping[str, str]) -> Any:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
