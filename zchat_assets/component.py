"""The components: `zchat_assets.ZchatAccount`, one Zenvia Chat account per `defs.yaml`, and
`zchat_assets.ZchatFleet`, many accounts in one.

Dagster is shown only the attributes' names, defaults and docs: every value is then judged by
`AccountSettings`' own rules, so that a mistake is our one sentence naming the file and the attribute
(with "did you mean …" for a misspelt one), and a secret pasted where a variable's NAME belongs is never
echoed by a validation error. An account without `name` is the single-account setup: each attribute its
YAML leaves out is read from its `ZCHAT_*` variable, and its assets keep the keys `zchat/<dataset>`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model

from .assets import build_account_defs, build_fleet_defs
from .fleets import fleet_from_yaml
from .settings import AccountSettings, from_yaml

# What Dagster checks before we do: any value, under the names the settings model documents.
ATTRIBUTES = create_model(
    "ZchatAccountAttributes", __config__=ConfigDict(extra="allow"),
    **{name: (Any, Field(default=None, description=field.description))
       for name, field in AccountSettings.model_fields.items()})
# Written uncommented by the scaffolder: what every new account has to decide; then the rest, most used first.
DECIDE = ("name", "token_env", "timezone", "start_date", "lake_uri")
ORDER = (*DECIDE, "base_url", "datasets", "filters", "personal_data", "personal_data_text", "personal_data_key_env",
         "concurrency", "rate_limit", "lookback_days")


def scaffold_yaml(name: str) -> str:
    """A new account's defs.yaml: every attribute, with what it means and its default, from the settings model."""
    upper = name.upper()
    chosen = {"token_env": f"{upper}_ZCHAT_TOKEN", "personal_data_key_env": f"{upper}_PERSONAL_DATA_KEY"}
    defaults = AccountSettings(name=name)
    lines = ["type: zchat_assets.ZchatAccount", "attributes:"]
    fields = AccountSettings.model_fields
    for attribute in sorted(fields, key=lambda a: ORDER.index(a) if a in ORDER else len(ORDER)):
        field = fields[attribute]
        value = chosen.get(attribute, (field.examples or [getattr(defaults, attribute)])[0])
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_none=True)
        text = yaml.safe_dump({attribute: value}, default_flow_style=True, width=1000, sort_keys=False).strip()[1:-1]
        lines.append(f"  # {field.description}")
        lines.append(f"  {'' if attribute in DECIDE else '# '}{text}")
    return "\n".join(lines) + "\n"


def source_of(folder: Path) -> str:
    """An account's defs.yaml as errors name it: relative to the folder the command runs in, when inside it."""
    path = os.path.relpath(Path(folder) / "defs.yaml")
    return path if not path.startswith("..") else str(Path(folder).resolve() / "defs.yaml")


class AccountScaffolder(dg.Scaffolder):
    """`dg scaffold defs zchat_assets.ZchatAccount accounts/<name>` writes a commented defs.yaml."""

    text = staticmethod(scaffold_yaml)  # the defs.yaml of a component named after its folder

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = re.sub(r"[^a-z0-9_]", "_", request.target_path.name.lower())
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(self.text(name))


class YamlComponent(dg.Component):
    """A component of ours: the attributes its defs.yaml writes, and that file, as errors name it."""

    def __init__(self, attributes: dict, folder: Path):
        self.attributes, self.folder, self.source = attributes, folder, source_of(folder)

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> YamlComponent:
        return cls(attributes.model_dump(exclude_unset=True) if attributes is not None else {}, Path(context.path))


@dg.scaffold_with(AccountScaffolder)
class ZchatAccount(YamlComponent):
    """A Zenvia Chat account: its daily datasets as partitioned assets, checks, jobs, schedules, automation,
    the ongoing sensor and its resources. Assets are `zchat/<name>/<dataset>`, grouped by account."""

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return ATTRIBUTES

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_account_defs(from_yaml(self.attributes, os.environ, self.source), os.environ)


FLEET_ATTRIBUTES = create_model(
    "ZchatFleetAttributes", __config__=ConfigDict(extra="allow"),
    name=(Any, Field(default=None, description="Lower-case fleet name; assets are zchat/<name>/<dataset>.")),
    accounts=(Any, Field(default=None, description="The accounts: a list of {name, token_env, and any attribute "
                                                   "that differs for that account}.")),
    accounts_file=(Any, Field(default=None, description="Or: a YAML file next to this one holding that list.")),
    **{name: (Any, Field(default=None, description=f"Fleet-wide default: {field.description}"))
       for name, field in AccountSettings.model_fields.items() if name != "name"})


def scaffold_fleet_yaml(name: str) -> str:
    """A new fleet's defs.yaml: its name, the fleet-wide attributes every fleet decides, and one account."""
    defaults = AccountSettings(name=name)
    return (f"type: zchat_assets.ZchatFleet\nattributes:\n"
            f"  # Lower-case fleet name; assets are zchat/<name>/<dataset>, partitioned by account x day.\n"
            f"  name: {name}\n"
            "  # Fleet-wide defaults: any attribute of an account (docs/accounts.md), set again on an account's line\n"
            "  # where it differs; timezone, datasets, lookback_days and open_days_max are the fleet's alone.\n"
            f"  timezone: {defaults.timezone}\n  start_date: \"{defaults.start_date}\"\n  lake_uri: {defaults.lake_uri}\n"
            "  rate_limit: 20\n"
            "  # One line per account: its name, the NAME of its token's variable, and what differs for it\n"
            "  # (or accounts_file: accounts.yaml, the same list in a file next to this one).\n"
            "  accounts:\n    - {name: acme, token_env: ACME_ZCHAT_TOKEN}\n")


class FleetScaffolder(AccountScaffolder):
    """`dg scaffold defs zchat_assets.ZchatFleet fleets/<name>` writes a commented defs.yaml."""

    text = staticmethod(scaffold_fleet_yaml)


@dg.scaffold_with(FleetScaffolder)
class ZchatFleet(YamlComponent):
    """Many Zenvia Chat accounts (an outsourcer's clients) behind ten assets `zchat/<fleet>/<dataset>`,
    partitioned by account × day; every account attribute can be set fleet-wide, and per account."""

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return FLEET_ATTRIBUTES

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_fleet_defs(fleet_from_yaml(self.attributes, self.source, self.folder), os.environ)
