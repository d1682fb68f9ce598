"""Following jobs until they settle, against the stack's real jobs table.

``follow`` polls a real ``JobStore`` while the test plays ingest and the
workers: it creates and moves the job row between polls.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from brandlens_cli import main
from brandlens_cli.main import Tracked, follow
from brandlens_core.events import Purpose, utc_now
from brandlens_core.jobs import Job, JobStatus, JobStore
from tests.support import Stack, eventually

pytestmark = pytest.mark.integration

KEY = "analysis/acme/a.jpg"
ONLY_INGEST = frozenset({"ingest"})  # a local stack where nothing moves an ACCEPTED job on
DEPLOYED = None  # every service runs: only a terminal status settles


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "POLL_INTERVAL_SECONDS", 0.01)


@pytest.fixture
def jobs(stack: Stack) -> JobStore:
    return JobStore(stack.clients.dynamodb, stack.names.table("jobs"))


def job(status: JobStatus, job_id: str = "job-1", key: str = KEY, **kw: Any) -> Job:
    return Job(
        job_id=job_id,
        project="acme",
        purpose=Purpose.ANALYSIS,
        status=status,
        media={"key": key},
        **kw,
    )


def tracked(job_id: str | None = "job-1") -> Tracked:
    return Tracked(label="a.jpg", project="acme", key=KEY, job_id=job_id)


class Following:
    """``follow`` running as a task; counts its polls so the test can act between them."""

    def __init__(
        self,
        store: JobStore,
        t: Tracked,
        running: frozenset[str] | None,
        timeout_seconds: float = 10,
    ) -> None:
        self.polls = 0
        self.task = asyncio.create_task(
            follow(store, [t], running, timeout_seconds, on_update=self._polled)
        )

    def _polled(self) -> None:
        self.polls += 1

    async def polled(self, times: int) -> None:
        """Wait until ``follow`` has polled ``times`` more times, still following."""
        target = self.polls + times

        async def reached() -> bool:
            return self.polls >= target

        await eventually(reached, timeout=5, interval=0.01, message=f"{times} more polls")
        assert not self.task.done(), "follow stopped early"

    async def ended(self) -> None:
        await asyncio.wait_for(self.task, 10)


async def test_follows_until_ingest_creates_the_job(jobs: JobStore) -> None:
    # given a job ingest has not created yet
    t = tracked()
    following = Following(jobs, t, ONLY_INGEST)
    # then it is followed while it does not exist
    await following.polled(3)
    assert t.job is None
    assert not t.settled
    # when ingest creates it, accepted
    await jobs.create(job(JobStatus.ACCEPTED))
    # then following ends with it
    await following.ended()
    assert t.settled
    assert t.job is not None
    assert t.job.status is JobStatus.ACCEPTED
    assert t.exit_code == 0


async def test_on_a_deployed_stack_a_job_is_followed_until_it_completes(jobs: JobStore) -> None:
    # given an accepted job on a stack where every service runs
    await jobs.create(job(JobStatus.ACCEPTED))
    t = tracked()
    following = Following(jobs, t, DEPLOYED)
    # then it is followed through the statuses the workers give it
    for status in (JobStatus.FRAMING, JobStatus.FRAMED, JobStatus.ANALYZING):
        await following.polled(2)
        assert t.job is not None
        assert not t.settled
        await jobs.transition("job-1", status)
    await following.polled(2)
    assert t.status_text == JobStatus.ANALYZING.value
    # when it completes
    await jobs.transition("job-1", JobStatus.COMPLETED)
    # then following ends with it
    await following.ended()
    assert t.settled
    assert t.job is not None
    assert t.job.status is JobStatus.COMPLETED
    assert t.exit_code == 0


async def test_a_job_that_fails_while_followed_exits_1(jobs: JobStore) -> None:
    # given an accepted job on a stack where every service runs
    await jobs.create(job(JobStatus.ACCEPTED))
    t = tracked()
    following = Following(jobs, t, DEPLOYED)
    await following.polled(2)
    # when framing fails
    await jobs.transition("job-1", JobStatus.FAILED, reason="not a video")
    # then following ends with it
    await following.ended()
    assert t.job is not None
    assert (t.job.status, t.job.reason) == (JobStatus.FAILED, "not a video")
    assert t.exit_code == 1


async def test_a_rejected_job_exits_1(jobs: JobStore) -> None:
    # given a job ingest rejected
    await jobs.create(job(JobStatus.REJECTED, reason="bad"))
    t = tracked()
    # when it is followed
    await follow(jobs, [t], ONLY_INGEST, timeout_seconds=5)
    # then
    assert t.settled
    assert t.job is not None
    assert t.job.reason == "bad"
    assert t.exit_code == 1


async def test_a_job_that_does_not_settle_in_time_exits_2(jobs: JobStore) -> None:
    # given an accepted job; on a deployed stack ACCEPTED is not settled
    await jobs.create(job(JobStatus.ACCEPTED))
    t = tracked()
    # when it is followed for a moment only
    await follow(jobs, [t], DEPLOYED, timeout_seconds=0.05)
    # then it was seen, but not settled
    assert t.job is not None
    assert t.job.status is JobStatus.ACCEPTED
    assert not t.settled
    assert t.exit_code == 2


async def test_without_a_version_id_the_job_is_found_by_its_key(jobs: JobStore) -> None:
    # given an hour-old job of the same key, and an upload without a version id
    await jobs.create(
        job(JobStatus.ACCEPTED, job_id="job-old", created_at=utc_now() - timedelta(hours=1))
    )
    t = tracked(job_id=None)
    following = Following(jobs, t, ONLY_INGEST)
    # then the old job is not taken for the upload's
    await following.polled(3)
    assert t.job_id is None
    assert t.job is None
    # when ingest creates the upload's job
    await jobs.create(job(JobStatus.ACCEPTED, job_id="job-1"))
    # then it is found by its key
    await following.ended()
    assert t.job_id == "job-1"
    assert t.settled
    assert t.exit_code == 0
