"""One HTTP exchange with the API, on a pooled keep-alive connection, with no retries and no secrets in what
it tells.

The connections (`connections.py`) carry every request of a client on one event loop: a day's messages
are thousands of small requests in flight together. The environment is read once per client, as
`requests` reads it: proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) and the CA bundle (`REQUESTS_CA_BUNDLE`, else
certifi's).

A failure comes back as `Failure`, built outside the `except` block and cleaned of the token: an
exception's text or `__context__` must never carry a URL further.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import requests

from .connections import ConnectionPool, ProtocolError, ProxyRefused
from .errors import ConfigError
from .redact import redact


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # the rate-limit headers only (Retry-After, *RateLimit*): all the client reads
    content: bytes


@dataclass(frozen=True)
class Failure:
    """No answer: `reason` is safe to show; `setup_problem` says what is wrong when retrying cannot help, and
    `hint` what to look at, when that is not the base URL."""

    reason: str
    timed_out: bool = False
    setup_problem: str | None = None
    hint: str | None = None


class Transport:
    """GETs under one API root, keeping at most `idle` connections alive between them. The environment
    is read when it is made; use it on one event loop."""

    def __init__(self, root: str, idle: int, connect_timeout: float, secret: str):
        self._secret = secret
        environment = requests.Session().merge_environment_settings(root, {}, None, None, None)
        https = urlsplit(root).scheme == "https"
        self._pool = ConnectionPool(root, connect_timeout=connect_timeout, idle=idle,
                                    proxy=_proxy(requests.utils.select_proxy(root, environment["proxies"]), https),
                                    tls=_tls(environment["verify"]) if https else None)

    async def get(self, url: str, read_timeout: float) -> Answer | Failure:
        """One GET of `url` (absolute, its query already encoded): the whole body, or why there is none."""
        problem = None
        try:
            status, headers, content = await self._pool.get(url, read_timeout)
        except (OSError, asyncio.TimeoutError, ProtocolError) as exc:
            problem = exc
        if problem is not None:
            return failure(problem, self._secret)
        return Answer(status, headers, content)

    async def close(self) -> None:
        self._pool.close()


def _proxy(url: str | None, https: bool) -> str | None:
    """The proxy the environment names for the API, as an http:// URL (`host:port` alone means http, as for
    `requests`); one the client cannot speak to (https://, socks) is a clear error when the client is made."""
    if not url:
        return None
    url = url if "://" in url else f"http://{url}"
    scheme = urlsplit(url).scheme.lower()
    if scheme != "http":
        variable = "HTTPS_PROXY" if https else "HTTP_PROXY"
        raise ConfigError(f"The proxy the environment names for the API must be an http:// URL (it names a "
                          f"{scheme}:// one): set {variable} to http://host:port.")
    return url


def _tls(verify: bool | str) -> ssl.SSLContext:
    """What https trusts: `REQUESTS_CA_BUNDLE` (a file or a folder), else certifi's bundle, as `requests` does."""
    bundle = verify if isinstance(verify, str) else certifi.where()
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
    return Failure(redact(f"{type(exc).__name__}: {exc}", secret), timed_out=isinstance(exc, asyncio.TimeoutError),
                   setup_problem=setup_problem(exc), hint=PROXY_HINT if isinstance(exc, ProxyRefused) else None)


PROXY_HINT = ("check the login in HTTPS_PROXY (http://user:password@host:port) and that the proxy lets the API's "
               "host through")


def setup_problem(exc: BaseException) -> str | None:
    """What is wrong when a request failed for a reason of the set-up (TLS, name, refused port), not of
    the moment; None for failures worth retrying (resets, cut bodies, timeouts)."""
    if isinstance(exc, ssl.SSLError):
        return ("The TLS handshake failed (https to a plain-http port, or a certificate this machine does not "
                "trust: set REQUESTS_CA_BUNDLE for a private CA)")
    if isinstance(exc, socket.gaierror):
        return "The API's host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "The connection was refused (nothing listens on that host and port)"
    if isinstance(exc, ProxyRefused) and exc.status in (403, 407):
        told = str(exc)  # the proxy's refusal, as ProxyRefused words it
        return told[:1].upper() + told[1:]
    return None
