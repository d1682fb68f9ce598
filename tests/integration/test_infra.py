"""infra/ (Terraform) checked the way users meet it: formatted, valid, applied.

`infra/envs/local` is applied against a moto server (offline, the hashicorp/aws provider
from the filesystem mirror); the resources it made are compared with the embedded
stack's definition (brandlens_core.stack.define: same queues, redrives, rules, event
patterns, targets and tables); then the real services run against those resources and a
dropped file becomes an accepted, framed job; then `terraform destroy`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from brandlens_cli.embedded import MotoServer, service_env
from brandlens_core.aws import AwsClients
from brandlens_core.jobs import JobStatus, JobStore
from brandlens_core.settings import AwsSettings
from brandlens_core.stack import StackNames, StackSpec, define
from tests.support import eventually, make_mp4, start_service
from tests.terraform import INFRA, Terraform, provider_mirror, terraform_binary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

ENVS = ("aws", "local")


@pytest.fixture(scope="module")
def mirror() -> Path:
    if terraform_binary() is None:
        pytest.skip("terraform is not installed: infra/ is not checked here")
    found = provider_mirror()
    if found is None:
        pytest.skip(
            "no filesystem mirror of the hashicorp/aws provider found (set BRANDLENS_TF_MIRROR "
            "to a directory holding registry.terraform.io/hashicorp/aws)"
        )
    return found


def test_terraform_is_formatted(mirror: Path) -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"run `terraform fmt -recursive infra`:\n{result.stdout}"


@pytest.mark.parametrize("env", ENVS)
def test_terraform_validates(env: str, mirror: Path, tmp_path: Path) -> None:
    tf = Terraform(env, tmp_path, mirror)
    tf.init()
    result = tf.run("validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    assert report["valid"], report
    assert report["warning_count"] == 0, report["diagnostics"]


# -- applied against a moto server -------------------------------------------------------------


@dataclass
class Applied:
    tf: Terraform
    variables: dict[str, str]
    names: StackNames
    endpoint_url: str
    outputs: dict[str, Any]


@pytest.fixture(scope="module")
def applied(
    mirror: Path, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Applied]:
    stack_name = "tf" + uuid.uuid4().hex[:8]
    tf = Terraform("local", tmp_path_factory.mktemp("terraform"), mirror)
    variables = {"endpoint_url": moto_server.endpoint_url, "stack_name": stack_name}
    tf.init()
    tf.apply(variables)
    try:
        yield Applied(tf, variables, StackNames(stack_name), moto_server.endpoint_url, tf.outputs())
    finally:
        tf.destroy(variables)


@pytest.fixture
async def clients(applied: Applied) -> AsyncIterator[AwsClients]:
    async with AwsClients(AwsSettings(endpoint_url=applied.endpoint_url)) as c:
        yield c


async def test_terraform_declares_what_the_code_expects(
    applied: Applied, clients: AwsClients
) -> None:
    spec: StackSpec = define(applied.names)
    names = applied.names
    assert applied.outputs["stack"]["media_bucket"] == names.media_bucket
    assert applied.outputs["stack"]["artifacts_bucket"] == names.artifacts_bucket

    # queues: one per service and a DLQ each, redrive as declared
    for queue in spec.queues:
        url = (await clients.sqs.get_queue_url(QueueName=names.queue(queue.logical)))["QueueUrl"]
        attributes = (await clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))[
            "Attributes"
        ]
        assert int(attributes["VisibilityTimeout"]) == queue.visibility_timeout_seconds, queue
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(f":{names.dlq(queue.logical)}")
        assert int(redrive["maxReceiveCount"]) == queue.max_receive_count, queue
        await clients.sqs.get_queue_url(QueueName=names.dlq(queue.logical))
    listed = await clients.sqs.list_queues(QueueNamePrefix=f"{names.stack_name}-")
    assert len(listed["QueueUrls"]) == 2 * len(spec.queues)

    # rules: same names, buses, patterns and target queues, nothing more
    declared = {}
    for rule in spec.rules:
        bus = "default" if rule.bus == "default" else names.bus
        declared[names.rule(rule.logical)] = (bus, rule.event_pattern, names.queue(rule.queue))
    found = {}
    for bus in ("default", names.bus):
        for rule in (
            await clients.events.list_rules(EventBusName=bus, NamePrefix=f"{names.stack_name}-")
        )["Rules"]:
            targets = (
                await clients.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)
            )["Targets"]
            (target,) = targets
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
            assert target["DeadLetterConfig"]["Arn"].endswith("-dlq")
            found[rule["Name"]] = (
                bus,
                json.loads(rule["EventPattern"]),
                target["Arn"].rsplit(":", 1)[1],
            )
    assert found == declared

    # tables: keys, indexes, TTL, point-in-time recovery
    for table in spec.tables:
        name = names.table(table.logical)
        described = (await clients.dynamodb.describe_table(TableName=name))["Table"]
        keys = {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]}
        assert keys.get("HASH") == table.hash_key, name
        assert keys.get("RANGE") == table.range_key, name
        indexes = {
            i["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]}
            for i in described.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {
            i.name: {"HASH": i.hash_key} | ({"RANGE": i.range_key} if i.range_key else {})
            for i in table.indexes
        }, name
        ttl = (await clients.dynamodb.describe_time_to_live(TableName=name))[
            "TimeToLiveDescription"
        ]
        if table.ttl_attribute:
            assert ttl.get("AttributeName") == table.ttl_attribute, name
            assert ttl["TimeToLiveStatus"] == "ENABLED", name
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", name
        backups = (await clients.dynamodb.describe_continuous_backups(TableName=name))[
            "ContinuousBackupsDescription"
        ]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert set(applied.outputs["stack"]["tables"]) == {t.logical for t in spec.tables}

    # buckets: encrypted, public access blocked; media versioned
    for bucket in spec.buckets:
        name = names.bucket(bucket.logical)
        encryption = await clients.s3.get_bucket_encryption(Bucket=name)
        assert encryption["ServerSideEncryptionConfiguration"]["Rules"]
        block = (await clients.s3.get_public_access_block(Bucket=name))[
            "PublicAccessBlockConfiguration"
        ]
        assert all(block.values()), block
        # the TLS-only bucket policy (on by default) is off in the local env: plain HTTP
        versioning = await clients.s3.get_bucket_versioning(Bucket=name)
        assert (versioning.get("Status") == "Enabled") == bucket.versioned, name
        # moto does not echo EventBridgeConfiguration back; that the media bucket sends its
        # events is shown by the next test (a dropped file becomes a job)


async def test_the_services_run_on_what_terraform_made(
    applied: Applied, clients: AwsClients, tmp_path: Path
) -> None:
    env = service_env(applied.endpoint_url, applied.names.stack_name) | {
        "BRANDLENS_INGEST_API_ENABLED": "false",
        "BRANDLENS_INGEST_WORKER_WAIT_TIME_SECONDS": "1",
        "BRANDLENS_FRAMER_WORKER_WAIT_TIME_SECONDS": "1",
    }
    processes = [
        await start_service(f"brandlens_{name}", env, tmp_path / f"{name}.log")
        for name in ("ingest", "framer")
    ]
    try:
        video = make_mp4(tmp_path / "clip.mp4", seconds=2.0)
        key = "analysis/shop/clip.mp4"
        put = await clients.s3.put_object(Bucket=applied.names.media_bucket, Key=key, Body=video)
        assert put.get("VersionId")  # the media bucket is versioned
        jobs = JobStore(clients.dynamodb, applied.names.table("jobs"))

        async def framed() -> Any:
            found = [j for j in await jobs.list(project="shop") if j.media.get("key") == key]
            if found and found[0].status in (JobStatus.FAILED, JobStatus.REJECTED):
                raise AssertionError(f"the job failed: {found[0].reason}")
            return found[0] if found and found[0].status is JobStatus.FRAMED else None

        job = await eventually(framed, timeout=120, message="the dropped file framed")
        assert job.framing["frame_count"] > 0
        assert job.framing["batch_count"] > 0  # batches went to the inferer's queue
        inferer = (await clients.sqs.get_queue_url(QueueName=applied.names.queue("inferer")))[
            "QueueUrl"
        ]
        attributes = await clients.sqs.get_queue_attributes(
            QueueUrl=inferer, AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) >= 1
        for name in ("ingest", "framer"):
            dlq = (await clients.sqs.get_queue_url(QueueName=applied.names.dlq(name)))["QueueUrl"]
            depth = await clients.sqs.get_queue_attributes(
                QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
            )
            assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0", name
    finally:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(p.wait() for p in processes))
    logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("ingest", "framer"))
    assert "Traceback" not in logs, logs[-3000:]
    assert os.environ.get("BRANDLENS_STACK_NAME") is None  # the services got it from env only


# -- policy -----------------------------------------------------------------------------------

CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_checkov_finds_nothing_unexplained() -> None:
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed: `make checkov` builds .venv-checkov")
    result = subprocess.run(
        [str(CHECKOV), "-d", str(INFRA), "--framework", "terraform", "--skip-download",
         "--quiet", "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False,
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert failed == [], "\n".join(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})" for c in failed
    )
    summary = reports[0]["summary"]
    assert summary["passed"] > 100, summary  # it really looked at the modules
    # every skip in the code says why
    for path in INFRA.rglob("*.tf"):
        for line in path.read_text().splitlines():
            match = SKIP.search(line)
            if match:
                assert len((match.group(2) or "").strip()) > 15, (path, line)
