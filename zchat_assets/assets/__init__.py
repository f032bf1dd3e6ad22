"""One account's Dagster definitions: assets, checks, jobs, schedules, sensors and resources."""

from collections.abc import Mapping

from dagster import Definitions

from ..settings import AccountSettings
from .account import Account
from .automation import automation_sensor, jobs, schedules
from .checks import cross_checks
from .conversations import conversations_asset
from .history import history_assets
from .messages import messages_asset
from .ongoing import ongoing_spec
from .reports import report_assets
from .sensors import ongoing_sensor


def build_account_defs(settings: AccountSettings, environ: Mapping[str, str]) -> Definitions:
    """Everything of one account; `environ` is only asked whether the token is set and the hashing secret valid."""
    account = Account(settings)
    assets = [*report_assets(account), *history_assets(account)]
    if account.has("messages"):
        assets.append(messages_asset(account))
    if account.has("conversations"):
        assets.append(conversations_asset(account))
    daily_job, refresh_job = jobs(account)
    sensors = []
    if account.has("ongoing"):
        assets.append(ongoing_spec(account))
        sensors.append(ongoing_sensor(account, refresh_job))
    if daily_job is not None:
        sensors.append(automation_sensor(account))
    return Definitions(
        assets=assets, asset_checks=cross_checks(account),
        jobs=[j for j in (daily_job, refresh_job) if j is not None],
        schedules=schedules(account, daily_job) if daily_job is not None else [],
        sensors=sensors, resources=account.resources(environ),
    )


__all__ = ["Account", "build_account_defs"]
