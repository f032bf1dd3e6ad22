"""An account's or a fleet's Dagster definitions: assets, checks, jobs, schedules, sensors and resources."""

import json
from collections.abc import Mapping

from dagster import Definitions

from ..fleets import FleetSettings
from ..settings import AccountSettings
from .account import Account, Shape
from .automation import automation_sensor, jobs, schedules
from .checks import cross_checks
from .conversations import conversations_asset
from .fleet import Fleet
from .interactions import interactions_asset
from .ongoing import ongoing_spec
from .reports import report_assets
from .sensors import ongoing_sensor
from .vendor_retention import vendor_retention_definitions


def build_account_defs(settings: AccountSettings, environ: Mapping[str, str]) -> Definitions:
    """Everything of one account; `environ` is only asked whether the token is set and the hashing secret valid."""
    account = Account(settings)
    return build_defs(account, account.resources(environ))


def build_fleet_defs(settings: FleetSettings, environ: Mapping[str, str]) -> Definitions:
    """Everything of a fleet: as many definitions for a thousand accounts as for one."""
    fleet = Fleet(settings, environ)
    fleet.check(environ)
    return build_defs(fleet, {})


def build_defs(shape: Shape, resources: dict) -> Definitions:
    assets = [*report_assets(shape), *filter(None, [interactions_asset(shape)])]
    if shape.has("conversations"):
        assets.append(conversations_asset(shape))
    daily_job, refresh_job = jobs(shape)
    sensors = []
    if shape.has("ongoing"):
        assets.append(ongoing_spec(shape))
        sensors.append(ongoing_sensor(shape, refresh_job))
    if daily_job is not None:
        sensors.append(automation_sensor(shape))
    retention_checks, retention_jobs, retention_schedules = vendor_retention_definitions(shape)
    return Definitions(
        assets=assets, asset_checks=[*cross_checks(shape), *retention_checks],
        jobs=[*(j for j in (daily_job, refresh_job) if j is not None), *retention_jobs],
        schedules=[*(schedules(shape, daily_job) if daily_job is not None else []), *retention_schedules],
        sensors=sensors, resources=resources, metadata={lakes_key(shape): lakes(shape)},
    )


LAKES = "zchat/lakes/"  # the definitions' metadata says which accounts write which lakes


def lakes_key(shape: Shape) -> str:
    return f"{LAKES}{'fleet ' if shape.fleet else 'account '}{shape.name or '(unnamed)'}"


def lakes(shape: Shape) -> str:
    """The lakes the shape's accounts write, for the code location's check that no two writers share a part."""
    return json.dumps({m.name or "": m.settings.lake_uri for m in shape.members})


__all__ = ["Account", "Fleet", "build_account_defs", "build_fleet_defs"]
