"""How the client talks to one account: every bound and default of its settings, defined once.

The Dagster resource inherits this model and an account's settings extend it, so a value is checked
by the same rule wherever it comes from (YAML, the environment, Python).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from .vendor import MAX_PAGE_SIZE

DEFAULT_BASE_URL = "https://zchat.zenvia.io"
DEFAULT_TOKEN_ENV = "ZCHAT_API_TOKEN"
MAX_CONCURRENCY = 256
# A quarter of the largest page the document allows: a page of 10,000 expanded records is 45 MB of Python
# objects on its way to Arrow, and the interactions step reads a page of each history while it writes the
# messages; pages of 2,500 cost two requests more a walk per 10,000 interactions of the day
# (docs/performance.md).
PAGE_SIZE = MAX_PAGE_SIZE // 4


class ClientSettings(BaseModel):
    base_url: str = Field(default=DEFAULT_BASE_URL,
                          description="API root; plain http is refused except to 127.0.0.1/localhost.")
    concurrency: int = Field(default=8, ge=1, le=MAX_CONCURRENCY, description="API requests in flight at once.")
    rate_limit: float | None = Field(default=None, gt=0, le=100_000,
                                     description="API requests per second for the account, shared by its steps "
                                                 "and its sensor (none: no cap).",
                                     examples=[20])
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to open a connection.")
    read_timeout: float = Field(default=60.0, gt=0, description="Longest wait for an answer. Once answers have "
                                                                "come, a request waits 10 x the recent slowest "
                                                                "(at least 5 s) before it is tried again, each "
                                                                "retry twice as long, up to this.")
    stall_seconds: float = Field(default=120.0, ge=10, description="A step fails once the API has answered nothing "
                                                                   "for this long (a hung API).")
    max_retries: int = Field(default=6, ge=0, le=50, description="Retries of a failed request (5xx, resets, bad bodies).")
    backoff_seconds: float = Field(default=0.5, ge=0, description="First retry delay; doubles each retry.")
    backoff_max_seconds: float = Field(default=30.0, ge=0, description="Longest retry delay.")
    min_retry_after: float = Field(default=1.0, ge=0, description="Shortest wait after HTTP 429, whatever Retry-After says.")
    max_throttle_waits: int = Field(default=30, ge=0, description="HTTP 429 answers one request may wait through.")
    page_size: int = Field(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE,
                           description=f"Records per page of history and ongoing (up to {MAX_PAGE_SIZE:,}: larger "
                                       "pages, fewer requests, more memory).")

    @field_validator("base_url")
    @classmethod
    def _safe_url(cls, value: str) -> str:
        return validate_base_url(value)


def validate_base_url(base_url: str) -> str:
    """Returns the URL without a trailing slash, or refuses one that would leak the token."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("is not an http(s) URL: use e.g. https://zchat.zenvia.io")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("uses plain http to a non-local host, which would send the token in clear text: use https "
                         "(plain http is allowed only for 127.0.0.1/localhost)")
    return base_url.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
