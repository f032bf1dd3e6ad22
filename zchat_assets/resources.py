"""Dagster resources: the API (token, HTTP client settings) and the lake (where Parquet goes)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from .api import ClientSettings, ZchatClient
from .api.settings import DEFAULT_BASE_URL, DEFAULT_TOKEN_ENV
from .erasure import Erasures
from .lake import Lake, LakeError, Origin
from .privacy import Privacy
from .settings import DEFAULT_KEY_ENV, AccountSettings


class ZchatApi(ConfigurableResource, ClientSettings):
    """One Zenvia Chat account's API. Give `token` as `EnvVar(<token_env>)` so that only the variable's
    name, never its value, reaches run config and the UI; the other fields are the client's settings.
    Without a token (the variable unset where the definitions load) each use fails with a sentence that
    names `token_env` and where tokens are made, instead of Dagster's config error before the run."""

    token: str | None = Field(default=None, description="API token (secret), given as the environment variable "
                                                         "named by token_env.")
    token_variable: str = Field(default=DEFAULT_TOKEN_ENV, description="Where the token comes from, as errors name it "
                                                                       "(never what a user wrote in token_env).")

    def open_client(self, logger: logging.Logger | None = None, rate_share: float = 1.0, **overrides) -> ZchatClient:
        """A new client with its own pool and request counters, holding `rate_share` of the account's
        rate limit, with these client settings changed; close it when done (`with`)."""
        settings = self.model_copy(update=overrides) if overrides else self
        return ZchatClient(self.token, settings, logger, rate_share, self.token_variable)


class ZchatLake(ConfigurableResource):
    """Where one account's Parquet goes (a local folder or an fsspec URI), whose data it is, and how its
    customers' personal data is written."""

    uri: str = Field(description="Local folder or fsspec URI, e.g. s3://bucket/zchat.")
    uri_setting: str = Field(default="ZCHAT_LAKE_URI", description="Where the URI is set, named in errors.")
    uri_is_default: bool = Field(default=False, description="True when nobody chose the URI: then it is "
                                                            "refused outside a local instance.")
    account: str | None = Field(default=None, description="The account's name: its Hive level in every dataset.")
    host: str = Field(default=urlsplit(DEFAULT_BASE_URL).hostname, description="The API host the account's data "
                                                                                 "comes from.")
    timezone: str = Field(default=AccountSettings.model_fields["timezone"].default,
                          description="The time zone of the account's days.")
    personal_data: str = Field(default="keep", description="Customers' personal data: keep, hash or drop.")
    personal_data_key: str | None = Field(default=None, description="Secret for hashing personal data.")
    personal_data_key_variable: str = Field(default=DEFAULT_KEY_ENV, description="Where that secret comes from, as "
                                                                                 "errors name it.")
    personal_data_text: str = Field(default="keep", description="Identifiers typed into messages: keep or mask.")

    def open(self, local_instance: bool = True) -> Lake:
        """The lake, probed and claimed first, so that a bad URI or a lake holding another origin's data fails
        in one sentence before any API request. The default `./data` is for a local instance (`dagster dev`):
        a deployment's run may run on a machine that is gone tomorrow, so there an unset lake is an error."""
        if self.uri_is_default and not local_instance:
            raise LakeError(f"{self.uri_setting} is not set: in a deployment runs would write to {self.uri} on whichever "
                            f"machine runs them, and lose it; set {self.uri_setting} to an s3://bucket/prefix URI "
                            "or a shared folder.")
        lake = Lake(self.uri, self.account, self.uri_setting)
        lake.check_writable()
        lake.claim(Origin(self.account, self.host, self.timezone))
        lake.erasures = Erasures(lake, self.privacy())
        return lake

    def privacy(self) -> Privacy:
        """The personal-data settings its writers apply, with the secret."""
        return Privacy(self.personal_data, self.personal_data_key, self.personal_data_key_variable,
                       self.personal_data_text)
