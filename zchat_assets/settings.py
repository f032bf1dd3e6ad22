"""One account's settings as a value: every attribute, bound and default in one model.

An account is built from YAML (a `zchat_assets.ZchatAccount` component) or, for the unnamed account
of a single-account deployment, from the `ZCHAT_*` environment variables by `from_environment`, a
pure function of the mapping it is given. Nothing here reads the environment on import. A value that
cannot work stops the load with one sentence that names the attribute or the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .api.redact import redact
from .api.settings import ClientSettings
from . import schemas
from .privacy import MODES, Privacy

DATASETS = tuple(schemas.DATASETS)
NEEDS = {"messages": ("history_expanded",), "conversations": ("history_expanded", "messages")}
DEFAULT_KEY_ENV = "ZCHAT_PERSONAL_DATA_KEY"
# The variable of each attribute of the unnamed account (the single-account setup).
ENVIRONMENT = {
    "base_url": "ZCHAT_BASE_URL", "lake_uri": "ZCHAT_LAKE_URI", "timezone": "ZCHAT_TIMEZONE",
    "start_date": "ZCHAT_START_DATE", "concurrency": "ZCHAT_CONCURRENCY", "rate_limit": "ZCHAT_RATE_LIMIT",
    "lookback_days": "ZCHAT_LOOKBACK_DAYS", "personal_data": "ZCHAT_PERSONAL_DATA",
}


class SettingsError(ValueError):
    """An account setting holds a value that cannot work."""


class Filters(BaseModel):
    """Passed to the endpoints that document them (history takes no `tags`, the report no `active`)."""

    model_config = ConfigDict(extra="forbid")

    departments: list[str] | None = Field(default=None, description="Department ids.")
    agents: list[str] | None = Field(default=None, description="Agent ids.")
    types: list[str] | None = Field(default=None, description="Channels: WHATSAPP, TEXT, EMAIL, PHONE, …")
    states: list[str] | None = Field(default=None, description="Interaction states: ENDED, DISCARDED, …")
    tags: list[str] | None = Field(default=None, description="Tag ids (the report only).")
    active: bool | None = Field(default=None, description="true: started by agents; false: by customers.")

    def params(self, accepted: tuple[str, ...]) -> dict[str, str]:
        """The query parameters of the filters that an endpoint accepts."""
        out = {}
        for name in accepted:
            value = getattr(self, name)
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif value:
                out[name] = ",".join(str(v) for v in value)
        return out


class AccountSettings(ClientSettings):
    """One Zenvia Chat account: where its data comes from, which days, which datasets, where they go."""

    name: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$",
                             description="Lower-case account name; assets are zchat/<name>/<dataset>. Leave it "
                                         "out for the single-account setup, read from the ZCHAT_* variables.")
    timezone: str = Field(default="America/Sao_Paulo", description="IANA time zone; partitions are its days.")
    start_date: str = Field(default="2025-01-01", description="First daily partition, YYYY-MM-DD, in the past.")
    lake_uri: str = Field(default="./data", min_length=1, description="Folder or fsspec URI of the lake.")
    datasets: list[str] = Field(default=list(DATASETS), description="The datasets to build (default: all).")
    filters: Filters = Field(default_factory=Filters, description="API filters for every request.")
    personal_data: str = Field(default="keep", description="Customers' personal data: keep, hash or drop.")
    personal_data_key_env: str = Field(default=DEFAULT_KEY_ENV, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                       description="The NAME of the variable holding the hashing secret.")
    lookback_days: int = Field(default=3, ge=1, le=60, description="Days before yesterday re-fetched nightly.")
    ongoing_retention_days: int = Field(default=30, ge=1, le=3650,
                                        description="Days of ongoing snapshots kept; older days are deleted.")
    cache_retention_days: int = Field(default=30, ge=1, le=3650,
                                      description="Days a message-cache chunk is kept after it was written.")
    flush_messages: int = Field(default=4_000, ge=1, le=1_000_000,
                                description="Messages per batch written to the day and the message cache: more "
                                            "memory, against more work lost by a run that is killed.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone: use a name such as America/Sao_Paulo") from None
        return value.strip()

    @field_validator("start_date")
    @classmethod
    def _first_day(cls, value: str, info: ValidationInfo) -> str:
        try:
            first = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("is not a date: use YYYY-MM-DD, e.g. 2025-01-01") from None
        zone = info.data.get("timezone", "UTC")
        today = datetime.now(ZoneInfo(zone)).date()
        if first >= today:
            raise ValueError(f"is not in the past: the first partition must be a day that has ended (today is "
                             f"{today} in {zone})")
        return first.isoformat()

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(DATASETS))
        if unknown:
            raise ValueError(f"names unknown datasets {unknown}: choose from {', '.join(DATASETS)}")
        for dataset, needed in NEEDS.items():
            missing = [n for n in needed if dataset in value and n not in value]
            if missing:
                raise ValueError(f"has {dataset} without {', '.join(missing)}, which it is built from")
        return [d for d in DATASETS if d in value]

    @field_validator("personal_data")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value.strip().lower() not in MODES:
            raise ValueError(f"is not valid: use {', '.join(MODES[:-1])} or {MODES[-1]}")
        return value.strip().lower()

    def privacy(self, environ: Mapping[str, str]) -> Privacy:
        """The personal-data setting with its secret, read from the variable the account names."""
        return Privacy(self.personal_data, environ.get(self.personal_data_key_env) or None, self.personal_data_key_env)


def from_environment(environ: Mapping[str, str], **attributes) -> AccountSettings:
    """The unnamed account: each attribute not given from its ZCHAT_* variable, else the default."""
    values = {name: environ[var].strip() for name, var in ENVIRONMENT.items()
              if name not in attributes and (environ.get(var) or "").strip()}
    values.update(attributes)
    return validated(values, lambda attribute: ENVIRONMENT.get(attribute, attribute))


def named(attributes: Mapping) -> AccountSettings:
    """A named account from attributes given as values (YAML, Python)."""
    name = attributes.get("name")
    return validated(dict(attributes), lambda attribute: f"Account {name}: {attribute}")


def validated(values: dict, label) -> AccountSettings:
    try:
        return AccountSettings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(one_sentence(exc, label)) from None


def one_sentence(exc: ValidationError, label) -> str:
    """The first problem of a validation error as one sentence naming where the value came from."""
    error = exc.errors()[0]
    attribute = ".".join(str(p) for p in error["loc"])
    value = redact(str(error.get("input")))
    if error["type"] == "value_error":
        problem = str(error["msg"]).removeprefix("Value error, ")
    elif error["type"] == "extra_forbidden":
        problem = "is not an attribute an account has"
    else:
        problem = f"is not valid: use {expected(attribute.split('.')[0])}"
    return f"{label(attribute)} {value!r} {problem}."


def expected(attribute: str) -> str:
    """What a numeric or patterned attribute accepts, said from its own constraints."""
    field = AccountSettings.model_fields.get(attribute)
    if field is None:
        return "a value this attribute accepts"
    kind = {int: "a whole number", float: "a number"}.get(_base_type(field.annotation), "a value")
    bounds = {name: getattr(m, name) for m in field.metadata for name in ("ge", "gt", "le", "pattern")
              if getattr(m, name, None) is not None}
    low, high = bounds.get("ge", bounds.get("gt")), bounds.get("le")
    if "gt" in bounds and high is not None:
        return f"{kind} above {low:g} and at most {high:g}"
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if "pattern" in bounds:
        return f"text matching {bounds['pattern']}"
    return kind


def _base_type(annotation):
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    return args[0] if args else annotation
