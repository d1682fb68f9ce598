"""Which stack the CLI talks to, and when a followed job has settled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from brandlens_cli.embedded import LOCAL_CREDENTIALS
from brandlens_cli.target import NO_STACK_MESSAGE, NoTargetError, is_settled, resolve_target
from brandlens_core.events import Purpose
from brandlens_core.jobs import Job, JobStatus


def write_state(state_dir: Path, **overrides: object) -> None:
    state = {
        "endpoint_url": "http://127.0.0.1:4510",
        "stack_name": "mystack",
        "region": "eu-west-1",
        "services": ["ingest"],
        "pid": os.getpid(),
    } | overrides
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "local.json").write_text(json.dumps(state))


def test_no_stack_and_no_aws_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NoTargetError, match="brandlens up"):
        resolve_target(use_aws=False, state_dir=tmp_path)
    assert "--aws" in NO_STACK_MESSAGE


def test_the_running_local_stack_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(tmp_path)
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("BRANDLENS_AWS_S3_ENDPOINT_URL", "http://elsewhere:1")
    target = resolve_target(use_aws=False, state_dir=tmp_path)
    assert target.local
    assert target.names.media_bucket == "mystack-media"
    assert target.jobs_table == "mystack-jobs"
    assert target.aws.region == "eu-west-1"
    assert target.aws.endpoint_for("s3") == "http://127.0.0.1:4510"
    assert target.aws.endpoint_for("dynamodb") == "http://127.0.0.1:4510"
    assert target.services == frozenset({"ingest"})
    # The fake credentials replace whatever the developer has configured.
    assert os.environ["AWS_ACCESS_KEY_ID"] == LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    assert "AWS_PROFILE" not in os.environ


def test_aws_flag_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_state(tmp_path)  # ignored with --aws
    monkeypatch.setenv("BRANDLENS_STACK_NAME", "prod")
    monkeypatch.setenv("BRANDLENS_BUCKET_SUFFIX", "-123456789012")
    monkeypatch.setenv("BRANDLENS_AWS_REGION", "eu-central-1")
    target = resolve_target(use_aws=True, state_dir=tmp_path)
    assert not target.local
    assert target.services is None
    assert target.names.media_bucket == "prod-media-123456789012"
    assert target.aws.region == "eu-central-1"
    assert target.aws.endpoint_for("s3") is None


def test_an_endpoint_in_the_environment_is_used_without_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANDLENS_AWS_ENDPOINT_URL", "http://localhost:4566")
    monkeypatch.setenv("BRANDLENS_STACK_NAME", "ls-stack")
    target = resolve_target(use_aws=False, state_dir=tmp_path)
    assert target.aws.endpoint_for("s3") == "http://localhost:4566"
    assert target.names.stack_name == "ls-stack"


def test_an_invalid_stack_name_in_the_environment_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANDLENS_STACK_NAME", "Not_Valid")
    with pytest.raises(NoTargetError, match="BRANDLENS_"):
        resolve_target(use_aws=True, state_dir=tmp_path)


def job(status: JobStatus, purpose: Purpose = Purpose.ANALYSIS) -> Job:
    return Job(job_id="job-1", project="acme", purpose=purpose, status=status)


@pytest.mark.parametrize("running", [frozenset({"ingest"}), frozenset(), None])
@pytest.mark.parametrize("status", [JobStatus.REJECTED, JobStatus.COMPLETED, JobStatus.FAILED])
def test_terminal_statuses_are_settled(status: JobStatus, running: frozenset[str] | None) -> None:
    assert is_settled(job(status), running)


@pytest.mark.parametrize("running", [frozenset({"ingest"}), None])
def test_a_job_not_created_yet_is_not_settled(running: frozenset[str] | None) -> None:
    assert not is_settled(None, running)


def test_with_only_ingest_running_accepted_is_settled() -> None:
    assert is_settled(job(JobStatus.ACCEPTED), frozenset({"ingest"}))


def test_accepted_is_not_settled_while_the_framer_runs() -> None:
    assert not is_settled(job(JobStatus.ACCEPTED), frozenset({"ingest", "framer"}))
    assert is_settled(job(JobStatus.FRAMED), frozenset({"ingest", "framer"}))
    assert not is_settled(job(JobStatus.FRAMED), frozenset({"ingest", "framer", "inferer"}))


def test_on_a_deployed_stack_only_terminal_statuses_settle() -> None:
    for status in (JobStatus.ACCEPTED, JobStatus.FRAMING, JobStatus.ANALYZING):
        assert not is_settled(job(status), None)


def test_framed_jobs_wait_for_the_service_of_their_purpose() -> None:
    running = frozenset({"ingest", "framer", "labeler"})
    training = job(JobStatus.FRAMED, Purpose.TRAINING)
    analysis = job(JobStatus.FRAMED, Purpose.ANALYSIS)
    assert not is_settled(training, running)
    assert is_settled(analysis, running)  # no inferer runs
    assert not is_settled(analysis, running | {"inferer"})


def test_labeling_waits_for_people_so_it_settles() -> None:
    running = frozenset({"ingest", "framer", "labeler", "trainer"})
    assert is_settled(job(JobStatus.LABELING), running)
