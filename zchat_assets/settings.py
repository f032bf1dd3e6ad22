"""One account's settings as a value: every attribute, bound and default in one model.

An account is built from YAML (a `zchat_assets.ZchatAccount` component) or, for the unnamed account
of a single-account deployment, from the `ZCHAT_*` environment variables by `from_environment`, a
pure function of the mapping it is given. Nothing here reads the environment on import. A value that
cannot work stops the load with one sentence that names the attribute or the variable.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator

from .api.redact import redact
from .api.settings import DEFAULT_TOKEN_ENV, ClientSettings
from .lake import Lake
from . import schemas
from .privacy import MODES, TEXT_MODES, Privacy, PrivacyError

DATASETS = tuple(schemas.DATASETS)
NEEDS = {"messages": ("history_expanded",), "conversations": ("history_expanded", "messages")}
DEFAULT_KEY_ENV = "ZCHAT_PERSONAL_DATA_KEY"
DEFAULT_LAKE = "./data"  # the unnamed account's
SHARED_LAKE = "./lake"  # where scaffolded named accounts write, side by side: never the unnamed account's lake
# The variable of each attribute of the unnamed account (the single-account setup).
ENVIRONMENT = {
    "base_url": "ZCHAT_BASE_URL", "lake_uri": "ZCHAT_LAKE_URI", "timezone": "ZCHAT_TIMEZONE",
    "start_date": "ZCHAT_START_DATE", "concurrency": "ZCHAT_CONCURRENCY", "rate_limit": "ZCHAT_RATE_LIMIT",
    "lookback_days": "ZCHAT_LOOKBACK_DAYS", "personal_data": "ZCHAT_PERSONAL_DATA",
    "personal_data_text": "ZCHAT_PERSONAL_DATA_TEXT", "vendor_retention_days": "ZCHAT_VENDOR_RETENTION_DAYS",
    "retention_days": "ZCHAT_RETENTION_DAYS",
}
# Attributes that name a variable holding a secret (what it holds, how such a variable is usually named).
# What a user writes there may be the secret itself, pasted in the wrong place, so it is never echoed:
# errors name the attribute, not its value.
SECRET_NAMES = {"token_env": ("token", "ZCHAT_TOKEN"), "personal_data_key_env": ("hashing secret", "PERSONAL_DATA_KEY")}
VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


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

    model_config = ConfigDict(extra="forbid")

    token_env: str = Field(default=DEFAULT_TOKEN_ENV, min_length=1,
                           description="The NAME of the environment variable that holds the account's API token, "
                                       "never the token itself.")
    name: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$",
                             description="Lower-case account name; assets are zchat/<name>/<dataset>. Leave it "
                                         "out for the single-account setup, read from the ZCHAT_* variables.")
    timezone: str = Field(default="America/Sao_Paulo", description="IANA time zone; partitions are its days.")
    start_date: str = Field(default="2025-01-01", description="First daily partition, YYYY-MM-DD, in the past.")
    # No default points two things at one folder: the unnamed account's lake is its own, named ones share theirs.
    lake_uri: str = Field(default_factory=lambda given: SHARED_LAKE if given.get("name") else DEFAULT_LAKE,
                          min_length=1, description=f"Folder or fsspec URI (s3://bucket/prefix) of the lake: by default "
                          f"{SHARED_LAKE} for named accounts, which may share it, and {DEFAULT_LAKE} for the unnamed one.")
    datasets: list[str] = Field(default=list(DATASETS), description="The datasets to build (default: all).")
    filters: Filters = Field(default_factory=Filters, description="API filters for every request.",
                             examples=[{"departments": ["11", "12"], "types": ["WHATSAPP", "TEXT"]}])
    personal_data: str = Field(default="keep", description="Customers' personal data: keep, hash or drop.")
    personal_data_text: str = Field(default="keep",
                                    description="Identifiers customers type into messages (CPF, CNPJ, Brazilian "
                                                "phone numbers, e-mail addresses): keep, or mask in the text and "
                                                "the original JSON.")
    personal_data_key_env: str = Field(default=DEFAULT_KEY_ENV, min_length=1,
                                       description="The NAME of the variable holding the hashing secret.")
    lookback_days: int = Field(default=3, ge=1, le=60, description="Days before yesterday re-fetched nightly.")
    open_days_max: int = Field(default=30, ge=1, le=365,
                               description="Days a day with interactions still going on is re-fetched nightly, "
                                           "whatever lookback_days says, until they end.")
    ongoing_retention_days: int = Field(default=30, ge=1, le=3650,
                                        description="Days of ongoing snapshots kept; older days are deleted.")
    cache_retention_days: int = Field(default=30, ge=1, le=3650,
                                      description="Days a message-cache chunk is kept after it was written.")
    vendor_retention_days: int = Field(default=730, ge=1, le=3650,
                                       description="Days the vendor keeps an interaction (Zenvia: 24 months); days "
                                                   "missing from the lake are warned about before they pass it.")
    retention_days: int | None = Field(default=None, ge=1, le=36500,
                                       description="Days the lake keeps; older days are removed from every dataset "
                                                   "(default: kept forever).")
    recheck_seconds: float = Field(default=60.0, ge=0, le=3600,
                                   description="Seconds before a finished conversation that came with fewer messages "
                                               "than its counter is asked for again; still short, the day is "
                                               "published with it recorded as a gap.")
    flush_messages: int = Field(default=4_000, ge=1, le=1_000_000,
                                description="Messages per batch written to the day and the message cache: more "
                                            "memory, against more work lost by a run that is killed.")
    # Where the account was written (its defs.yaml) and which attributes that file set: errors name them.
    _source: str | None = PrivateAttr(default=None)
    _written: frozenset = PrivateAttr(default=frozenset())

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

    @field_validator("retention_days")
    @classmethod
    def _kept_past_the_lookback(cls, value: int | None, info: ValidationInfo) -> int | None:
        oldest = info.data.get("lookback_days", 3) + 1  # the look-back fetches days up to this old
        if value is not None and value < oldest:
            raise ValueError(f"would remove days the nightly look-back fetches again (up to {oldest} days old): "
                             f"keep {oldest} days or more, or leave it out to keep every day")
        return value

    @field_validator("personal_data", "personal_data_text")
    @classmethod
    def _mode(cls, value: str, info: ValidationInfo) -> str:
        modes = MODES if info.field_name == "personal_data" else TEXT_MODES
        if value.strip().lower() not in modes:
            raise ValueError(f"is not valid: use {', '.join(modes[:-1])} or {modes[-1]}")
        return value.strip().lower()

    def privacy(self, environ: Mapping[str, str]) -> Privacy:
        """The personal-data settings with the secret, read from the variable the account names."""
        try:
            return Privacy(self.personal_data, environ.get(self.personal_data_key_env) or None,
                           self.secret_variable("personal_data_key_env"), self.personal_data_text)
        except PrivacyError as exc:
            raise SettingsError(str(exc)) from None

    def lake(self) -> Lake:
        """The account's lake, to read (a run writes through the ZchatLake resource, which claims it first)."""
        return Lake(self.lake_uri, self.name, self.setting("lake_uri"))

    def setting(self, attribute: str) -> str:
        """Where an attribute's value was set, as errors name it: the unnamed account's ZCHAT_* variable,
        else the attribute in the account's defs.yaml (`lake_uri in zchat_assets/defs/accounts/acme/defs.yaml`)."""
        if self.name is None and attribute in ENVIRONMENT and attribute not in self._written:
            return ENVIRONMENT[attribute]
        return f"{attribute} in {self.where}"

    @property
    def where(self) -> str:
        return self._source or (f"account {self.name}" if self.name else "the unnamed account")

    def secret_variable(self, attribute: str) -> str:
        """How errors name the variable of `token_env` or `personal_data_key_env`: by its name when it is
        the default (ZCHAT_API_TOKEN), else by the attribute that names it, whose value is never echoed."""
        if attribute not in self.model_fields_set:
            return getattr(self, attribute)
        return f"the variable named by {self.setting(attribute)}"

    def check_secret_names(self, environ: Mapping[str, str]) -> None:
        """A secret pasted where its variable's NAME belongs is refused before it can reach a log: a value
        that names no set variable and does not look like a variable name is taken for the secret itself."""
        for attribute, (secret, suffix) in SECRET_NAMES.items():
            value = getattr(self, attribute)
            if not environ.get(value) and not VARIABLE_NAME.fullmatch(value):
                example = f"{(self.name or 'acme').upper()}_{suffix}"
                raise SettingsError(f"{prefix(self.where)}{attribute} takes the NAME of the variable that holds the "
                                    f"{secret} (for example {example}), not the {secret}.")


def prefix(where: str) -> str:
    """How a sentence about an account starts: its defs.yaml as written, or "Account acme: "."""
    return f"{where}: " if "/" in where else f"{where[0].upper()}{where[1:]}: "


def from_environment(environ: Mapping[str, str], source: str | None = None, **attributes) -> AccountSettings:
    """The unnamed account: each attribute not given (in its defs.yaml, at `source`) from its ZCHAT_*
    variable, else the default."""
    values = {name: environ[var].strip() for name, var in ENVIRONMENT.items()
              if name not in attributes and (environ.get(var) or "").strip()}
    values.update(attributes)
    where = source or "the unnamed account"
    settings = validated(values, lambda a: ENVIRONMENT[a] if a in ENVIRONMENT and a not in attributes
                         else f"{prefix(where)}{a}")
    settings._source, settings._written = source, frozenset(attributes)
    return settings


def named(attributes: Mapping, source: str | None = None) -> AccountSettings:
    """A named account from attributes given as values (YAML at `source`, Python)."""
    where = source or f"account {attributes.get('name')}"
    settings = validated(dict(attributes), lambda attribute: f"{prefix(where)}{attribute}")
    settings._source, settings._written = source, frozenset(attributes)
    return settings


def from_yaml(attributes: Mapping, environ: Mapping[str, str], source: str) -> AccountSettings:
    """An account as its defs.yaml at `source` writes it: named, or the unnamed one over the ZCHAT_* variables."""
    attributes = dict(attributes or {})
    return named(attributes, source) if attributes.get("name") else from_environment(environ, source, **attributes)


def validated(values: dict, label) -> AccountSettings:
    try:
        return AccountSettings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(one_sentence(exc, label)) from None


def one_sentence(exc: ValidationError, label) -> str:
    """The first problem of a validation error as one sentence naming where the value came from. Values of
    unknown attributes and of the secrets' variables are never echoed: they may be a secret."""
    error = exc.errors()[0]
    attribute = ".".join(str(p) for p in error["loc"])
    value = f"{redact(str(error.get('input')))!r} "
    if error["type"] == "extra_forbidden":
        return f"{label(attribute)} is not an attribute an account has{did_you_mean(error['loc'])}"
    if attribute in SECRET_NAMES:
        value = ""
    if error["type"] == "value_error":
        problem = str(error["msg"]).removeprefix("Value error, ")
    else:
        problem = f"is not valid: use {expected(attribute.split('.')[0])}"
    return f"{label(attribute)} {value}{problem}."


def did_you_mean(loc: tuple) -> str:
    """': did you mean timezone?' for a misspelt attribute (or filter), from the names the model knows."""
    model = Filters if len(loc) > 1 and loc[0] == "filters" else AccountSettings
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    known = ", ".join(model.model_fields)
    return f": did you mean {close[0]}?" if close else f"; the attributes are {known}."


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
