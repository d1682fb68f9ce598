"""Adaptive rate for DetectCustomLabels: additive increase, multiplicative decrease.

A token bucket whose rate starts at inference units x the rate one unit takes. Every
throttled call (ProvisionedThroughputExceeded, Throttling) multiplies the rate by
``decrease`` (0.85 by default); every
``rate`` successful calls (about a second's worth) add one call per second. A
semaphore bounds the calls in flight, whatever the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class AdaptiveLimiter:
    rate: float
    min_rate: float
    max_rate: float
    max_in_flight: int
    decrease: float = 0.85
    _tokens: float = 1.0
    _updated: float = field(default_factory=time.monotonic)
    _successes: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _slots: asyncio.Semaphore | None = None
    in_flight: int = 0
    peak_in_flight: int = 0
    throttled: int = 0
    calls: int = 0

    def __post_init__(self) -> None:
        self.rate = min(max(self.rate, self.min_rate), self.max_rate)
        self._slots = asyncio.Semaphore(self.max_in_flight)

    async def _token(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(
                    max(self.rate, 1.0), self._tokens + (now - self._updated) * self.rate
                )
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        assert self._slots is not None
        async with self._slots:
            await self._token()
            self.in_flight += 1
            self.calls += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    def on_success(self) -> None:
        self._successes += 1
        if self._successes >= max(self.rate, 1.0):
            self._successes = 0
            self.rate = min(self.max_rate, self.rate + 1.0)

    def on_throttle(self) -> None:
        self.throttled += 1
        self._successes = 0
        self.rate = max(self.min_rate, self.rate * self.decrease)

    def reset(self, rate: float) -> None:
        """A newly started model: begin again from its capacity."""
        self.rate = min(max(rate, self.min_rate), self.max_rate)
