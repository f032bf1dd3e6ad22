"""Client for the Zenvia Chat Data API (no Dagster dependency)."""

from .client import REPORT_DATA_TYPES, RequestStats, ZchatClient, parse_retry_after, validate_base_url
from .errors import ApiUnavailableError, AuthError, BadRequestError, ConfigError, ZchatError
from .redact import redact

__all__ = [
    "REPORT_DATA_TYPES", "ApiUnavailableError", "AuthError", "BadRequestError", "ConfigError",
    "RequestStats", "ZchatClient", "ZchatError", "parse_retry_after", "redact", "validate_base_url",
]
