"""The SQS worker runtime.

A service writes ``async def handle(message, ctx) -> None``; the runtime owns
everything else:

* long polling, fetching only as many messages as it has free slots for
  (``max_in_flight_messages``), so nothing waits in memory: backpressure;
* one task per message; each succeeds or fails on its own;
* a visibility heartbeat while a handler runs, and a per-message deadline;
* retries with exponential backoff through ChangeMessageVisibility, and the
  queue's redrive policy moves a message to the DLQ after its max receives;
* an optional idempotency record per message (see :mod:`.idempotency`);
* deletes batched (at most 10 per call) after success;
* on SIGTERM: stop pulling, let in-flight work finish within
  ``drain_grace_seconds``, then cancel it and make its messages visible again.

Bookkeeping after a handler runs is shielded, so cancellation cannot lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from brandlens_core.aws import Client
from brandlens_core.idempotency import (
    AlreadyCompletedError,
    IdempotencyStore,
    InProgressElsewhereError,
)
from brandlens_core.logging import get_logger
from brandlens_core.settings import WorkerSettings

M = TypeVar("M")
C = TypeVar("C")

log = get_logger(__name__)

SQS_MAX_BATCH = 10
RECEIVE_FILL_WAIT_SECONDS = 0.02


class RetryLaterError(Exception):
    """Raised by a handler: not a failure, try this message again after ``delay_seconds``."""

    def __init__(self, delay_seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay_seconds}s")
        self.delay_seconds = delay_seconds
        self.reason = reason


@dataclass
class WorkerStats:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    duplicates: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


@dataclass
class _Slots:
    """Counts held messages; the poller waits here for room before receiving."""

    limit: int
    held: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def free(self) -> int:
        return self.limit - self.held

    async def wait_at_least(self, n: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.limit - self.held >= n)
            return self.limit - self.held

    def take(self, n: int) -> None:
        if self.held + n > self.limit:
            raise RuntimeError("took more slots than are free")
        self.held += n

    async def give(self) -> None:
        async with self._changed:
            self.held -= 1
            self._changed.notify_all()


class _Deleter:
    """Collects receipts of finished messages and deletes them up to 10 per call."""

    def __init__(self, sqs: Client, queue_url: str, window_seconds: float) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._window = window_seconds
        self._pending: asyncio.Queue[tuple[str, str, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqs-deleter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def delete(self, message_id: str, receipt: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._pending.put((message_id, receipt, future))
        await future

    async def _run(self) -> None:
        while True:
            batch = [await self._pending.get()]
            deadline = time.monotonic() + self._window
            while len(batch) < SQS_MAX_BATCH:
                try:
                    batch.append(self._pending.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._pending.get(), remaining))
                except TimeoutError:
                    break
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[str, str, asyncio.Future[None]]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, (_, r, _) in enumerate(batch)]
        failed: dict[str, str] = {}
        try:
            response = await self._sqs.delete_message_batch(
                QueueUrl=self._queue_url, Entries=entries
            )
            failed = {
                f["Id"]: f.get("Message", f.get("Code", "")) for f in response.get("Failed", [])
            }
        except Exception as exc:
            failed = {e["Id"]: f"{type(exc).__name__}: {exc}" for e in entries}
        for i, (message_id, _, future) in enumerate(batch):
            if str(i) in failed:
                # Not fatal: the message comes back and the idempotency record, if
                # any, acknowledges it without running the handler again.
                log.warning("message.delete_failed", message_id=message_id, error=failed[str(i)])
            if not future.done():
                future.set_result(None)


class Worker(Generic[M, C]):
    """Consumes one SQS queue with ``handle(decode(body), ctx)`` per message."""

    def __init__(
        self,
        *,
        name: str,
        sqs: Client,
        queue_url: str,
        decode: Callable[[str], M],
        handle: Callable[[M, C], Awaitable[None]],
        ctx: C,
        settings: WorkerSettings,
        idempotency: IdempotencyStore | None = None,
        idempotency_key: Callable[[M], str | None] | None = None,
    ) -> None:
        if (idempotency is None) != (idempotency_key is None):
            raise ValueError("idempotency and idempotency_key go together")
        self.name = name
        self._sqs = sqs
        self._queue_url = queue_url
        self._decode = decode
        self._handle = handle
        self._ctx = ctx
        self._settings = settings
        self._idempotency = idempotency
        self._idempotency_key = idempotency_key
        self._slots = _Slots(settings.max_in_flight_messages)
        self._deleter = _Deleter(sqs, queue_url, settings.delete_batch_window_seconds)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.stats = WorkerStats()

    @property
    def ctx(self) -> C:
        """What the handler gets with every message (for timers beside the worker)."""
        return self._ctx

    # -- lifecycle ---------------------------------------------------------

    def stop(self) -> None:
        """Stop pulling; in-flight messages get the drain grace to finish."""
        if not self._stopping.is_set():
            log.info("worker.stopping", worker=self.name, in_flight=self._slots.held)
            self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        log.info(
            "worker.started",
            worker=self.name,
            queue_url=self._queue_url,
            max_in_flight=self._settings.max_in_flight_messages,
        )
        self._deleter.start()
        poller = asyncio.create_task(self._poll(), name=f"{self.name}-poll")
        stop_wait = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({poller, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if poller in done:
                poller.result()  # the poller never ends on its own; surface why it did
        finally:
            stop_wait.cancel()
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await self._drain()
            await self._deleter.stop()
            log.info("worker.stopped", worker=self.name, **self.stats.__dict__)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        grace = self._settings.drain_grace_seconds
        log.info(
            "worker.draining", worker=self.name, in_flight=len(self._tasks), grace_seconds=grace
        )
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("worker.drain_cancelled", worker=self.name, cancelled=len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    # -- polling -----------------------------------------------------------

    async def _poll(self) -> None:
        errors = 0
        batch = min(SQS_MAX_BATCH, self._settings.max_in_flight_messages)
        while not self._stopping.is_set():
            free = await self._slots.wait_at_least(1)
            if free < batch and self._slots.held:
                # Work is finishing: a moment's wait fills a whole receive instead of
                # spending a request on one or two messages.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECEIVE_FILL_WAIT_SECONDS):
                        free = await self._slots.wait_at_least(batch)
                free = self._slots.free
            try:
                response = await self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=min(SQS_MAX_BATCH, free),
                    WaitTimeSeconds=self._settings.wait_time_seconds,
                    VisibilityTimeout=self._settings.visibility_timeout_seconds,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors += 1
                delay = min(30.0, 0.5 * 2 ** min(errors, 6))
                log.error(
                    "worker.receive_failed", worker=self.name, error=repr(exc), retry_in_s=delay
                )
                await asyncio.sleep(delay)
                continue
            errors = 0
            self._touch_heartbeat()
            messages = response.get("Messages", [])
            self._slots.take(len(messages))
            for message in messages:
                self.stats.received += 1
                task = asyncio.create_task(self._process(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self.stats.in_flight = self._slots.held
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._slots.held)

    def _touch_heartbeat(self) -> None:
        path = self._settings.heartbeat_file
        if path:
            with contextlib.suppress(OSError):
                Path(path).touch()

    # -- one message -------------------------------------------------------

    async def _process(self, message: dict[str, Any]) -> None:
        message_id = message.get("MessageId", "?")
        receipt = message["ReceiptHandle"]
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        structlog.contextvars.bind_contextvars(message_id=message_id, attempt=attempt)
        started = time.monotonic()
        key: str | None = None
        claimed = False
        outcome = "failed"
        delay: float = 0.0
        log.debug("message.received")  # with message.settled: work received, never settled
        heartbeat = asyncio.create_task(self._heartbeat(receipt, lambda: key if claimed else None))
        try:
            try:
                decoded = self._decode(message.get("Body", ""))
                if self._idempotency is not None and self._idempotency_key is not None:
                    key = self._idempotency_key(decoded)
                    if key is not None:  # None: this message needs no record
                        await self._idempotency.acquire(
                            key, self._settings.visibility_timeout_seconds, owner=message_id
                        )
                        claimed = True
                async with asyncio.timeout(self._settings.message_deadline_seconds):
                    await self._handle(decoded, self._ctx)
                outcome = "succeeded"
            except AlreadyCompletedError:
                outcome = "duplicate"
            except InProgressElsewhereError:
                # Another message with the same key holds the claim (a redelivery of
                # the owner's own message takes the claim over in acquire). That
                # message is the work's owner: if its worker fails it is retried, if
                # its worker dies it reappears. This copy adds nothing: acknowledge it.
                outcome = "duplicate"
                log.info("message.duplicate_in_progress", key=key)
            except RetryLaterError as exc:
                outcome, delay = "retry_later", exc.delay_seconds
                log.info("message.retry_later", delay_s=delay, reason=exc.reason)
            except TimeoutError:
                delay = self._backoff(attempt)
                log.error(
                    "message.deadline_exceeded",
                    deadline_s=self._settings.message_deadline_seconds,
                    retry_in_s=round(delay, 1),
                )
            except Exception as exc:
                delay = self._backoff(attempt)
                log.error(
                    "message.failed",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=round(delay, 1),
                    exc_info=not isinstance(exc, ValueError),
                )
        except asyncio.CancelledError:
            # Draining past the grace: hand the message back at once.
            heartbeat.cancel()
            await asyncio.shield(self._settle(receipt, message_id, "cancelled", 0, key, claimed))
            raise
        finally:
            heartbeat.cancel()
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        try:
            await asyncio.shield(self._settle(receipt, message_id, outcome, delay, key, claimed))
            log.info("message.settled", outcome=outcome, duration_ms=duration_ms)
        finally:
            structlog.contextvars.unbind_contextvars("message_id", "attempt", "job_id")

    async def _settle(
        self,
        receipt: str,
        message_id: str,
        outcome: str,
        delay: float,
        key: str | None,
        claimed: bool,
    ) -> None:
        try:
            if outcome in ("succeeded", "duplicate"):
                if outcome == "succeeded" and claimed and key is not None and self._idempotency:
                    await self._idempotency.complete(key)
                await self._deleter.delete(message_id, receipt)
                if outcome == "succeeded":
                    self.stats.succeeded += 1
                else:
                    self.stats.duplicates += 1
                return
            if outcome in ("failed", "cancelled"):
                self.stats.failed += 1
            if claimed and key is not None and self._idempotency is not None:
                await self._idempotency.release(key)
            await self._sqs.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=int(min(max(delay, 0), 43_200)),
            )
        except Exception as exc:
            # The message comes back when its visibility runs out; nothing is lost.
            log.error("message.settle_failed", outcome=outcome, error=repr(exc))
        finally:
            await self._slots.give()
            self.stats.in_flight = self._slots.held

    def _backoff(self, attempt: int) -> float:
        s = self._settings
        delay = min(s.retry_max_delay_seconds, s.retry_base_delay_seconds * 2.0 ** (attempt - 1))
        return delay * (0.75 + random.random() / 2)  # noqa: S311 - jitter

    async def _heartbeat(self, receipt: str, claimed_key: Callable[[], str | None]) -> None:
        """Keep the message invisible, and its idempotency claim alive, while it runs."""
        timeout = self._settings.visibility_timeout_seconds
        interval = max(0.2, timeout / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=receipt, VisibilityTimeout=timeout
                )
                # a worker whose every slot is busy does not poll, but it is alive and
                # working: the health check must not take it for hung
                self._touch_heartbeat()
                key = claimed_key()
                if key is not None and self._idempotency is not None:
                    await self._idempotency.extend(key, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("message.heartbeat_failed", error=repr(exc))


async def resolve_queue_url(sqs: Client, queue_name: str) -> str:
    try:
        response = await sqs.get_queue_url(QueueName=queue_name)
    except Exception as exc:
        raise RuntimeError(
            f"queue {queue_name!r} not found ({exc}); is the stack deployed and "
            "BRANDLENS_STACK_NAME / the SQS endpoint right?"
        ) from exc
    return str(response["QueueUrl"])
