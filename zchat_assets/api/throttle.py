"""Process-wide politeness: a requests-per-second cap and a shared pause after HTTP 429.

When the API answers 429, every worker waits (not only the one that was told), so a storm of 429s
slows the whole pool down instead of each thread hammering the account on its own schedule.
"""

from __future__ import annotations

import threading
import time
from functools import cache


class RateLimiter:
    """Spaces request starts at least `1 / rate` seconds apart across all threads."""

    def __init__(self, rate: float | None):
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


class PauseGate:
    """Holds every caller until a shared deadline set by the latest 429 has passed."""

    def __init__(self):
        self._until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                remaining = self._until - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(remaining)


@cache
def shared_limiter(base_url: str, rate: float | None) -> RateLimiter:
    """One limiter per API root and rate in this process, shared by every client (steps, sensor)."""
    return RateLimiter(rate)


@cache
def shared_gate(base_url: str) -> PauseGate:
    """One 429 pause per API root in this process: the account's limit is the account's, not a client's."""
    return PauseGate()
