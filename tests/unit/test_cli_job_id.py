"""The CLI computes the job id of an upload exactly as ingest does."""

from __future__ import annotations

import pytest

from brandlens_cli.main import job_id_for_upload
from brandlens_core.envelopes import S3ObjectCreated
from brandlens_ingest.handler import job_id_for


def s3_event(bucket: str, key: str, version_id: str | None) -> S3ObjectCreated:
    """What S3 sends to EventBridge for a new object version (as moto and AWS shape it)."""
    return S3ObjectCreated.model_validate(
        {
            "envelope": {
                "version": "0",
                "id": "9f1c1b7e-0000-4000-8000-000000000001",
                "detail-type": "Object Created",
                "source": "aws.s3",
                "account": "123456789012",
                "region": "us-east-1",
                "resources": [f"arn:aws:s3:::{bucket}"],
                "detail": {},
            },
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {
                    "key": key,
                    "size": 1234,
                    "etag": "0123456789abcdef0123456789abcdef",
                    "version-id": version_id,
                    "sequencer": "617f08299329d189",
                },
                "request-id": "N4N7GDK58NMKJ12R",
                "reason": "PutObject",
            },
        }
    )


@pytest.mark.parametrize(
    ("bucket", "key", "version_id"),
    [
        ("brandlens-media", "analysis/acme/shelf.jpg", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
        ("demo-media", "training/acme-2/a b/ünïcode.mp4", "null-ish-but-not-null"),
        ("x-media", "analysis/p/f", "1"),
    ],
)
def test_the_cli_job_id_is_ingests_job_id(bucket: str, key: str, version_id: str) -> None:
    expected = job_id_for(s3_event(bucket, key, version_id))
    assert job_id_for_upload(bucket, key, version_id) == expected
    assert expected.startswith("job-")
    assert len(expected) == len("job-") + 24


def test_versions_give_different_job_ids() -> None:
    a = job_id_for_upload("b-media", "analysis/p/f.jpg", "v1")
    b = job_id_for_upload("b-media", "analysis/p/f.jpg", "v2")
    assert a != b


@pytest.mark.parametrize("version_id", [None, "", "null"])
def test_no_version_id_means_the_cli_cannot_know_the_job_id(version_id: str | None) -> None:
    # Ingest then falls back to the event's sequencer, which only S3 knows.
    assert job_id_for_upload("b-media", "analysis/p/f.jpg", version_id) is None
