"""Client for the Zenvia Chat Data API (no Dagster dependency)."""

from .client import ZchatClient
from .errors import ApiUnavailableError, AuthError, BadRequestError, ConfigError, GoneError, ZchatError
from .policy import parse_retry_after
from .redact import redact
from .requester import RequestStats
from .settings import ClientSettings, validate_base_url

__all__ = [
    "ApiUnavailableError", "AuthError", "BadRequestError", "ClientSettings", "ConfigError", "GoneError", "RequestStats",
    "ZchatClient", "ZchatError", "parse_retry_after", "redact", "validate_base_url",
]
