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

from typing import Literal

from brandlens_core.aws import Client
from brandlens_core.projects import ConflictError, ProjectStore

SQS_MAX_DELAY_SECONDS = 900


def backoff_delay(seq: int, first_seconds: float, max_seconds: float, factor: float = 1.5) -> int:
    """Delay before poll ``seq`` (1-based): ``first * factor^(seq-1)``, capped (SQS: 900 s)."""
    delay = first_seconds * factor ** max(seq - 1, 0)
    return int(min(delay, max_seconds, SQS_MAX_DELAY_SECONDS))


async def claim_next(store: ProjectStore, project: str, item: str, seq: int) -> bool:
    """Move the row's ``poll_seq`` from ``seq - 1`` to ``seq``; False if another did."""
    try:
        await store.update(project, item, {"poll_seq": seq}, when={"poll_seq": seq - 1})
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
) -> None:
    """Claim poll ``seq`` on a projects-table row (unless re-sending it) and send it delayed."""
    if not resend and not await claim_next(store, project, item, seq):
        return
    await send_delayed(sqs, queue_url, body, backoff_delay(seq, first_seconds, max_seconds))
