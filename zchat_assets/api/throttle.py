"""Process-wide politeness: a requests-per-second cap and a shared pause after HTTP 429.

When the API answers 429, every worker waits (not only the one that was told), so a storm of 429s
slows the whole pool down instead of each thread hammering the account on its own schedule.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Spaces request starts at least `1 / rate` seconds apart across all threads."""

    def __init__(self, rate: float | None, clock=time.monotonic, sleep=time.sleep):
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


class PauseGate:
    """Holds every caller until a shared deadline set by the latest 429 has passed."""

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self._until = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                remaining = self._until - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)
