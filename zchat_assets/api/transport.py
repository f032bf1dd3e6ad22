"""One HTTP exchange with the API, on a pooled connection, with no retries and no secrets in what it raises.

The connection pool is resolved once, by a `requests` adapter, from the environment as `requests` reads it
(proxies, `REQUESTS_CA_BUNDLE`): each request then goes straight to urllib3's pool. `Session.get` would
re-read the environment, re-parse the URL, check the CA bundle's folder on disk and build a `Response`
on every call, which cost more CPU than the exchange itself on the messages fan-out.

A failure comes back as `Failure`, built outside the `except` block and cleaned of the token: urllib3
puts the full URL, query string included, in some of its messages, and an exception's `__context__`
would carry them further.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3 import Timeout
from urllib3.exceptions import HTTPError, NameResolutionError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

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
    """GETs of one API root over a pool of `size` keep-alive connections; thread-safe."""

    def __init__(self, root: str, size: int, connect_timeout: float, secret: str):
        self._secret = secret
        self._connect_timeout = connect_timeout
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        settings = self._session.merge_environment_settings(root, {}, False, None, None)
        template = requests.Request("GET", root).prepare()
        self._pool = adapter.get_connection_with_tls_context(template, settings["verify"], settings["proxies"],
                                                             settings["cert"])
        # Through a proxy, a plain-http request names the whole URL; otherwise (and in a CONNECT tunnel) its path.
        proxied = bool(requests.utils.select_proxy(root, settings["proxies"]))
        self._prefix = "" if proxied and root.startswith("http://") else self._origin(root)
        self._headers = {"Accept": "application/json", "User-Agent": requests.utils.default_user_agent(),
                         "Accept-Encoding": "gzip, deflate"}

    @staticmethod
    def _origin(root: str) -> str:
        scheme_end = root.index("//") + 2
        path_start = root.find("/", scheme_end)
        return root if path_start < 0 else root[:path_start]

    def get(self, url: str, read_timeout: float) -> Answer | Failure:
        """One GET of `url` (absolute): the whole body, or why there is none."""
        target = url[len(self._prefix):]
        problem = None
        try:
            response = self._pool.urlopen("GET", target, headers=self._headers, retries=False, redirect=False,
                                          assert_same_host=False, preload_content=True, decode_content=True,
                                          timeout=Timeout(connect=self._connect_timeout, read=read_timeout))
        except (HTTPError, OSError) as exc:
            problem = exc
        if problem is not None:
            return failure(problem, self._secret)
        headers = {k: v for k, v in response.headers.items() if "ratelimit" in k.lower() or k.lower() == "retry-after"}
        return Answer(response.status, headers, response.data)

    def close(self) -> None:
        self._session.close()


def failure(exc: BaseException, secret: str) -> Failure:
    """What a failed exchange tells the client, without the token and without keeping `exc`."""
    return Failure(redact(f"{type(exc).__name__}: {exc}", secret), timed_out=_timed_out(exc),
                   setup_problem=setup_problem(exc))


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, Urllib3Timeout) and not isinstance(exc, NewConnectionError)


def setup_problem(exc: BaseException) -> str | None:
    """What is wrong when a request failed for a reason of the set-up (TLS, name, refused port), not of
    the moment; None for failures worth retrying (resets, cut bodies, timeouts)."""
    if isinstance(exc, SSLError):
        return ("The TLS handshake failed (https to a plain-http port, or a certificate this machine does not "
                "trust: set REQUESTS_CA_BUNDLE for a private CA)")
    if isinstance(exc, NameResolutionError):
        return "The API's host name does not resolve"
    if isinstance(exc, NewConnectionError) and "refused" in str(exc).lower():
        return "The connection was refused (nothing listens on that host and port)"
    return None
