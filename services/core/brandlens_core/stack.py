"""The one declarative definition of every AWS resource the services use.

The embedded local stack and the tests create resources from it with
:func:`deploy`; infra/ (Terraform) declares the same names, queues, rules,
event patterns and tables, and a parity test keeps the two in agreement.
Physical names derive from the stack name, so a test gets a fresh, isolated
set of resources by choosing a fresh stack name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from brandlens_core.aws import AwsClients, error_code
from brandlens_core.logging import get_logger
from brandlens_core.settings import StackSettings

log = get_logger(__name__)

DAY = 24 * 3600


@dataclass(frozen=True)
class BucketSpec:
    logical: str
    eventbridge_notifications: bool = False
    versioned: bool = False


@dataclass(frozen=True)
class QueueSpec:
    logical: str
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5
    message_retention_seconds: int = 4 * DAY
    dlq_message_retention_seconds: int = 14 * DAY


@dataclass(frozen=True)
class RuleSpec:
    logical: str
    bus: Literal["default", "project"]
    event_pattern: dict[str, Any]
    queue: str


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    logical: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = ()
    attribute_types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackNames:
    """Physical names of a stack's resources."""

    stack_name: str
    bucket_suffix: str = ""

    @classmethod
    def from_settings(cls, settings: StackSettings) -> StackNames:
        return cls(settings.stack_name, settings.bucket_suffix)

    def bucket(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}{self.bucket_suffix}"

    def queue(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}"

    def dlq(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}-dlq"

    @property
    def bus(self) -> str:
        return self.stack_name

    def rule(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}"

    def table(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}"

    @property
    def media_bucket(self) -> str:
        return self.bucket("media")

    @property
    def artifacts_bucket(self) -> str:
        return self.bucket("artifacts")


@dataclass(frozen=True)
class StackSpec:
    names: StackNames
    buckets: tuple[BucketSpec, ...]
    queues: tuple[QueueSpec, ...]
    rules: tuple[RuleSpec, ...]
    tables: tuple[TableSpec, ...]


def define(names: StackNames) -> StackSpec:
    """Every resource of a brandlens stack."""
    return StackSpec(
        names=names,
        buckets=(
            BucketSpec("media", eventbridge_notifications=True, versioned=True),
            BucketSpec("artifacts"),
        ),
        queues=(
            QueueSpec("ingest", visibility_timeout_seconds=60),
            QueueSpec("framer", visibility_timeout_seconds=120),
            QueueSpec("labeler", visibility_timeout_seconds=120),
            QueueSpec("trainer", visibility_timeout_seconds=60),
            QueueSpec("model-manager", visibility_timeout_seconds=60),
            QueueSpec("inferer", visibility_timeout_seconds=120, max_receive_count=8),
        ),
        rules=(
            # S3 sends its events to the account's default bus.
            RuleSpec(
                "ingest-media-created",
                bus="default",
                event_pattern={
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {"bucket": {"name": [names.media_bucket]}},
                },
                queue="ingest",
            ),
            RuleSpec(
                "framer-media-accepted",
                bus="project",
                event_pattern={"source": ["brandlens.ingest"], "detail-type": ["MediaAccepted"]},
                queue="framer",
            ),
            RuleSpec(
                "labeler-frames-extracted",
                bus="project",
                event_pattern={
                    "source": ["brandlens.framer"],
                    "detail-type": ["FramesExtracted"],
                    "detail": {"purpose": ["training"]},
                },
                queue="labeler",
            ),
            # Imported annotations: training/<project>/annotations/<file> in the media bucket.
            RuleSpec(
                "labeler-annotations-created",
                bus="default",
                event_pattern={
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [names.media_bucket]},
                        "object": {"key": [{"wildcard": "training/*/annotations/*"}]},
                    },
                },
                queue="labeler",
            ),
            # Ground Truth reports its labelling jobs' states on the default bus.
            RuleSpec(
                "labeler-labeling-job-state",
                bus="default",
                event_pattern={
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Ground Truth Labeling Job State Change"],
                    # only the labeler's own jobs (named brandlens-<hash>), not the account's
                    "resources": [{"wildcard": "arn:aws*:sagemaker:*:*:labeling-job/brandlens-*"}],
                },
                queue="labeler",
            ),
            # Analysis frames are already on the inferer's queue as batches; FramesExtracted
            # tells it framing is over (how many batches), for the last-batch check.
            RuleSpec(
                "inferer-frames-extracted",
                bus="project",
                event_pattern={
                    "source": ["brandlens.framer"],
                    "detail-type": ["FramesExtracted"],
                    "detail": {"purpose": ["analysis"]},
                },
                queue="inferer",
            ),
            RuleSpec(
                "trainer-dataset-ready",
                bus="project",
                event_pattern={"source": ["brandlens.labeler"], "detail-type": ["DatasetReady"]},
                queue="trainer",
            ),
        ),
        tables=(
            TableSpec(
                "jobs",
                hash_key="job_id",
                indexes=(IndexSpec("by-project", "project", "created_at"),),
                attribute_types={"job_id": "S", "project": "S", "created_at": "S"},
            ),
            # Projects and what belongs to them: settings, labelling batches, datasets.
            TableSpec(
                "projects",
                hash_key="project",
                range_key="item",
                attribute_types={"project": "S", "item": "S"},
            ),
            # Model runtime: each model's state row and the jobs' leases on it.
            TableSpec(
                "runtime",
                hash_key="model",
                range_key="item",
                ttl_attribute="ttl",
                attribute_types={"model": "S", "item": "S"},
            ),
            # REST API keys, by the SHA-256 of the secret (see brandlens_core.apikeys).
            TableSpec(
                "apikeys",
                hash_key="key_hash",
                attribute_types={"key_hash": "S"},
            ),
            TableSpec(
                "idempotency",
                hash_key="id",
                ttl_attribute="expiration",
                attribute_types={"id": "S"},
            ),
        ),
    )


# -- deploying the definition (embedded stack and tests) ----------------------


async def deploy(clients: AwsClients, spec: StackSpec) -> dict[str, str]:
    """Create every resource of ``spec`` that does not exist yet. Returns queue URLs."""
    names = spec.names
    for bucket in spec.buckets:
        await _deploy_bucket(clients, names.bucket(bucket.logical), bucket)
    bus_arn = await _deploy_bus(clients, names.bus)
    queue_urls: dict[str, str] = {}
    queue_arns: dict[str, str] = {}
    for queue in spec.queues:
        url, arn = await _deploy_queue(clients, names, queue)
        queue_urls[queue.logical] = url
        queue_arns[queue.logical] = arn
    policies: dict[str, list[dict[str, Any]]] = {}
    for rule in spec.rules:
        rule_arn = await _deploy_rule(clients, names, rule, queue_arns)
        policies.setdefault(rule.queue, []).append(
            {
                "Sid": rule.logical,
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arns[rule.queue],
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        )
    for logical, statements in policies.items():
        await clients.sqs.set_queue_attributes(
            QueueUrl=queue_urls[logical],
            Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": statements})},
        )
    for table in spec.tables:
        await _deploy_table(clients, names.table(table.logical), table)
    log.info("stack.deployed", stack_name=names.stack_name, bus_arn=bus_arn)
    return queue_urls


async def _deploy_bucket(clients: AwsClients, name: str, spec: BucketSpec) -> None:
    s3 = clients.s3
    kwargs: dict[str, Any] = {"Bucket": name}
    if clients.settings.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": clients.settings.region}
    try:
        await s3.create_bucket(**kwargs)
    except Exception as exc:
        if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    await s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    await s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    if spec.versioned:
        await s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if spec.eventbridge_notifications:
        await s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )


async def _deploy_bus(clients: AwsClients, name: str) -> str:
    try:
        response = await clients.events.create_event_bus(Name=name)
        return str(response["EventBusArn"])
    except Exception as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise
    described = await clients.events.describe_event_bus(Name=name)
    return str(described["Arn"])


async def _deploy_queue(clients: AwsClients, names: StackNames, spec: QueueSpec) -> tuple[str, str]:
    sqs = clients.sqs
    dlq = await sqs.create_queue(
        QueueName=names.dlq(spec.logical),
        Attributes={
            "MessageRetentionPeriod": str(spec.dlq_message_retention_seconds),
            "SqsManagedSseEnabled": "true",
        },
    )
    dlq_arn = await _queue_arn(clients, dlq["QueueUrl"])
    queue = await sqs.create_queue(
        QueueName=names.queue(spec.logical),
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(spec.message_retention_seconds),
            "ReceiveMessageWaitTimeSeconds": "20",
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
            ),
        },
    )
    return queue["QueueUrl"], await _queue_arn(clients, queue["QueueUrl"])


async def _queue_arn(clients: AwsClients, url: str) -> str:
    attrs = await clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


async def _deploy_rule(
    clients: AwsClients, names: StackNames, spec: RuleSpec, queue_arns: dict[str, str]
) -> str:
    bus = "default" if spec.bus == "default" else names.bus
    response = await clients.events.put_rule(
        Name=names.rule(spec.logical),
        EventBusName=bus,
        EventPattern=json.dumps(spec.event_pattern),
        State="ENABLED",
    )
    dlq_arn = queue_arns[spec.queue].rsplit(":", 1)[0] + ":" + names.dlq(spec.queue)
    await clients.events.put_targets(
        Rule=names.rule(spec.logical),
        EventBusName=bus,
        Targets=[
            {
                "Id": "queue",
                "Arn": queue_arns[spec.queue],
                "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": DAY},
                "DeadLetterConfig": {"Arn": dlq_arn},
            }
        ],
    )
    return str(response["RuleArn"])


async def _deploy_table(clients: AwsClients, name: str, spec: TableSpec) -> None:
    db = clients.dynamodb
    keys = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    if spec.range_key:
        keys.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": k, "AttributeType": t} for k, t in spec.attribute_types.items()
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    if spec.indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
                + (
                    [{"AttributeName": index.range_key, "KeyType": "RANGE"}]
                    if index.range_key
                    else []
                ),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    try:
        await db.create_table(**kwargs)
    except Exception as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
    waiter = db.get_waiter("table_exists")
    await waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    if spec.ttl_attribute:
        try:
            await db.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
        except Exception as exc:  # AWS refuses to enable TTL twice
            if error_code(exc) != "ValidationException":
                raise
