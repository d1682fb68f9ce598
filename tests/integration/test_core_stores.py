"""Job store and publisher against DynamoDB and EventBridge over HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from brandlens_core.aws import AwsClients
from brandlens_core.events import FramingFailed, Purpose
from brandlens_core.jobs import (
    InvalidTransitionError,
    Job,
    JobExistsError,
    JobStatus,
    JobStore,
)
from brandlens_core.publisher import EventPublisher, PublishError
from brandlens_core.settings import AwsSettings
from tests.support import HoldingProxy, Stack, eventually

pytestmark = pytest.mark.integration


def store(stack: Stack) -> JobStore:
    return JobStore(stack.clients.dynamodb, stack.names.table("jobs"))


async def test_a_job_id_is_created_once(stack: Stack) -> None:
    jobs = store(stack)
    await jobs.create(Job(job_id="j1", project="acme", status=JobStatus.ACCEPTED))
    with pytest.raises(JobExistsError) as info:
        await jobs.create(Job(job_id="j1", project="other", status=JobStatus.REJECTED))
    assert info.value.job.project == "acme"


async def test_racing_transitions_have_exactly_one_winner(stack: Stack) -> None:
    jobs = store(stack)
    await jobs.create(Job(job_id="j1", project="acme", status=JobStatus.ACCEPTED))
    results = await asyncio.gather(
        *(jobs.transition("j1", JobStatus.FRAMING, fields={"worker": str(i)}) for i in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Job)]
    losers = [r for r in results if isinstance(r, InvalidTransitionError)]
    assert len(winners) == 1
    assert len(losers) == 7
    assert all(loser.current is JobStatus.FRAMING for loser in losers)
    final = await jobs.get("j1")
    assert final.revision == 2
    assert final.status is JobStatus.FRAMING


async def test_a_transition_not_allowed_from_the_current_state_is_refused(stack: Stack) -> None:
    jobs = store(stack)
    await jobs.create(Job(job_id="j1", status=JobStatus.REJECTED, reason="empty"))
    with pytest.raises(InvalidTransitionError, match="cannot go from REJECTED to FAILED"):
        await jobs.transition("j1", JobStatus.FAILED, reason="x")


async def test_jobs_are_listed_per_project_newest_first(stack: Stack) -> None:
    jobs = store(stack)
    for i in range(3):
        await jobs.create(
            Job(job_id=f"a{i}", project="acme", purpose=Purpose.ANALYSIS, status=JobStatus.ACCEPTED)
        )
    await jobs.create(Job(job_id="b0", project="other", status=JobStatus.ACCEPTED))
    listed = await jobs.list(project="acme")
    assert [j.job_id for j in listed] == ["a2", "a1", "a0"]
    assert len(await jobs.list()) == 4


def failing_first_put(times: int):  # type: ignore[no-untyped-def]
    """Rewrite the first PutEvents answers so their first entry failed, as AWS can."""
    state = {"left": times}

    def rewrite(target: str | None, request: bytes, response: bytes) -> bytes | None:
        if target != "AWSEvents.PutEvents" or state["left"] == 0:
            return None
        state["left"] -= 1
        answer = json.loads(response)
        answer["Entries"][0] = {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
        answer["FailedEntryCount"] = 1
        return json.dumps(answer).encode()

    return rewrite


async def test_failed_entries_are_retried_and_others_not_sent_twice(stack: Stack) -> None:
    await stack.capture_events()
    proxy = HoldingProxy(stack.endpoint_url, rewrite=failing_first_put(2))
    await proxy.start()
    try:
        settings = AwsSettings(endpoint_url=proxy.url)  # type: ignore[arg-type]
        async with AwsClients(settings, services=("events",)) as clients:
            publisher = EventPublisher(
                clients.events, stack.names.bus, "brandlens.test", base_delay_seconds=0.01
            )
            events = [
                FramingFailed(
                    event_id=f"e{i}",
                    job_id=f"j{i}",
                    project="acme",
                    purpose=Purpose.ANALYSIS,
                    reason="r",
                )
                for i in range(12)
            ]
            await publisher.publish_all(events)
    finally:
        await proxy.stop()
    # The first entry of the first call "failed" twice (really delivered by moto each
    # time, as the rewrite only changes the answer): so e0 arrives three times and
    # every other event exactly once: retries resend only the failed entries.
    captured = await eventually(lambda: _at_least(stack, 14), message="all events delivered")
    ids = sorted(e["detail"]["event_id"] for e in captured)
    assert ids.count("e0") == 3
    assert sorted(set(ids)) == sorted(f"e{i}" for i in range(12))
    assert len(ids) == 14


async def _at_least(stack: Stack, n: int) -> list[dict[str, object]] | None:
    got = await stack.collect()
    return got if len(got) >= n else None


async def test_publishing_gives_up_with_a_clear_error(stack: Stack) -> None:
    proxy = HoldingProxy(stack.endpoint_url, rewrite=failing_first_put(100))
    await proxy.start()
    try:
        settings = AwsSettings(endpoint_url=proxy.url)  # type: ignore[arg-type]
        async with AwsClients(settings, services=("events",)) as clients:
            publisher = EventPublisher(
                clients.events,
                stack.names.bus,
                "brandlens.test",
                max_attempts=3,
                base_delay_seconds=0.01,
            )
            with pytest.raises(PublishError, match=r"1 event.* not published .* after 3 attempts"):
                await publisher.publish(
                    FramingFailed(
                        event_id="e", job_id="j", project="p", purpose=Purpose.TRAINING, reason="r"
                    )
                )
    finally:
        await proxy.stop()
