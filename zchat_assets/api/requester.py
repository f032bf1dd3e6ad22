"""One API request carried through to an answer: politeness, the exchange, the policy's verdict, the wait.

Each attempt holds an in-flight slot, then passes the account's 429 pause and the rate limiter, then
goes out (`transport`); the answer is judged by `policy.classify` before the slot is given up (a 429
counts against the in-flight limit while it still holds its place), and a retry waits as `RetryPolicy`
says, without a slot. Everything that reads a request's story (why it was retried, how long it waited)
is here or in `policy`.

Requests run on the requester's own event loop, in a thread of its own started with the first request:
`fetch` is the coroutine (the fan-out runs many on the loop), `get` waits for one from any thread. The
loop is uvloop's where it is installed (dagster-webserver brings it, but for Windows, Cygwin and PyPy): the same
requests for 6-7% less of the process's CPU than asyncio's own loop (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlencode

try:
    from uvloop import new_event_loop
except ImportError:  # where uvloop is not built: Windows, Cygwin, PyPy
    from asyncio import new_event_loop

from .errors import TOKEN_PAGE, ApiUnavailableError, ConfigError
from .policy import BASE_URL_HINT, Latency, Retry, RetryPolicy, classify, request_label
from .redact import redact
from .settings import ClientSettings
from .throttle import AdaptiveLimit, RateLimiter, shared_gate
from .transport import Failure, Transport
from .vendor import API_PREFIX


@dataclass
class RequestStats:
    """Counters of one client, safe to update from the fan-out threads."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    pages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "retries": self.retries,
                    "throttled": self.throttled, "pages": self.pages}


class Requester:
    """GETs of one account's API with retries; thread-safe."""

    def __init__(self, token: str, settings: ClientSettings, log: logging.Logger, rate_share: float,
                 token_variable: str):
        self._token = token
        self._token_hint = f"check {token_variable}; tokens are generated in {TOKEN_PAGE}"
        self._root = f"{settings.base_url}{API_PREFIX}/"
        self._transport = Transport(self._root, settings.concurrency, settings.connect_timeout, token)
        self._policy = RetryPolicy(settings.max_retries, settings.max_throttle_waits, settings.backoff_seconds,
                                   settings.backoff_max_seconds, settings.min_retry_after)
        self._latency = Latency(settings.read_timeout)
        self._stall_seconds = settings.stall_seconds
        self._last_answer = time.monotonic()
        self._log = log
        self.in_flight = AdaptiveLimit(settings.concurrency)
        # The 429 pause is shared by every client of the same token in this process, and by no other.
        self.gate = shared_gate((settings.base_url, hashlib.sha256(token.encode()).hexdigest()))
        self._budget = settings.rate_limit
        self.rate_limit = settings.rate_limit * rate_share if settings.rate_limit else None
        self.limiter = RateLimiter(self.rate_limit)
        self.lowest_rate_limit = self.rate_limit  # since the caller last reset it (a day's figures)
        self.stats = RequestStats()
        self.rate_headers: dict[str, str] = {}  # the latest rate-limit headers the API sent, if any
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the requests run on, started on first use."""
        with self._starting:
            if self._loop is None:
                loop = new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="zchat-api-loop", daemon=True)
                thread.start()
                # A client dropped without close() still stops its loop and closes its connections.
                self._closer = weakref.finalize(self, _stop, loop, thread, self._transport)
                self._loop = loop
            return self._loop

    def run(self, work: Coroutine):
        """Runs `work` on the loop and waits for its result, from any thread but the loop's own."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def set_rate_share(self, share: float) -> None:
        """Holds `share` of the account's `rate_limit` from the next request on."""
        if self._budget:
            self.rate_limit = self._budget * share
            self.limiter.set_rate(self.rate_limit)
            self.lowest_rate_limit = min(self.lowest_rate_limit or self.rate_limit, self.rate_limit)

    def latencies(self) -> list[float]:
        return self._latency.recent()

    def get(self, path: str, params: dict[str, str]) -> dict:
        """The decoded body of a successful answer, after as many retries as the policy allows."""
        return self.run(self.fetch(path, params))

    async def fetch(self, path: str, params: dict[str, str]) -> dict:
        """`get`, as a coroutine of the requester's loop."""
        return (await self.fetch_sent(path, params))[0]

    async def fetch_sent(self, path: str, params: dict[str, str]) -> tuple[dict, bytes]:
        """`fetch`, and the body as the API sent it."""
        failures = throttles = timeouts = 0
        while True:
            outcome = await self._attempt(path, params, self._latency.timeout(timeouts))
            if not isinstance(outcome, Retry):
                await self.in_flight.succeeded()
                return outcome
            label = request_label(path, params)
            if outcome.timed_out:
                timeouts += 1
                silent = time.monotonic() - self._last_answer
                if silent > self._stall_seconds:
                    raise ApiUnavailableError(
                        f"The API has answered nothing for {silent:.0f} s ({label} timed out): it looks hung; "
                        "try again later.")
            if outcome.throttled:
                throttles += 1
                self.stats.add(throttled=1)
            else:
                failures += 1
            if self._policy.gives_up(failures, throttles):
                raise ApiUnavailableError(
                    f"{label} still failed after {failures + throttles} attempts (last: {outcome.reason}); "
                    "the API may be down or overloaded: try again later, or lower the concurrency.")
            delay = self._policy.delay(outcome, failures)
            self.stats.add(retries=1)
            self._log.warning(f"{label}: {outcome.reason}; retrying in {delay:.1f}s")
            if outcome.limit_met:
                self.gate.pause(delay)  # every request of the account waits
            else:
                await asyncio.sleep(delay)

    async def _attempt(self, path: str, params: dict[str, str], read_timeout: float) -> tuple[dict, bytes] | Retry:
        url = f"{self._root}{quote(path)}?{urlencode({**params, 'token': self._token})}"
        async with self.in_flight:
            # Paced only once it holds an in-flight slot: waiting for a slot after the pacing would let
            # the waiters go together, over the rate limit.
            await self.gate.wait()
            await self.limiter.acquire()
            self.stats.add(requests=1)
            started = time.monotonic()
            answer = await self._transport.get(url, read_timeout)
            if isinstance(answer, Failure):
                if answer.setup_problem:  # retrying cannot fix a wrong address, port, certificate or proxy login
                    raise ConfigError(f"{answer.setup_problem} calling {self._clean(url)}: "
                                      f"{answer.hint or BASE_URL_HINT}.")
                return Retry(answer.reason, timed_out=answer.timed_out)
            self._last_answer = time.monotonic()
            self._latency.record(self._last_answer - started)
            if answer.headers:
                self.rate_headers.update(answer.headers)
            outcome = classify(answer.status, answer.headers, answer.content, path, params, url, self._clean,
                               self._token_hint)
            if isinstance(outcome, Retry) and outcome.throttled:
                # Counted while it still holds its slot: once given up, the slot is already the next request's.
                return replace(outcome, limit_met=self.in_flight.throttled())
        return outcome if isinstance(outcome, Retry) else (outcome, answer.content)

    def _clean(self, text: str) -> str:
        return redact(text, self._token)

    def close(self) -> None:
        with self._starting:
            if self._loop is not None:
                self._closer()
                self._loop = None  # a request after this starts another loop


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, transport: Transport) -> None:
    if thread is threading.current_thread():  # dropped by the loop's own thread: it stops after this callback
        loop.call_soon(loop.stop)
        return
    asyncio.run_coroutine_threadsafe(transport.close(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
