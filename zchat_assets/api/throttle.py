"""Politeness: a requests-per-second cap, a pause shared by the process after frequent HTTP 429s, and a
concurrency that shrinks to what the API accepts.

When the API answers 429 often, every request waits (not only the one that was told), so a storm of
429s slows the whole account down instead of each request hammering it on its own schedule; an
isolated 429 makes only its own request wait. The rate limiter and the in-flight limit live on one
client's event loop; the pause is shared by the clients of one token, on any loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from contextlib import suppress
from functools import cache


class LoopBound:
    """An asyncio primitive made on the loop that first uses it, and made again on another loop (a client
    closed and used again runs a new one): asyncio's locks belong to one loop."""

    def __init__(self, make):
        self._make = make
        self._made = None
        self._loop = None

    def get(self):
        """The primitive of the running loop, made now if this loop has none."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._made, self._loop = self._make(), loop
        return self._made

    def made(self):
        """The running loop's primitive if one was made, else None (nobody waits on it)."""
        return self._made if self._loop is asyncio.get_running_loop() else None


class RateLimiter:
    """Lets request starts through at least `1 / rate` seconds apart.

    Each start is spaced from the previous actual start, not from a planned slot: a request that wakes
    late (the process was busy) does not let the ones behind it catch up in a burst.
    """

    def __init__(self, rate: float | None):
        self._interval = 1.0 / rate if rate else 0.0
        self._last = float("-inf")
        self._lock = LoopBound(asyncio.Lock)

    def set_rate(self, rate: float | None) -> None:
        """A new rate for the starts to come (the next one is spaced from the last at the new interval)."""
        self._interval = 1.0 / rate if rate else 0.0

    async def acquire(self) -> None:
        if not self._interval:
            return
        async with self._lock.get():  # held while waiting: the next request's turn starts when this one has gone
            wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last = time.monotonic()


class PauseGate:
    """Holds every request until a shared deadline set by the latest frequent 429 has passed."""

    def __init__(self):
        self._until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self) -> None:
        while (remaining := self._until - time.monotonic()) > 0:
            await asyncio.sleep(remaining)


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

    Requests that find every slot taken get theirs in the order they came: a slot freed goes to the first
    of them, never to a request that comes after it (one retried after its wait would otherwise lose its
    turn to the fan-out's fresh requests, again and again).
    """

    WINDOW = 100
    FREQUENT = 0.05  # more 429s than this share of the recent answers means a limit, not a hiccup

    def __init__(self, ceiling: int, probe_every: int = 50):
        self.ceiling = self.limit = ceiling
        self.in_flight = 0
        self._probe_every = probe_every
        self._good = 0
        self._recent: deque[bool] = deque(maxlen=self.WINDOW)  # True for a 429
        self._queue = LoopBound(deque)  # the turns of the requests waiting for a slot, first come first

    async def __aenter__(self) -> AdaptiveLimit:
        queue = self._queue.get()
        if self.in_flight < self.limit and not queue:
            self.in_flight += 1
            return self
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn  # the slot is counted as this request's when its turn comes (`_hand_over`)
        except asyncio.CancelledError:
            if turn.cancelled():
                with suppress(ValueError):  # a hand-over may have passed it over already
                    queue.remove(turn)
            else:  # cancelled as its turn came: the slot goes to the next
                self._release()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self._release()

    def _release(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Gives the free slots to the first requests waiting."""
        queue = self._queue.made()
        while queue and self.in_flight < self.limit:
            turn = queue.popleft()
            if not turn.cancelled():  # one cancelled but not yet out of the queue is passed over
                turn.set_result(None)
                self.in_flight += 1

    def throttled(self) -> bool:
        """The API refused a request with 429, which still holds its slot. When that happens often, accept no
        more than what is in flight without it and return True (every request should pause); an isolated one
        returns False."""
        self._recent.append(True)
        refused = sum(self._recent)
        if refused < 2 or refused <= self.FREQUENT * max(len(self._recent), self.WINDOW // 2):
            return False
        self.limit = max(1, min(self.limit, self.in_flight - 1))
        self._good = 0
        return True

    async def succeeded(self) -> None:
        self._recent.append(False)
        self._good += 1
        if self.limit < self.ceiling and self._good >= self._probe_every * self.limit:
            self.limit += 1
            self._good = 0
            self._hand_over()
