"""The Zenvia Chat Data API client: pooled HTTP, error classification, retries, paging, fan-out.

No Dagster here: the client works the same from a notebook. It never lets the token out: every
message it builds or forwards goes through `redact`, and exceptions from `requests` are replaced,
not chained, because their text (and their `__context__`) carries the full URL.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .errors import TOKEN_PAGE, ApiUnavailableError, AuthError, BadRequestError, ConfigError, GoneError, missing_token
from .redact import install_log_redaction, redact
from .settings import DEFAULT_TOKEN_ENV, ClientSettings
from .throttle import AdaptiveLimit, RateLimiter, shared_gate
from .vendor import API_PREFIX, REPORT_DATA_TYPES



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


@dataclass(frozen=True)
class _Retry:
    """A failed attempt worth retrying; `wait` is the server's Retry-After when it gave one."""

    reason: str
    wait: float | None = None
    throttled: bool = False
    timed_out: bool = False


class Latency:
    """Recent answer times, for early retries: a request is given 10 x the recent slowest answer (at
    least MIN seconds; FIRST before five answers came), doubled at each retry, never more than the read
    timeout. A few answers that never come then cost seconds, not a minute each; an API that has become
    slow for good gets its longer timeouts back from the answers it still gives."""

    MIN = 5.0
    FIRST = 10.0  # before any answer came: long enough for a large page, short enough not to stall a day
    FACTOR = 10
    SAMPLES = 200

    def __init__(self, ceiling: float):
        self._ceiling = ceiling
        self._recent: deque[float] = deque(maxlen=self.SAMPLES)
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)

    def recent(self) -> list[float]:
        with self._lock:
            return list(self._recent)

    def timeout(self, timeouts_so_far: int) -> float:
        with self._lock:
            if len(self._recent) < 5:  # not enough answers seen yet to know what slow means
                return min(self._ceiling, self.FIRST * 2 ** timeouts_so_far)
            slowest = sorted(self._recent)[int(0.95 * len(self._recent))]
        return min(self._ceiling, max(self.MIN, self.FACTOR * slowest) * 2 ** timeouts_so_far)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class ZchatClient:
    """One account's view of the API. Thread-safe; close it (or use `with`) to release the pool."""

    def __init__(self, token: str, settings: ClientSettings | None = None, logger: logging.Logger | None = None,
                 rate_share: float = 1.0, token_variable: str = DEFAULT_TOKEN_ENV):
        """`rate_share` is the part of the account's `rate_limit` this client may use (steps that call the
        API at the same time each hold a part: see `set_rate_share`); `token_variable` names, in errors,
        where the token comes from."""
        settings = settings or ClientSettings()
        self._token_hint = f"check {token_variable}; tokens are generated in {TOKEN_PAGE}"
        if not token or not token.strip():
            raise ConfigError(missing_token(token_variable))
        self.base_url = settings.base_url
        self._token = token.strip()
        self._connect_timeout = settings.connect_timeout
        self._latency = Latency(settings.read_timeout)
        self._stall_seconds = settings.stall_seconds
        self._last_answer = time.monotonic()
        self._max_retries = settings.max_retries
        self._backoff = (settings.backoff_seconds, settings.backoff_max_seconds)
        self._min_retry_after = settings.min_retry_after
        self._max_throttle_waits = settings.max_throttle_waits
        self.concurrency = settings.concurrency
        self.page_size = settings.page_size
        self._log = logger or logging.getLogger("zchat_assets.api")
        self._in_flight = AdaptiveLimit(settings.concurrency)
        # The 429 pause is shared by every client of the same token in this process, and by no other.
        account = (self.base_url, hashlib.sha256(self._token.encode()).hexdigest())
        self._budget = settings.rate_limit
        self.rate_limit = settings.rate_limit * rate_share if settings.rate_limit else None
        self._limiter = RateLimiter(self.rate_limit)
        self.lowest_rate_limit = self.rate_limit  # since the caller last reset it (a day's figures)
        self._gate = shared_gate(account)
        # Names the token's budget where clients on other machines can find it, without being the token.
        self.budget_key = hashlib.sha256(f"zchat-budget|{self.base_url}|{self._token}".encode()).hexdigest()[:20]
        self.stats = RequestStats()
        self.rate_headers: dict[str, str] = {}  # the latest rate-limit headers the API sent, if any
        self._session = requests.Session()
        self._adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.concurrency, max_retries=0)
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)
        self._session.headers["Accept"] = "application/json"
        # Requests are sent through the session's adapter with the environment's proxy and CA settings
        # read once: `Session.get` re-reads the environment and re-parses the URL on every call, which
        # was half of the client's CPU per request on the messages fan-out.
        self._root = f"{self.base_url}{API_PREFIX}/"
        self._send_settings = self._session.merge_environment_settings(self._root, {}, False, None, None)
        self._template = requests.Request("GET", self._root, headers=dict(self._session.headers)).prepare()
        install_log_redaction()

    def __repr__(self) -> str:
        return f"ZchatClient(base_url={self.base_url!r}, concurrency={self.concurrency})"

    def set_rate_share(self, share: float) -> None:
        """Holds `share` of the account's `rate_limit` from the next request on (the steps that call the API
        at once change while this one runs)."""
        if self._budget:
            self.rate_limit = self._budget * share
            self._limiter.set_rate(self.rate_limit)
            self.lowest_rate_limit = min(self.lowest_rate_limit or self.rate_limit, self.rate_limit)

    def __enter__(self) -> ZchatClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- endpoints -------------------------------------------------------------------------------

    def report(self, data_type: str, start: str, end: str, tz_offset: str, **filters: str) -> list[dict]:
        """Lines of the Digital Channels report, `Total` included, for one grouping."""
        if data_type not in REPORT_DATA_TYPES:
            raise ConfigError(f"data_type must be one of {', '.join(REPORT_DATA_TYPES)}, not {data_type!r}.")
        params = {"data_type": data_type, "from": start, "to": end, "timezone": tz_offset, **filters}
        body = self.get("reports", params)
        self.stats.add(pages=1)
        return _data_list(body, "reports")

    def history_pages(self, start: str, end: str, tz_offset: str, *, expanded: bool = False, **filters: str) -> Iterator[list[dict]]:
        """Pages of the (expanded) service history, each record once even if pages shift underneath."""
        path = "history/expanded" if expanded else "history"
        params = {"from": start, "to": end, "timezone": tz_offset, **filters}
        return self.pages(path, params)

    def ongoing_pages(self, **filters: str) -> Iterator[list[dict]]:
        """Pages of the interactions ongoing right now."""
        return self.pages("ongoing", dict(filters))

    def messages(self, protocol_id: str) -> list[dict]:
        """Every message of one interaction."""
        path = f"history/{protocol_id}/messages"
        return _data_list(self.get(path, {}), path)

    def messages_many(self, protocol_ids: Iterable[str]) -> Iterator[tuple[str, list[dict] | GoneError]]:
        """(protocol, messages) pairs in completion order, fetched by `concurrency` worker threads; a
        protocol the API says is not there comes with its `GoneError` instead, and the others go on.

        Workers take protocols from the shared iterator and hand results back through a bounded
        queue, so memory stays proportional to the concurrency, not to the day, and there is no
        per-request future to manage. The first other failure stops the workers and propagates.
        """
        ids = iter(protocol_ids)
        take = threading.Lock()
        results: queue.Queue = queue.Queue(maxsize=2 * self.concurrency)
        stop = threading.Event()
        finished = object()

        def work() -> None:
            try:
                while not stop.is_set():
                    with take:
                        protocol_id = next(ids, None)
                    if protocol_id is None:
                        return
                    try:
                        results.put((protocol_id, self.messages(protocol_id)))
                    except GoneError as gone:
                        results.put((protocol_id, gone))
            except Exception as exc:  # handed to the consumer, which raises it
                results.put(exc)
            finally:
                results.put(finished)

        workers = len(protocol_ids) if isinstance(protocol_ids, Sized) else self.concurrency
        running = min(self.concurrency, workers)
        for n in range(running):
            threading.Thread(target=work, name=f"zchat-messages-{n}", daemon=True).start()
        try:
            while running:
                item = results.get()
                if item is finished:
                    running -= 1
                elif isinstance(item, Exception):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            while running:  # let every worker return rather than block on a full queue
                if results.get() is finished:
                    running -= 1

    def pages(self, path: str, params: dict[str, str]) -> Iterator[list[dict]]:
        """Walks `page=1,2,…` until a page comes back empty (or brings nothing new: an API that ignores
        `page`); drops records already seen by `id` (records without one are all kept).

        A page shorter than the limit does not end the walk: an API that caps `limit` below what was asked
        for (the document says up to 10,000) would otherwise be read in part without a word. That costs
        one more request per walk, the empty page.
        """
        seen: set[str] = set()
        page, short, warned, previous = 1, None, False, None
        while True:
            try:
                body = self.get(path, {**params, "limit": str(self.page_size), "page": str(page)})
            except (ConfigError, BadRequestError):
                if page == 1:
                    raise
                return  # an API that refuses a page past the end (404, 400) has ended the walk
            records = _data_list(body, path)
            self.stats.add(pages=1)
            fresh = []
            for record in records:
                key = record.get("id")
                if key is None:  # kept: the day's uniqueness check flags records without an id
                    fresh.append(record)
                elif str(key) not in seen:
                    seen.add(str(key))
                    fresh.append(record)
            if not fresh or records == previous:  # the same page again: an API that ignores `page`
                return
            previous = records
            if short and not warned:
                self._log.warning(f"{_label(path, {})}: {short} records came for limit={self.page_size}, and more "
                                  "after them: the API caps the page size; every page is read until an empty one.")
                warned = True
            short = len(records) if len(records) < self.page_size else None
            yield fresh
            page += 1

    # -- one request ----------------------------------------------------------------------------

    def latencies(self) -> list[float]:
        """Seconds the recent answers took."""
        return self._latency.recent()

    @property
    def in_flight(self) -> int:
        """Requests on the wire right now."""
        return self._in_flight.in_flight

    def get(self, path: str, params: dict[str, str]) -> dict:
        """GET one endpoint with retries; returns the decoded body of a successful answer."""
        failures = throttles = timeouts = 0
        while True:
            outcome = self._attempt(path, params, self._latency.timeout(timeouts))
            if isinstance(outcome, dict):
                self._in_flight.succeeded()
                return outcome
            label = _label(path, params)
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
                frequent = self._in_flight.throttled()
                give_up = throttles > self._max_throttle_waits
            else:
                failures += 1
                give_up = failures > self._max_retries
            if give_up:
                raise ApiUnavailableError(
                    f"{label} still failed after {failures + throttles} attempts (last: {outcome.reason}); "
                    "the API may be down or overloaded: try again later, or lower the concurrency."
                )
            delay = self._delay(outcome, failures)
            self.stats.add(retries=1)
            self._log.warning(f"{label}: {outcome.reason}; retrying in {delay:.1f}s")
            if outcome.throttled and frequent:
                self._gate.pause(delay)  # a limit: every worker of the account waits
            else:
                time.sleep(delay)

    def _attempt(self, path: str, params: dict[str, str], read_timeout: float) -> dict | _Retry:
        request = self._template.copy()
        request.url = f"{self._root}{quote(path)}?{urlencode({**params, 'token': self._token})}"
        network_error = setup_problem = None
        timed_out = False
        with self._in_flight:
            # Paced only once it holds an in-flight slot: waiting for a slot after the pacing would let
            # the waiters go together, over the rate limit.
            self._gate.wait()
            self._limiter.acquire()
            self.stats.add(requests=1)
            started = time.monotonic()
            try:
                response = self._adapter.send(request, timeout=(self._connect_timeout, read_timeout),
                                              **self._send_settings)
                content = response.content
            except requests.RequestException as exc:
                network_error = f"{type(exc).__name__}: {exc}"
                setup_problem = _setup_problem(exc)
                timed_out = isinstance(exc, requests.exceptions.Timeout)
            else:
                self._last_answer = time.monotonic()
                self._latency.record(self._last_answer - started)
                self.rate_headers.update((k, v) for k, v in response.headers.items()
                                         if "ratelimit" in k.lower() or k.lower() == "retry-after")
        # Built outside the `except` block so that no exception keeps a reference to the URL.
        if network_error is not None:
            if setup_problem:  # retrying cannot fix a wrong address, port or certificate
                raise ConfigError(f"{setup_problem} calling {self._clean(request.url)}: {BASE_URL_HINT}.")
            return _Retry(self._clean(network_error), timed_out=timed_out)
        return self._classify(response, content, path, params, request.url)

    def _classify(self, response: requests.Response, content: bytes, path: str, params: dict,
                  url: str) -> dict | _Retry:
        status = response.status_code
        body = _decode(content)
        if status == 200 and isinstance(body, dict) and body.get("success") is not False:
            return body
        label = _label(path, params)
        api_error = _error_text(body, content, self._clean)
        code = _status(status, body)
        how = f"HTTP {status}" if code == status else f"status {code} in the body of an HTTP {status}"
        if code in (401, 403):
            raise AuthError(f"The Zenvia Chat API rejected the token ({how}{': ' + api_error if api_error else ''}) "
                            f"on {label}: {self._token_hint}.")
        if code == 404 and path.endswith("/messages"):
            raise GoneError(f"{how}{': ' + api_error if api_error else ''}")
        if code == 404:
            raise ConfigError(f"The API has no {API_PREFIX}/{path} ({how} calling {self._clean(url)}): the base URL "
                              f"looks wrong; {BASE_URL_HINT}.")
        if status == 429:
            wait_s = parse_retry_after(response.headers.get("Retry-After"))
            return _Retry(f"HTTP 429 (rate limited{': ' + api_error if api_error else ''})", wait_s, throttled=True)
        if status == 408 or status >= 500:
            return _Retry(f"HTTP {status}{': ' + api_error if api_error else ''}")
        if code >= 400:
            raise BadRequestError(f"The API refused {label} ({how}): {api_error or 'no error text'}.")
        if not isinstance(body, dict):
            shape = "an empty body" if not content.strip() else f"a body that is not a JSON object ({len(content)} bytes)"
            return _Retry(f"HTTP {status} with {shape}")
        if body.get("success") is False:
            return _Retry(f"HTTP {status} with success=false: {api_error or 'no error text'}")
        return body

    def _delay(self, outcome: _Retry, failures: int) -> float:
        if outcome.throttled:
            return max(outcome.wait or 0.0, self._min_retry_after)
        base, cap = self._backoff
        ceiling = min(cap, base * 2 ** max(0, failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _clean(self, text: str) -> str:
        return redact(text, self._token)


BASE_URL_HINT = ("check the base URL (ZCHAT_BASE_URL, or base_url in the account's defs.yaml): the API root, "
                 "such as https://zchat.zenvia.io")


def _setup_problem(exc: requests.RequestException) -> str | None:
    """What is wrong when a request failed for a reason of the set-up (TLS, name, refused port), not of
    the moment; None for failures worth retrying (resets, cut bodies, timeouts)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ("The TLS handshake failed (https to a plain-http port, or a certificate this machine does not "
                "trust: set REQUESTS_CA_BUNDLE for a private CA)")
    if not isinstance(exc, requests.exceptions.ConnectionError) or isinstance(exc, requests.exceptions.ConnectTimeout):
        return None
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NameResolutionError):
        return "The API's host name does not resolve"
    if isinstance(reason, NewConnectionError) and "refused" in str(reason).lower():
        return "The connection was refused (nothing listens on that host and port)"
    return None


def _status(status: int, body) -> int:
    """What an answer says happened: its HTTP status, or the status in the body of a `success: false`
    answer when that names a client error (a rejected token whatever the HTTP status; a 404 or 400 in an
    HTTP 200). 408 and 429 in a body stay `success: false` answers, which are retried."""
    stated = body.get("status") if isinstance(body, dict) and body.get("success") is False else None
    stated = int(stated) if str(stated).isdigit() else None
    if stated in (401, 403) or (status == 200 and stated and 400 <= stated < 500 and stated not in (408, 429)):
        return stated
    return status


def _label(path: str, params: dict[str, str]) -> str:
    shown = "&".join(f"{k}={v}" for k, v in params.items() if k != "token" and k in ("data_type", "page"))
    return f"GET {API_PREFIX}/{path}" + (f"?{shown}" if shown else "")


def _decode(content: bytes):
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_text(body, content: bytes, clean) -> str:
    """The API's error text, cleaned of the token before a long body is cut (a cut token would escape it)."""
    if isinstance(body, dict):
        return clean(str(body.get("error") or body.get("message") or ""))
    return " ".join(clean(content.decode("utf-8", "replace")).split())[:200]


def _data_list(body: dict, path: str) -> list[dict]:
    data = body.get("data")
    if not isinstance(data, list):
        raise ApiUnavailableError(
            f"The API answered {API_PREFIX}/{path} without a `data` list; this client may need an update."
        )
    return data
