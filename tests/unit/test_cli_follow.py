"""Following jobs until they settle, with a fake job store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from brandlens_cli import main
from brandlens_cli.main import Tracked, follow
from brandlens_core.events import Purpose, utc_now
from brandlens_core.jobs import Job, JobNotFoundError, JobStatus


class FakeStore:
    """Returns the scripted rows of a job, one per poll; the last one forever."""

    def __init__(self, script: list[Job | None]) -> None:
        self.script = script
        self.gets = 0

    async def get(self, job_id: str) -> Job:
        row = self.script[min(self.gets, len(self.script) - 1)]
        self.gets += 1
        if row is None:
            raise JobNotFoundError(job_id)
        return row

    async def list(self, *, project: str | None = None, limit: int = 100) -> list[Job]:
        row = self.script[min(self.gets, len(self.script) - 1)]
        self.gets += 1
        return [] if row is None else [row]


def job(status: JobStatus, key: str = "analysis/acme/a.jpg", **kw: Any) -> Job:
    return Job(
        job_id="job-1",
        project="acme",
        purpose=Purpose.ANALYSIS,
        status=status,
        media={"key": key},
        **kw,
    )


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "POLL_INTERVAL_SECONDS", 0.01)


def tracked(job_id: str | None = "job-1") -> Tracked:
    return Tracked(label="a.jpg", project="acme", key="analysis/acme/a.jpg", job_id=job_id)


async def test_follows_until_ingest_creates_the_job() -> None:
    store = FakeStore([None, None, job(JobStatus.ACCEPTED)])
    t = tracked()
    await follow(store, [t], frozenset({"ingest"}), timeout_seconds=5)  # type: ignore[arg-type]
    assert t.settled
    assert t.job is not None
    assert t.job.status is JobStatus.ACCEPTED
    assert t.exit_code == 0
    assert store.gets == 3


async def test_a_rejected_job_exits_1() -> None:
    t = tracked()
    store = FakeStore([job(JobStatus.REJECTED, reason="bad")])
    await follow(store, [t], frozenset({"ingest"}), timeout_seconds=5)  # type: ignore[arg-type]
    assert t.exit_code == 1


async def test_a_job_that_does_not_settle_in_time_exits_2() -> None:
    t = tracked()
    # On a deployed stack (running=None) ACCEPTED is not settled.
    store = FakeStore([job(JobStatus.ACCEPTED)])
    await follow(store, [t], None, timeout_seconds=0.05)  # type: ignore[arg-type]
    assert not t.settled
    assert t.exit_code == 2


async def test_without_a_version_id_the_job_is_found_by_its_key() -> None:
    t = tracked(job_id=None)
    old = job(JobStatus.ACCEPTED, created_at=utc_now() - timedelta(hours=1))
    store = FakeStore([None, old, job(JobStatus.ACCEPTED)])
    await follow(store, [t], frozenset({"ingest"}), timeout_seconds=5)  # type: ignore[arg-type]
    assert t.job_id == "job-1"
    assert store.gets == 3  # the hour-old job of the same key was not taken for it
