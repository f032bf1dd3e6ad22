"""Dagster resources: the API (token, HTTP client settings) and the lake (where Parquet goes)."""

from __future__ import annotations

import logging

from dagster import ConfigurableResource
from pydantic import Field

from .api import ZchatClient
from .lake import Lake
from .privacy import Privacy
from .settings import DEFAULT_BASE_URL, DEFAULT_CONCURRENCY, DEFAULT_LAKE_URI


class ZchatApi(ConfigurableResource):
    """The Zenvia Chat Data API account. Give `token` as `EnvVar("ZCHAT_API_TOKEN")` so that only the
    variable's name, never its value, reaches run config and the UI."""

    token: str = Field(description="API token (secret): set ZCHAT_API_TOKEN.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API root (ZCHAT_BASE_URL).")
    connect_timeout: float = Field(default=5.0, description="Seconds to open a connection.")
    read_timeout: float = Field(default=60.0, description="Seconds to wait for an answer.")
    max_retries: int = Field(default=6, description="Retries of a failed request (5xx, resets, bad bodies).")
    backoff_seconds: float = Field(default=0.5, description="First retry delay; doubles each retry.")
    backoff_max_seconds: float = Field(default=30.0, description="Longest retry delay.")
    min_retry_after: float = Field(default=1.0, description="Shortest wait after HTTP 429, whatever Retry-After says.")
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, description="Requests in flight at once (ZCHAT_CONCURRENCY).")
    rate_limit: float | None = Field(default=None, description="Requests per second across the process (ZCHAT_RATE_LIMIT).")
    page_size: int = Field(default=10_000, description="Records per page of history and ongoing (max 10,000).")

    def open_client(self, logger: logging.Logger | None = None) -> ZchatClient:
        """A new client with its own pool and request counters; close it when done (`with`)."""
        return ZchatClient(
            self.base_url, self.token, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            max_retries=self.max_retries, backoff_seconds=self.backoff_seconds,
            backoff_max_seconds=self.backoff_max_seconds, min_retry_after=self.min_retry_after,
            concurrency=self.concurrency, rate_limit=self.rate_limit, page_size=self.page_size, logger=logger,
        )


class ZchatLake(ConfigurableResource):
    """Where the Parquet lake lives: a local folder or an fsspec URI (ZCHAT_LAKE_URI)."""

    uri: str = Field(default=DEFAULT_LAKE_URI, description="Local folder or fsspec URI, e.g. s3://bucket/zchat.")
    personal_data: str = Field(default="keep", description="Customers' personal data: keep, hash or drop "
                                                           "(ZCHAT_PERSONAL_DATA).")
    personal_data_key: str | None = Field(default=None, description="Secret for hashing personal data: set "
                                                                    "ZCHAT_PERSONAL_DATA_KEY.")

    def open(self) -> Lake:
        """The lake, probed first so that a bad URI fails in one sentence before any API request."""
        lake = Lake(self.uri, Privacy(self.personal_data, self.personal_data_key))
        lake.check_writable()
        return lake
