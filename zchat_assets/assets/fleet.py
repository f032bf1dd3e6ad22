"""A fleet in Dagster: ten assets for any number of accounts, partitioned by account × day.

The assets are `zchat/<fleet>/<dataset>`, with a `MultiPartitionsDefinition` whose dimensions are
`account` and `date` (a key reads `acme|2026-11-30`), so the code location holds as many assets, jobs,
schedules and sensors for a thousand accounts as for one. Each account writes the named accounts' layout,
`<lake>/<dataset>/account=<name>/date=<day>/`, so a lake written by named accounts carries on under a fleet.
An account's API and lake are built, when a step needs them, from its settings and the token variable it
names: a thousand accounts are no thousand resources to load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import (AssetExecutionContext, BackfillPolicy, Failure, MultiPartitionKey, MultiPartitionsDefinition,
                     StaticPartitionsDefinition)

from ..fleets import FleetSettings
from ..resources import ZchatApi, ZchatLake
from ..settings import AccountSettings
from .account import Member, Shape, api_resource, check_secrets, lake_resource
from .partitions import AccountDays, OutsideThePartitions

# A backfill is cut in runs of this many partitions at most: Dagster records each run's days as it ends, so a
# killed run loses at most this many days' record (their data stays in the lake and its cache). Dagster cuts
# along the dimension with fewer keys in the backfill: days of one account when there are fewer accounts
# than days, else one day of several accounts.
CHUNK_DAYS = 7
ACCOUNT_TAG = "zchat/account"  # on the runs of one account: the run queue limits runs per account by it


class FleetDays(MultiPartitionsDefinition):
    """Accounts × days, refusing in one sentence a key of an account not in the fleet, or a day that is not
    one of that account's (before its start_date, or not yet over)."""

    def __init__(self, fleet: FleetSettings, days: AccountDays):
        self.accounts = StaticPartitionsDefinition([a.name for a in fleet.accounts])
        super().__init__({"account": self.accounts, "date": days})
        self.fleet, self.days = fleet, days
        self._starts = {a.name: a.start_date for a in fleet.accounts}

    def validate_partition_key(self, partition_key, context=None) -> None:
        problem = self.problem(str(partition_key))
        if problem:
            raise OutsideThePartitions(problem)
        super().validate_partition_key(partition_key, context)

    def problem(self, key: str) -> str | None:
        """What is wrong with a partition key, in one sentence; None when it is one of the fleet's."""
        account, _, day = key.partition("|")
        if not day or account not in self._starts:
            names = list(self._starts)
            return (f"{key} is not one of fleet {self.fleet.name}'s partitions: give account|YYYY-MM-DD with one "
                    f"of its accounts ({', '.join(names[:5])}{', …' if len(names) > 5 else ''}), e.g. "
                    f"{names[0]}|{self.days.get_last_partition_key()}.")
        start = self._starts[account]
        if not self.days.has_partition_key(day) or day < start:
            return (f"{day} is not one of account {account}'s days in fleet {self.fleet.name}, which run from "
                    f"{start} (its start_date in {self.fleet.source}) to {self.days.get_last_partition_key()} "
                    f"(yesterday in {self.days.timezone}): give a day in that range as YYYY-MM-DD.")
        return None


class FleetMember(Member):
    """An account of a fleet: its API and lake are built from its settings when a step needs them, the token
    read from the variable its `token_env` names, in the process that runs the step."""

    def __init__(self, settings: AccountSettings, environ: Mapping[str, str] = os.environ):
        super().__init__(settings)
        self._environ = environ

    def api(self, context) -> ZchatApi:
        return api_resource(self.settings, self._environ)

    def lake_resource(self, context) -> ZchatLake:
        return lake_resource(self.settings, self._environ)

    def partition(self, day: str) -> str:
        return str(MultiPartitionKey({"account": self.name, "date": day}))


class Fleet(Shape):
    backfill_policy = BackfillPolicy.multi_run(CHUNK_DAYS)
    fleet = True

    def __init__(self, settings: FleetSettings, environ: Mapping[str, str] = os.environ):
        days = AccountDays(start_date=settings.start_date, timezone=settings.defaults.timezone)
        # No pool: a fleet-wide one would cap the steps of all its accounts together. The run queue caps runs
        # per account (ACCOUNT_TAG), and each token's budget is shared by its running steps (`budget.Lease`).
        super().__init__(settings.name, settings.defaults, FleetDays(settings, days), days, pool=None)
        self.members = [FleetMember(account, environ) for account in settings.accounts]
        self._by_name = {m.name: m for m in self.members}
        self.accounts = self.partitions.accounts

    def check(self, environ: Mapping[str, str]) -> None:
        """What would stop an account's runs and can be told at load: a token pasted where its variable's name
        belongs, a missing or short hashing secret."""
        for member in self.members:
            check_secrets(member.settings, environ)

    def split(self, keys: list[str]) -> list[tuple[Member, list[str]]]:
        by_account: dict[str, list[str]] = {}
        for key in keys:
            account, _, day = key.partition("|")
            by_account.setdefault(account, []).append(day)
        return [(self._by_name[name], days) for name, days in by_account.items()]

    def work(self, context: AssetExecutionContext):
        """A day that is not one of its account's (before its start_date) is refused in one sentence and nothing
        is fetched for it, and only that account's days are refused: the run's other accounts go on. A run with
        nothing else to do fails with that sentence, before any request."""
        keys, refused = [], []
        for key in context.partition_keys:
            problem = self.partitions.problem(key)
            if problem:
                refused.append((key, Failure(problem, allow_retries=False)))
            else:
                keys.append(key)
        if refused and not keys:
            raise refused[0][1]
        return self.windows(keys), refused

    def run_tags(self, member: Member) -> dict[str, str]:
        return {ACCOUNT_TAG: member.name}

    def ongoing_partition(self, member: Member) -> str | None:
        return member.name
