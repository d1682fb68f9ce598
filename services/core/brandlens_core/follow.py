"""Following slow external work (labelling jobs, training) with delayed self-messages.

A worker never sleeps on a long job: it sends itself a delayed SQS message and
lets go. The row being followed holds ``poll_seq``, the number of the one live
chain of messages: message ``n`` acts only while ``poll_seq == n`` and moves it
to ``n + 1`` (a conditional write) before sending the next. A redelivered
message ``n`` after that re-sends ``n + 1``; keyed idempotency
(``<kind>:<row>:<n>``) drops the duplicate, so a crash at any point neither
loses the chain nor doubles it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from brandlens_core.aws import Client
from brandlens_core.projects import ConflictError, ProjectStore

SQS_MAX_DELAY_SECONDS = 900


def backoff_delay(seq: int, first_seconds: float, max_seconds: float, factor: float = 1.5) -> int:
    """Delay before poll ``seq`` (1-based): ``first * factor^(seq-1)``, capped (SQS: 900 s)."""
    delay = first_seconds * factor ** max(seq - 1, 0)
    return int(min(delay, max_seconds, SQS_MAX_DELAY_SECONDS))


async def claim_next(
    store: ProjectStore,
    project: str,
    item: str,
    seq: int,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Move the row's ``poll_seq`` from ``seq - 1`` to ``seq`` (writing ``fields`` with it,
    in the same conditional write); False if another did."""
    try:
        await store.update(
            project, item, {**(fields or {}), "poll_seq": seq}, when={"poll_seq": seq - 1}
        )
    except ConflictError:
        return False
    return True


async def send_delayed(sqs: Client, queue_url: str, body: str, delay_seconds: int) -> None:
    await sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        DelaySeconds=max(0, min(delay_seconds, SQS_MAX_DELAY_SECONDS)),
    )


def poll_action(row_seq: int, seq: int) -> Literal["act", "resend", "stale"]:
    """What poll ``seq`` does given the row's ``poll_seq``: act on it, re-send the next
    one (a redelivery after ``seq + 1`` was recorded), or nothing (a stale chain)."""
    if row_seq == seq:
        return "act"
    if row_seq == seq + 1:
        return "resend"
    return "stale"


async def schedule(
    store: ProjectStore,
    project: str,
    item: str,
    seq: int,
    *,
    sqs: Client,
    queue_url: str,
    body: str,
    first_seconds: float,
    max_seconds: float,
    resend: bool = False,
    delay_seconds: int | None = None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Claim poll ``seq`` on a projects-table row (unless re-sending it) and send it delayed:
    by ``delay_seconds`` when the caller chose (e.g. from a predicted end), else by the
    backoff. ``fields`` are written with the claim (not on a re-send)."""
    if not resend and not await claim_next(store, project, item, seq, fields):
        return
    delay = (
        backoff_delay(seq, first_seconds, max_seconds) if delay_seconds is None else delay_seconds
    )
    await send_delayed(sqs, queue_url, body, delay)
