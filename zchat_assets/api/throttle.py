"""Politeness: a requests-per-second cap, and a pause shared by the process after frequent HTTP 429s.

When the API answers 429 often, every worker waits (not only the one that was told), so a storm of
429s slows the whole pool down instead of each thread hammering the account on its own schedule; an
isolated 429 makes only its own request wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from functools import cache


class RateLimiter:
    """Lets request starts through at least `1 / rate` seconds apart across all threads.

    Each start is spaced from the previous actual start, not from a planned slot: a thread that wakes
    late (the process was busy) does not let the ones behind it catch up in a burst.
    """

    def __init__(self, rate: float | None):
        self._interval = 1.0 / rate if rate else 0.0
        self._last = float("-inf")
        self._lock = threading.Lock()

    def set_rate(self, rate: float | None) -> None:
        """A new rate for the starts to come (the next one is spaced from the last at the new interval)."""
        self._interval = 1.0 / rate if rate else 0.0

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:  # held while waiting: the next thread's turn starts when this one has gone
            wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()


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
def shared_gate(account: tuple[str, str]) -> PauseGate:
    """One 429 pause per account in this process: the account's limit is the account's, not a client's,
    and one account's 429s never pause another's requests."""
    return PauseGate()


class AdaptiveLimit:
    """At most `limit` requests in flight, where `limit` starts at the configured concurrency, drops to
    what the API accepted when it answers 429 often, and creeps back up by one after `probe_every` x
    `limit` good answers in a row.

    A concurrency limit on the server side then costs one 429 now and then instead of a storm per wave
    of requests; `ceiling` is the configured concurrency, which is never exceeded. An isolated 429 (a
    few in the last WINDOW answers) changes nothing: only the request that got it waits.
    """

    WINDOW = 100
    FREQUENT = 0.05  # more 429s than this share of the recent answers means a limit, not a hiccup

    def __init__(self, ceiling: int, probe_every: int = 50):
        self.ceiling = self.limit = ceiling
        self.in_flight = 0
        self._probe_every = probe_every
        self._good = 0
        self._recent: deque[bool] = deque(maxlen=self.WINDOW)  # True for a 429
        self._ready = threading.Condition()

    def __enter__(self) -> AdaptiveLimit:
        with self._ready:
            self._ready.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._ready:
            self.in_flight -= 1
            self._ready.notify()

    def throttled(self) -> bool:
        """The API refused a request with 429. When that happens often, accept no more than what was in
        flight without it and return True (every worker should pause); an isolated one returns False."""
        with self._ready:
            self._recent.append(True)
            refused = sum(self._recent)
            if refused < 2 or refused <= self.FREQUENT * max(len(self._recent), self.WINDOW // 2):
                return False
            self.limit = max(1, min(self.limit, self.in_flight))
            self._good = 0
            return True

    def succeeded(self) -> None:
        with self._ready:
            self._recent.append(False)
            self._good += 1
            if self.limit < self.ceiling and self._good >= self._probe_every * self.limit:
                self.limit += 1
                self._good = 0
                self._ready.notify()
