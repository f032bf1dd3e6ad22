"""What an answer means and what to do about it: the client's retry policy, in one place and without I/O.

An answer is a decoded body (success), a `Retry` (5xx, 408, 429, a body that is not a JSON object,
`success: false`, no answer at all), or one of the typed errors for what retrying cannot fix (a rejected
token, a purged conversation, a wrong base URL, refused parameters). `RetryPolicy` then says how long to
wait and when to give up; `Latency` how long to wait for an answer before trying again.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone

import msgspec

from .errors import AuthError, BadRequestError, ConfigError, GoneError
from .vendor import API_PREFIX

BASE_URL_HINT = ("check the base URL (ZCHAT_BASE_URL, or base_url in the account's defs.yaml): the API root, "
                 "such as https://zchat.zenvia.io")


_decoder = msgspec.json.Decoder()


class _Data(msgspec.Struct):
    data: list[msgspec.Raw]


_data_as_sent = msgspec.json.Decoder(_Data)


@dataclass(frozen=True)
class Retry:
    """A failed attempt worth retrying; `wait` is the server's Retry-After when it gave one, `limit_met` that
    429s come so often that every request of the account pauses (`throttle.AdaptiveLimit.throttled`)."""

    reason: str
    wait: float | None = None
    throttled: bool = False
    timed_out: bool = False
    limit_met: bool = False


def classify(status: int, headers: dict[str, str], content: bytes, path: str, params: dict, url: str,
             clean, token_hint: str) -> dict | Retry:
    """The decoded body of a good answer, a `Retry`, or the error retrying cannot fix. `url` and every
    text of the API pass through `clean` (the token's redaction) before they are shown."""
    body = decode(content)
    if status == 200 and isinstance(body, dict) and body.get("success") is not False:
        return body
    label = request_label(path, params)
    api_error = error_text(body, content, clean)
    code = stated_status(status, body)
    how = f"HTTP {status}" if code == status else f"status {code} in the body of an HTTP {status}"
    if code in (401, 403):
        raise AuthError(f"The Zenvia Chat API rejected the token ({how}{': ' + api_error if api_error else ''}) "
                        f"on {label}: {token_hint}.")
    if code == 404 and path.endswith("/messages"):
        raise GoneError(f"{how}{': ' + api_error if api_error else ''}")
    if code == 404:
        raise ConfigError(f"The API has no {API_PREFIX}/{path} ({how} calling {clean(url)}): the base URL "
                          f"looks wrong; {BASE_URL_HINT}.")
    if status == 429:
        wait_s = parse_retry_after(next((v for k, v in headers.items() if k.lower() == "retry-after"), None))
        return Retry(f"HTTP 429 (rate limited{': ' + api_error if api_error else ''})", wait_s, throttled=True)
    if status == 408 or status >= 500:
        return Retry(f"HTTP {status}{': ' + api_error if api_error else ''}")
    if code >= 400:
        raise BadRequestError(f"The API refused {label} ({how}): {api_error or 'no error text'}.")
    if not isinstance(body, dict):
        shape = "an empty body" if not content.strip() else f"a body that is not a JSON object ({len(content)} bytes)"
        return Retry(f"HTTP {status} with {shape}")
    if body.get("success") is False:
        return Retry(f"HTTP {status} with success=false: {api_error or 'no error text'}")
    return body


def decode(content: bytes):
    """The JSON body, or None. msgspec reads it twice as fast as the standard library, and as exactly
    (integers of any size stay integers, which orjson would turn into floats); what it refuses but the
    standard library reads (NaN, Infinity) is read the standard way."""
    try:
        return _decoder.decode(content)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def data_as_sent(content: bytes) -> list[str] | None:
    """Each item of the body's `data` list as the API wrote it (a cut of the body, not written again), or
    None when msgspec cannot read the body (`decode` then took the standard library's way)."""
    try:
        return [str(item, "utf-8") for item in _data_as_sent.decode(content).data]
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def stated_status(status: int, body) -> int:
    """What an answer says happened: its HTTP status, or the status in the body of a `success: false`
    answer when that names a client error (a rejected token whatever the HTTP status; a 404 or 400 in an
    HTTP 200). 408 and 429 in a body stay `success: false` answers, which are retried."""
    stated = body.get("status") if isinstance(body, dict) and body.get("success") is False else None
    stated = int(stated) if str(stated).isdigit() else None
    if stated in (401, 403) or (status == 200 and stated and 400 <= stated < 500 and stated not in (408, 429)):
        return stated
    return status


def error_text(body, content: bytes, clean) -> str:
    """The API's error text, cleaned of the token before a long body is cut (a cut token would escape it)."""
    if isinstance(body, dict):
        return clean(str(body.get("error") or body.get("message") or ""))
    return " ".join(clean(content.decode("utf-8", "replace")).split())[:200]


def request_label(path: str, params: dict[str, str]) -> str:
    """How a request is named in messages: its path and the parameters that tell requests apart, no token."""
    shown = "&".join(f"{k}={v}" for k, v in params.items() if k in ("data_type", "page"))
    return f"GET {API_PREFIX}/{path}" + (f"?{shown}" if shown else "")


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


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one request is tried again."""

    max_retries: int = 6  # failures (5xx, resets, bad bodies, timeouts) one request may retry
    max_throttle_waits: int = 30  # 429s one request may wait through
    backoff: float = 0.5  # first delay after a failure, doubled each time
    backoff_max: float = 30.0
    min_retry_after: float = 1.0  # after a 429, whatever Retry-After says

    def gives_up(self, failures: int, throttles: int) -> bool:
        return failures > self.max_retries or throttles > self.max_throttle_waits

    def delay(self, outcome: Retry, failures: int) -> float:
        """After a 429 the server's Retry-After (at least the minimum); otherwise capped exponential backoff
        with jitter, so that workers that failed together do not come back together."""
        if outcome.throttled:
            return max(outcome.wait or 0.0, self.min_retry_after)
        ceiling = min(self.backoff_max, self.backoff * 2 ** max(0, failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class Latency:
    """Recent answer times, for early retries: a request is given 10 x the recent slowest answer (at
    least MIN seconds; FIRST before five answers came), doubled at each retry, never more than the read
    timeout. A few answers that never come then cost seconds, not a minute each; an API that has become
    slow for good gets its longer timeouts back from the answers it still gives.

    "The recent slowest" is the 95th percentile of the last SAMPLES answers, worked out again every
    EVERY answers rather than on each request: sorting 200 numbers per request was a visible part of the
    client's CPU."""

    MIN = 5.0
    FIRST = 10.0  # before any answer came: long enough for a large page, short enough not to stall a day
    FACTOR = 10
    SAMPLES = 200
    EVERY = 20

    def __init__(self, ceiling: float):
        self._ceiling = ceiling
        self._recent: deque[float] = deque(maxlen=self.SAMPLES)
        self._since = 0  # answers recorded since the percentile was last worked out
        self._slowest: float | None = None
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)
            self._since += 1
            if len(self._recent) >= 5 and (self._slowest is None or self._since >= self.EVERY):
                self._slowest = sorted(self._recent)[int(0.95 * len(self._recent))]
                self._since = 0

    def recent(self) -> list[float]:
        with self._lock:
            return list(self._recent)

    def timeout(self, timeouts_so_far: int) -> float:
        slowest = self._slowest
        if slowest is None:  # not enough answers seen yet to know what slow means
            return min(self._ceiling, self.FIRST * 2 ** timeouts_so_far)
        return min(self._ceiling, max(self.MIN, self.FACTOR * slowest) * 2 ** timeouts_so_far)
