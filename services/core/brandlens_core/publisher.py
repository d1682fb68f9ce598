"""EventBridge publisher: batches of at most 10 entries, failed entries retried."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from typing import Any

from brandlens_core.aws import Client
from brandlens_core.events import Event
from brandlens_core.logging import get_logger

MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024

log = get_logger(__name__)


class PublishError(RuntimeError):
    """Some events could not be published after every retry."""


class EventPublisher:
    def __init__(
        self,
        events_client: Client,
        bus_name: str,
        source: str,
        *,
        max_attempts: int = 6,
        base_delay_seconds: float = 0.1,
    ) -> None:
        self._client = events_client
        self._bus = bus_name
        self._source = source
        self._max_attempts = max_attempts
        self._base_delay = base_delay_seconds

    def entry(self, event: Event) -> dict[str, Any]:
        detail = event.model_dump_json()
        return {
            "Source": self._source,
            "DetailType": event.detail_type(),
            "Detail": detail,
            "EventBusName": self._bus,
            "Time": event.occurred_at,
        }

    async def publish(self, *events: Event) -> None:
        await self.publish_all(events)

    async def publish_all(self, events: Sequence[Event]) -> None:
        entries = [self.entry(e) for e in events]
        for batch in _batches(entries):
            await self._put_with_retry(batch)
        for event in events:
            log.info(
                "event.published",
                detail_type=event.detail_type(),
                event_id=event.event_id,
                bus=self._bus,
            )

    async def _put_with_retry(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        last_errors: list[str] = []
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._client.put_events(Entries=pending)
            except Exception as exc:  # network or throttling after botocore's own retries
                last_errors = [f"{type(exc).__name__}: {exc}"]
                failed = pending
            else:
                failed = []
                last_errors = []
                for entry, result in zip(pending, response.get("Entries", []), strict=False):
                    if result.get("ErrorCode"):
                        failed.append(entry)
                        last_errors.append(f"{result['ErrorCode']}: {result.get('ErrorMessage')}")
            if not failed:
                return
            pending = failed
            if attempt < self._max_attempts:
                delay = self._base_delay * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
        raise PublishError(
            f"{len(pending)} event(s) not published to bus {self._bus!r} after "
            f"{self._max_attempts} attempts: {'; '.join(last_errors[:3])}"
        )


def _entry_size(entry: dict[str, Any]) -> int:
    # EventBridge counts Source, DetailType, Detail, Resources and the time (14 bytes).
    return (
        len(entry["Source"].encode())
        + len(entry["DetailType"].encode())
        + len(entry["Detail"].encode())
        + len(json.dumps(entry.get("Resources", [])).encode())
        + 14
    )


def _batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = _entry_size(entry)
        if entry_size > MAX_REQUEST_BYTES:
            raise PublishError(
                f"{entry['DetailType']} event is {entry_size} bytes, above EventBridge's "
                f"{MAX_REQUEST_BYTES}-byte limit; put large payloads in S3 and send the key"
            )
        if current and (
            len(current) == MAX_ENTRIES_PER_CALL or size + entry_size > MAX_REQUEST_BYTES
        ):
            batches.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        batches.append(current)
    return batches
