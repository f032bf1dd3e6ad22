"""A fleet's settings as a value: many accounts (an outsourcer's clients) in one `defs.yaml`.

A `zchat_assets.ZchatFleet` writes, beside its `name`, any account attribute as the fleet-wide default,
and `accounts` (a list: each item `name`, `token_env` and what differs for that account) or
`accounts_file` (the same list in a YAML file of its own, for hundreds). Each account is then an
`AccountSettings` judged by the same rules as a named account's, its errors naming the fleet's file and
the account. What shapes the fleet's assets is the same for every account of it: one time zone (the
partitions' days), one list of datasets, one look-back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from .settings import AccountSettings, SettingsError, named, prefix

FLEET_NAME = re.compile(r"[a-z0-9_]{1,40}")
# Attributes that shape the fleet's assets and schedules, so that an account cannot set them apart.
FLEET_WIDE = ("timezone", "datasets", "lookback_days", "open_days_max")


@dataclass(frozen=True)
class FleetSettings:
    name: str
    defaults: AccountSettings  # the fleet-wide attributes, as one account would have them
    accounts: tuple[AccountSettings, ...]
    source: str

    def account(self, name: str) -> AccountSettings:
        return next(a for a in self.accounts if a.name == name)

    @property
    def start_date(self) -> str:
        """The fleet's first partition: the earliest account's first day."""
        return min(a.start_date for a in self.accounts)


def fleet_from_yaml(attributes: Mapping, source: str, folder: Path) -> FleetSettings:
    """A fleet as its defs.yaml at `source` (in `folder`) writes it; `accounts_file` is read relative to it."""
    attributes = dict(attributes or {})
    name = attributes.pop("name", None)
    if not isinstance(name, str) or not FLEET_NAME.fullmatch(name):
        raise SettingsError(f"{prefix(source)}name is the fleet's name, lower-case letters, digits and _ (for "
                            "example bpo_south): its assets are zchat/<name>/<dataset>.")
    items = _items(attributes.pop("accounts", None), attributes.pop("accounts_file", None), source, folder)
    defaults = named({"name": name, **attributes}, source)
    accounts, seen = [], set()
    for number, item in enumerate(items):
        where = _where(source, number, item)
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise SettingsError(f"{where}: each account of accounts needs a name (and its token_env), as in "
                                "{name: acme, token_env: ACME_ZCHAT_TOKEN}.")
        if item["name"] in seen:
            raise SettingsError(f"{where}: account {item['name']} is listed twice: give each account one line.")
        seen.add(item["name"])
        account = named({**attributes, **item}, where)
        for attribute in FLEET_WIDE:
            if getattr(account, attribute) != getattr(defaults, attribute):
                raise SettingsError(f"{where}: {attribute} is the same for every account of a fleet (its assets "
                                    f"share it): put {item['name']} in another fleet, or set {attribute} for the "
                                    "whole fleet.")
        accounts.append(account)
    return FleetSettings(name, defaults, tuple(accounts), source)


def _items(accounts, accounts_file, source: str, folder: Path) -> list:
    if (accounts is None) == (accounts_file is None):
        raise SettingsError(f"{prefix(source)}a fleet lists its accounts in accounts (a list) or in accounts_file "
                            "(a YAML file holding that list), one of the two.")
    if accounts_file is not None:
        path = folder / str(accounts_file)
        try:
            accounts = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{prefix(source)}accounts_file {accounts_file} cannot be read "
                                f"({getattr(exc, 'strerror', None) or type(exc).__name__}): give a YAML file "
                                "next to the defs.yaml that lists the accounts.") from None
        if isinstance(accounts, Mapping):
            accounts = accounts.get("accounts")
    if not isinstance(accounts, list) or not accounts:
        raise SettingsError(f"{prefix(source)}accounts must be a list of at least one account, each as "
                            "{name: acme, token_env: ACME_ZCHAT_TOKEN}.")
    return accounts


def _where(source: str, number: int, item) -> str:
    """How errors name one account of a fleet: the fleet's file and the account (or its place in the list)."""
    label = item.get("name") if isinstance(item, Mapping) and isinstance(item.get("name"), str) else None
    return f"{source}, account {label}" if label else f"{source}, accounts[{number}]"

