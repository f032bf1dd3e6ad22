"""The `zchat_assets.ZchatAccount` component: one Zenvia Chat account per `defs.yaml`.

Its attributes are `AccountSettings`' fields, so YAML is checked by the same rules as everything
else. An account without `name` is the single-account setup: each attribute its YAML leaves out is
read from its `ZCHAT_*` variable, and its assets keep the keys `zchat/<dataset>`.
"""

from __future__ import annotations

import os
import re

import dagster as dg

from .assets import build_account_defs
from .settings import AccountSettings, from_environment, named

TEMPLATE = """\
type: zchat_assets.ZchatAccount
attributes:
  name: {name}
  token_env: {env}_ZCHAT_TOKEN      # the NAME of the variable that holds this account's token
  timezone: America/Sao_Paulo
  start_date: "2025-01-01"
  lake_uri: ./data                  # accounts may share a lake: each writes <dataset>/account={name}/
  # datasets: [history, history_expanded, messages, conversations]   # default: all
  # filters: {{departments: ["11"], types: [WHATSAPP]}}
  # personal_data: hash             # keep, hash or drop
  # personal_data_key_env: {env}_PERSONAL_DATA_KEY
  # concurrency: 8
  # rate_limit: 20                  # requests per second for this account
  # lookback_days: 3
"""


class AccountScaffolder(dg.Scaffolder):
    """`dg scaffold defs zchat_assets.ZchatAccount accounts/<name>` writes a commented defs.yaml."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = re.sub(r"[^a-z0-9_]", "_", request.target_path.name.lower())
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(TEMPLATE.format(name=name, env=name.upper()))


@dg.scaffold_with(AccountScaffolder)
class ZchatAccount(dg.Component, dg.Resolvable, AccountSettings):
    """A Zenvia Chat account: its daily datasets as partitioned assets, checks, jobs, schedules, automation,
    the ongoing sensor and its resources. Assets are `zchat/<name>/<dataset>`, grouped by account."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_account_defs(self.settings(os.environ), os.environ)

    def settings(self, environ) -> AccountSettings:
        given = self.model_dump(include=self.model_fields_set)
        return named(given) if self.name else from_environment(environ, **given)
