"""Admission control: a token bucket per running model.

A model started with N inference units serves ``N x rate_per_inference_unit``
requests per second; the bucket holds at most ``burst_seconds`` worth of them
(never less than one request), so short bursts pass and sustained excess is
refused at once, as AWS refuses it, with ProvisionedThroughputExceededException.
Nothing waits in the server: the caller's retry/backoff is what gets exercised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate_per_second: float,
        capacity: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least one request")
        self.rate_per_second = rate_per_second
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    @classmethod
    def for_units(
        cls,
        inference_units: int,
        rate_per_unit_per_second: float,
        burst_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> TokenBucket:
        rate = inference_units * rate_per_unit_per_second
        return cls(rate, max(1.0, rate * burst_seconds), clock)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_second)

    def try_take(self, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if they are there now; never waits."""
        with self._lock:
            self._refill()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens
