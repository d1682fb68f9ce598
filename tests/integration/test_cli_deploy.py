"""`brandlens deploy` creates the stack where the environment points (LocalStack, moto)."""

from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner

from brandlens_cli.embedded import MotoServer
from brandlens_cli.main import cli

pytestmark = pytest.mark.integration


def test_deploy_creates_every_queue_where_the_environment_points(
    moto_server: MotoServer, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANDLENS_AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("BRANDLENS_STACK_NAME", stack_name)
    result = CliRunner().invoke(cli, ["deploy"])
    assert result.exit_code == 0, result.output
    assert "6 queues" in result.output
    sqs = boto3.client("sqs", endpoint_url=moto_server.endpoint_url)
    urls = sqs.list_queues(QueueNamePrefix=stack_name)["QueueUrls"]
    names = {url.rsplit("/", 1)[1] for url in urls}
    assert {f"{stack_name}-ingest", f"{stack_name}-ingest-dlq"} <= names
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url)
    assert f"{stack_name}-jobs" in dynamodb.list_tables()["TableNames"]
