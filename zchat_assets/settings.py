"""The deployment's settings, read from the environment through Dagster's `EnvVar`, validated once.

Partitions are fixed when the code location loads, so the time zone and start date are read here,
not in a resource. Each bad value stops the load with one sentence that names the variable.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster import EnvVar

from .api.client import MAX_CONCURRENCY
from .privacy import Privacy

DEFAULT_BASE_URL = "https://zchat.zenvia.io"
DEFAULT_LAKE_URI = "./data"
DEFAULT_TIMEZONE = "America/Sao_Paulo"
DEFAULT_START_DATE = "2025-01-01"
DEFAULT_CONCURRENCY = 8
DEFAULT_LOOKBACK_DAYS = 3


class SettingsError(ValueError):
    """A ZCHAT_* environment variable holds a value that cannot work."""


def timezone_name() -> str:
    name = EnvVar("ZCHAT_TIMEZONE").get_value(DEFAULT_TIMEZONE).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"ZCHAT_TIMEZONE {name!r} is not an IANA time zone: use a name such as America/Sao_Paulo.") from None
    return name


def start_date(tz_name: str) -> str:
    raw = EnvVar("ZCHAT_START_DATE").get_value(DEFAULT_START_DATE).strip()
    try:
        first = date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"ZCHAT_START_DATE {raw!r} is not a date: use YYYY-MM-DD, e.g. 2025-01-01.") from None
    today = datetime.now(ZoneInfo(tz_name)).date()
    if first >= today:
        raise SettingsError(f"ZCHAT_START_DATE {raw} is not in the past: the first partition must be a day that has ended "
                            f"(today is {today} in {tz_name}).")
    return first.isoformat()


def _number(name: str, default, cast, low, high, unit: str):
    raw = EnvVar(name).get_value()
    if raw is None or not raw.strip():
        return default
    try:
        value = cast(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{name} {raw!r} is not valid: use {unit}.")
    return value


def concurrency() -> int:
    return _number("ZCHAT_CONCURRENCY", DEFAULT_CONCURRENCY, int, 1, MAX_CONCURRENCY,
                   f"a whole number of requests in flight from 1 to {MAX_CONCURRENCY}")


def rate_limit() -> float | None:
    return _number("ZCHAT_RATE_LIMIT", None, float, 0.01, 100_000, "a positive number of requests per second")


def lookback_days() -> int:
    return _number("ZCHAT_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS, int, 1, 60, "a whole number of days from 1 to 60")


def personal_data() -> str:
    """ZCHAT_PERSONAL_DATA (keep, hash or drop), checked together with the key that hashing needs."""
    mode = EnvVar("ZCHAT_PERSONAL_DATA").get_value("keep").strip().lower()
    Privacy(mode, EnvVar("ZCHAT_PERSONAL_DATA_KEY").get_value())
    return mode


def lake_uri() -> str:
    return EnvVar("ZCHAT_LAKE_URI").get_value(DEFAULT_LAKE_URI)


def env_or(name: str, default: str) -> str:
    """The variable as an `EnvVar` (the UI then shows its name) when it is set, else the default."""
    return EnvVar(name) if EnvVar(name).get_value() else default
