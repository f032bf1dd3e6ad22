"""How an account appears in Dagster (keys, groups, pool, partitions, automation) and how a step works on it.

Two shapes share this: an `Account` (the unnamed one or a named one) and a `Fleet` (`fleet.py`), many
accounts behind ten assets. What a step does for a day is the same for both: it works on a `Member`,
one account with its settings, API client and lake.

The unnamed account (the single-account setup) keeps the keys and names zchat-assets always had
(`zchat/history`, `daily_job`, resources `zchat_api` and `zchat_lake`); a named account `acme` gets
`zchat/acme/history`, `acme_daily_job`, `zchat_api_acme`, one group `acme` and a pool of its own, so
several accounts live side by side in one code location.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

from dagster import (AssetExecutionContext, AssetKey, AutomationCondition, BackfillPolicy, DagsterInstance,
                     EnvVar, Failure, FreshnessPolicy, PartitionsDefinition)
from dagster._core.storage.runs import InMemoryRunStorage, SqliteRunStorage

from ..api import ZchatClient
from ..api.settings import ClientSettings
from ..lake import Lake
from ..privacy import Privacy
from ..resources import ZchatApi, ZchatLake
from ..settings import AccountSettings
from .budget import SENSOR_SHARE, Lease
from .partitions import AccountDays, Day, day_window

# Several days per run: a backfill of a month is one run per asset step, not thirty.
BACKFILL_POLICY = BackfillPolicy.single_run()
NIGHTLY_CRON = "0 1 * * *"  # yesterday, every night
LOOKBACK_CRON = "30 4 * * *"  # the look-back days, later the same night


class Member:
    """One account as a step works on it: its settings, its API client and lake, and how Dagster names
    its days. Where the resources come from is the shape's business (`api`, `lake_resource`)."""

    def __init__(self, settings: AccountSettings):
        self.settings, self.name = settings, settings.name

    def api(self, context) -> ZchatApi:
        raise NotImplementedError

    def lake_resource(self, context) -> ZchatLake:
        raise NotImplementedError

    def partition(self, day: str) -> str:
        """The Dagster partition key of one of the account's days."""
        return day

    @contextmanager
    def open_client(self, context, share: float | None = None, **overrides) -> Iterator[ZchatClient]:
        """A client of the account's API holding `share` of its rate limit; by default an API step's part:
        what the sensor leaves, shared with the steps of the same token running now, in any run on any
        machine (`budget.Lease`), so that they stay within the budget together and one alone gets all of it."""
        with self.api(context).open_client(context.log, share or 1 - SENSOR_SHARE, **overrides) as client:
            if share is not None or client.rate_limit is None:
                yield client
                return
            record = {"account": self.name, "run": context.run.run_id, "step": str(context.op_execution_context.node_handle)}
            with Lease(context.instance, client.budget_key, client.set_rate_share, record, context.log):
                yield client

    def lake(self, context) -> Lake:
        """The account's lake, probed and claimed first so that a bad URI or another origin's lake fails
        before any API request."""
        return self.lake_resource(context).open(is_local(context.instance))

    def privacy(self, context) -> Privacy:
        return self.lake_resource(context).privacy()


class Shape:
    """What Dagster sees of an account or a fleet: asset keys, groups, the pool, partitions, automation.
    `settings` holds what is the same for every account behind the assets (time zone, datasets, look-back)."""

    backfill_policy: BackfillPolicy = BACKFILL_POLICY
    fleet = False
    members: list[Member]

    def __init__(self, name: str | None, settings: AccountSettings, partitions: PartitionsDefinition,
                 days: AccountDays, pool: str | None):
        """`partitions` are the assets' own; `days` the calendar days among them; `pool` the concurrency pool
        of the API steps, which caps them across every run."""
        self.name, self.settings, self.partitions, self.days, self.pool = name, settings, partitions, days, pool

    def named(self, base: str) -> str:
        """A job, schedule or sensor name."""
        return f"{self.name}_{base}" if self.name else base

    def key(self, dataset: str) -> AssetKey:
        return AssetKey(["zchat", self.name, dataset] if self.name else ["zchat", dataset])

    def group(self, family: str) -> str:
        """One group per account or fleet; the unnamed account keeps its groups by family."""
        return self.name or family

    def has(self, dataset: str) -> bool:
        return dataset in self.settings.datasets

    def resource_keys(self, calls_api: bool) -> set[str]:
        return set()

    def run_tags(self, member: Member) -> dict[str, str]:
        """Tags of the runs the schedules and sensors launch for an account."""
        return {}

    def ongoing_partition(self, member: Member) -> str | None:
        return None

    def recent_days(self, member: Member, now) -> list[str]:
        """The last month of the account's days: those an ongoing interaction that ended may belong to."""
        return [d for d in self.days.get_partition_keys(current_time=now)[-31:] if d >= member.settings.start_date]

    def split(self, keys: list[str]) -> list[tuple[Member, list[str]]]:
        """Partition keys, account by account, as the days of each."""
        raise NotImplementedError

    def work(self, context: AssetExecutionContext) -> tuple[list[tuple[Member, list[Day]]], list[tuple[str, Failure]]]:
        """The run's days, account by account, as the API asks for them; and the partition keys refused, each
        with the sentence that says why."""
        return self.windows(context.partition_keys), []

    def windows(self, keys: list[str]) -> list[tuple[Member, list[Day]]]:
        return [(member, [day_window(day, self.settings.timezone) for day in days])
                for member, days in self.split(keys)]

    def asset_args(self, dataset: str, family: str, *, calls_api: bool = True) -> dict:
        """What every daily asset has in common, for `@asset`."""
        return {**self.spec_args(dataset, family, calls_api=calls_api), **self.step_args(calls_api)}

    def spec_args(self, dataset: str, family: str, *, calls_api: bool = True) -> dict:
        """What every daily asset has in common, for its `AssetSpec`."""
        return dict(
            key=self.key(dataset), group_name=self.group(family), partitions_def=self.partitions,
            freshness_policy=self.freshness, kinds={"api", "parquet"} if calls_api else {"parquet"},
            automation_condition=self.api_condition() if calls_api else self.downstream_condition(),
        )

    def step_args(self, calls_api: bool = True) -> dict:
        """What every step of daily assets has in common: its backfill policy, pool and resources."""
        return dict(partitions_def=self.partitions, backfill_policy=self.backfill_policy,
                    pool=self.pool if calls_api else None, required_resource_keys=self.resource_keys(calls_api))

    def api_condition(self) -> AutomationCondition:
        """Yesterday after 01:00, and the look-back days before it after 04:30, in the time zone of the
        days: interactions created on a day often end days later."""
        tz = self.settings.timezone
        lookback = (AutomationCondition.in_latest_time_window(timedelta(days=self.settings.lookback_days + 1))
                    & ~AutomationCondition.in_latest_time_window()
                    & AutomationCondition.cron_tick_passed(LOOKBACK_CRON, tz).since_last_handled()
                    & ~AutomationCondition.in_progress())
        nightly = AutomationCondition.on_cron(NIGHTLY_CRON, tz)
        return (nightly | lookback.with_label(f"look-back of {self.settings.lookback_days} days on cron "
                                              f"'{LOOKBACK_CRON}' ({tz})"))

    def downstream_condition(self) -> AutomationCondition:
        """Eager, over the same days as the look-back: rebuilt whenever its inputs change."""
        window = timedelta(days=self.settings.lookback_days + 1)
        return AutomationCondition.eager().replace(AutomationCondition.in_latest_time_window(),
                                                   AutomationCondition.in_latest_time_window(window))

    @cached_property
    def freshness(self) -> FreshnessPolicy:
        """Yesterday is expected by 06:00 in the time zone of the days (the nightly run starts at 01:00). One
        policy for every asset: Dagster checks each one it is given against a thousand ticks of its cron."""
        return FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=6),
                                    timezone=self.settings.timezone)


class ResourceMember(Member):
    """An account whose API and lake are resources of the code location, under its own keys."""

    def __init__(self, settings: AccountSettings, api_key: str, lake_key: str):
        super().__init__(settings)
        self.api_key, self.lake_key = api_key, lake_key

    def api(self, context) -> ZchatApi:
        return getattr(context.resources, self.api_key)

    def lake_resource(self, context) -> ZchatLake:
        return getattr(context.resources, self.lake_key)


class Account(Shape):
    """One account: the unnamed one or a named one, with its own resources and pool."""

    def __init__(self, settings: AccountSettings):
        days = AccountDays(start_date=settings.start_date, timezone=settings.timezone)
        self.api_key, self.lake_key = suffixed("zchat_api", settings.name), suffixed("zchat_lake", settings.name)
        super().__init__(settings.name, settings, days, days, pool=self.api_key)  # the pool is named as the API
        self.member = ResourceMember(settings, self.api_key, self.lake_key)
        self.members = [self.member]

    def resource_keys(self, calls_api: bool) -> set[str]:
        return {self.api_key, self.lake_key} if calls_api else {self.lake_key}

    def resources(self, environ: Mapping[str, str]) -> dict:
        """Secrets go in as `EnvVar`s, so that only their names reach the UI."""
        check_secrets(self.settings, environ)
        return {self.api_key: api_resource(self.settings, environ, EnvVar),
                self.lake_key: lake_resource(self.settings, environ, EnvVar)}

    def split(self, keys: list[str]) -> list[tuple[Member, list[str]]]:
        return [(self.member, list(keys))] if keys else []

    def work(self, context: AssetExecutionContext):
        """A run can name days that are no longer partitions (re-executed after the start date moved): then
        our sentence, not the invariant Dagster would fail with."""
        asked = context.partition_key_range
        for key in (asked.start, asked.end):
            if not self.partitions.has_partition_key(key):
                raise Failure(self.partitions.outside(key), allow_retries=False)
        return super().work(context)


def suffixed(base: str, name: str | None) -> str:
    """A resource key of an account: `zchat_api` for the unnamed one, `zchat_api_acme` for acme."""
    return f"{base}_{name}" if name else base


def secret_value(environ: Mapping[str, str], variable: str, secret=None):
    """A secret as a resource takes it: through `secret` (`EnvVar`) or, without it, the value `environ` holds;
    None when the variable is unset, so that the run fails in our sentence (see `ZchatApi`), not Dagster's."""
    if not environ.get(variable):
        return None
    return secret(variable) if secret else environ[variable]


def api_resource(settings: AccountSettings, environ: Mapping[str, str], secret=None) -> ZchatApi:
    """An account's API: its token and the client's settings."""
    client = {name: getattr(settings, name) for name in ClientSettings.model_fields}
    return ZchatApi(token=secret_value(environ, settings.token_env, secret),
                    token_variable=settings.secret_variable("token_env"), **client)


def lake_resource(settings: AccountSettings, environ: Mapping[str, str], secret=None) -> ZchatLake:
    """An account's lake: where it is, whose it is, and how personal data is written there."""
    return ZchatLake(uri=settings.lake_uri, account=settings.name, uri_setting=settings.setting("lake_uri"),
                     uri_is_default="lake_uri" not in settings.model_fields_set,
                     host=urlsplit(settings.base_url).hostname, timezone=settings.timezone,
                     personal_data=settings.personal_data, personal_data_text=settings.personal_data_text,
                     personal_data_key_variable=settings.secret_variable("personal_data_key_env"),
                     personal_data_key=secret_value(environ, settings.personal_data_key_env, secret))


def check_secrets(settings: AccountSettings, environ: Mapping[str, str]) -> None:
    """What stops the load: a token pasted into token_env (never echoed), a missing or short hashing secret."""
    settings.check_secret_names(environ)
    settings.privacy(environ)


def is_local(instance: DagsterInstance) -> bool:
    """An instance whose runs all happen on this machine (SQLite or in memory: `dagster dev`, the demo)."""
    return isinstance(instance.run_storage, (SqliteRunStorage, InMemoryRunStorage))
