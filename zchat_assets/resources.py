"""Dagster resources: the API (token, HTTP client settings) and the lake (where Parquet goes)."""

from __future__ import annotations

import logging

from dagster import ConfigurableResource
from pydantic import Field

from .api import ClientSettings, ZchatClient
from .lake import Lake
from .privacy import Privacy
from .settings import DEFAULT_KEY_ENV


class ZchatApi(ConfigurableResource, ClientSettings):
    """One Zenvia Chat account's API. Give `token` as `EnvVar(<token_env>)` so that only the variable's
    name, never its value, reaches run config and the UI; the other fields are the client's settings."""

    token: str = Field(description="API token (secret), given as the environment variable named by token_env.")

    def open_client(self, logger: logging.Logger | None = None) -> ZchatClient:
        """A new client with its own pool and request counters; close it when done (`with`)."""
        return ZchatClient(self.token, self, logger)


class ZchatLake(ConfigurableResource):
    """Where one account's Parquet goes: a local folder or an fsspec URI."""

    uri: str = Field(default="./data", description="Local folder or fsspec URI, e.g. s3://bucket/zchat.")
    account: str | None = Field(default=None, description="The account's name: its Hive level in every dataset.")
    personal_data: str = Field(default="keep", description="Customers' personal data: keep, hash or drop.")
    personal_data_key: str | None = Field(default=None, description="Secret for hashing personal data.")
    personal_data_key_env: str = Field(default=DEFAULT_KEY_ENV, description="The variable holding that secret.")

    def open(self) -> Lake:
        """The lake, probed first so that a bad URI fails in one sentence before any API request."""
        privacy = Privacy(self.personal_data, self.personal_data_key, self.personal_data_key_env)
        lake = Lake(self.uri, privacy, self.account)
        lake.check_writable()
        return lake
