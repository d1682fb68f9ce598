"""Shared fixtures: a moto server over real HTTP, a fresh stack per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from brandlens_cli.embedded import LOCAL_CREDENTIALS, MotoServer
from brandlens_cli.labelstudio import LabelStudioServer
from brandlens_core.aws import AwsClients
from brandlens_core.logging import configure_logging
from brandlens_core.settings import AwsSettings
from brandlens_core.stack import StackNames, define, deploy
from tests.support import Stack

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's AWS account or brandlens settings."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BRANDLENS_")):
            monkeypatch.delenv(name)
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="session", autouse=True)
def _json_logs() -> None:
    configure_logging("tests", "INFO", json_output=True)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_settings(moto_server: MotoServer) -> AwsSettings:
    return AwsSettings(endpoint_url=moto_server.endpoint_url)  # type: ignore[arg-type]


@pytest.fixture
async def clients(aws_settings: AwsSettings) -> AsyncIterator[AwsClients]:
    async with AwsClients(aws_settings) as c:
        yield c


@pytest.fixture
def stack_name() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def stack(clients: AwsClients, stack_name: str, moto_server: MotoServer) -> Stack:
    names = StackNames(stack_name)
    queue_urls = await deploy(clients, define(names))
    return Stack(
        names=names, queue_urls=queue_urls, clients=clients, endpoint_url=moto_server.endpoint_url
    )


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """A real Label Studio on loopback, from .venv-labelstudio (`make labelstudio`)."""
    root = tmp_path_factory.mktemp("label-studio")
    server = LabelStudioServer(data_dir=root / "data", log_path=ARTIFACTS / "label-studio.log")
    server.start()
    yield server
    server.stop()
