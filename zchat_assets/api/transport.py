"""One HTTP exchange with the API, on a pooled keep-alive connection, with no retries and no secrets in what
it tells.

aiohttp on one event loop carries every request of a client: a day's messages are thousands of small
requests in flight together, and one loop with aiohttp's C parser spends less than half the CPU per
request of a thread per request over `requests`/urllib3 (benchmarks/bench.py, docs/performance.md). The
environment is read once, as `requests` reads it: proxies (`HTTPS_PROXY`, `NO_PROXY`) and the CA bundle
(`REQUESTS_CA_BUNDLE`, else certifi's).

A failure comes back as `Failure`, built outside the `except` block and cleaned of the token: aiohttp
puts the full URL, query string included, in some of its messages, and an exception's `__context__`
would carry them further.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
from dataclasses import dataclass

import aiohttp
import certifi
import requests
from yarl import URL

from .redact import redact


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # the rate-limit headers only (Retry-After, *RateLimit*): all the client reads
    content: bytes


@dataclass(frozen=True)
class Failure:
    """No answer: `reason` is safe to show; `setup_problem` says what is wrong when retrying cannot help."""

    reason: str
    timed_out: bool = False
    setup_problem: str | None = None


class Transport:
    """GETs under one API root over at most `size` connections. Open and use it on one event loop."""

    def __init__(self, root: str, size: int, connect_timeout: float, secret: str):
        self._root, self._size, self._secret = root, size, secret
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        environment = requests.Session().merge_environment_settings(self._root, {}, None, None, None)
        # The proxy is looked up once: aiohttp's trust_env would read the environment and ~/.netrc again in a
        # worker thread for every request, over half of the client's CPU on the messages fan-out.
        proxy = requests.utils.select_proxy(self._root, environment["proxies"])
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._size, ssl=_tls(environment["verify"])),
            headers={"Accept": "application/json"}, proxy=proxy, auto_decompress=True)
        # aiohttp sends a request again, unseen, when a kept-alive connection drops under it; every request
        # must pass the rate limiter and be counted, so the requester's policy decides instead (aiohttp's
        # own test client turns it off the same way).
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False

    async def get(self, url: str, read_timeout: float) -> Answer | Failure:
        """One GET of `url` (absolute, its query already encoded): the whole body, or why there is none."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout, sock_read=read_timeout)
        problem = None
        try:
            async with self._session.get(URL(url, encoded=True), timeout=timeout, allow_redirects=False) as response:
                content = await response.read()
                status = response.status
                headers = {k: v for k, v in response.headers.items()
                           if "ratelimit" in k.lower() or k.lower() == "retry-after"}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            problem = exc
        if problem is not None:
            return failure(problem, self._secret)
        return Answer(status, headers, content)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _tls(verify: bool | str) -> ssl.SSLContext | bool:
    """What https trusts: `REQUESTS_CA_BUNDLE` (a file or a folder), else certifi's bundle, as `requests` does."""
    if verify is False:
        return False
    bundle = certifi.where() if verify is True else verify
    return _trusting(bundle, os.stat(bundle).st_mtime_ns)


_BUILDING = threading.Lock()


def _trusting(bundle: str, changed: int) -> ssl.SSLContext:
    """Built once per bundle and version of it (16-30 ms each), not once per client: a fleet's step opens one
    per account, and a code server that runs for weeks still sees a bundle replaced in place. The datasets
    of a step open their clients at the same moment: the first builds it, the others wait for it."""
    with _BUILDING:
        return _built(bundle, changed)


@functools.lru_cache(maxsize=8)
def _built(bundle: str, changed: int) -> ssl.SSLContext:
    return ssl.create_default_context(**({"capath": bundle} if os.path.isdir(bundle) else {"cafile": bundle}))


def failure(exc: BaseException, secret: str) -> Failure:
    """What a failed exchange tells the client, without the token and without keeping `exc`."""
    return Failure(redact(f"{type(exc).__name__}: {exc}", secret), timed_out=_timed_out(exc),
                   setup_problem=setup_problem(exc))


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError))


def setup_problem(exc: BaseException) -> str | None:
    """What is wrong when a request failed for a reason of the set-up (TLS, name, refused port), not of
    the moment; None for failures worth retrying (resets, cut bodies, timeouts)."""
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)) or isinstance(getattr(exc, "os_error", None), ssl.SSLError):
        return ("The TLS handshake failed (https to a plain-http port, or a certificate this machine does not "
                "trust: set REQUESTS_CA_BUNDLE for a private CA)")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "The API's host name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
        return "The connection was refused (nothing listens on that host and port)"
    return None
