"""What runs an account's assets without a click: jobs, two schedules, and declarative automation.

Two ways, both off until turned on in the UI's *Automation* page; use one of them:
- the schedules: `daily_schedule` (yesterday at 01:00) and `lookback_schedule` (at 04:30, the
  `lookback_days` days before yesterday again, in one ranged run), in the account's time zone;
- `automation_sensor`, which evaluates each asset's `AutomationCondition`: the same two crons for
  the API-backed assets, and `conversations` rebuilt eagerly whenever its inputs change.
Interactions created on a day often end days later (a customer answers the next morning): that is
what the look-back is for.
"""

from datetime import timedelta

from dagster import (AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus, JobDefinition,
                     RunRequest, ScheduleDefinition, ScheduleEvaluationContext, build_schedule_from_partitioned_job,
                     define_asset_job, schedule)

from .. import open_days
from ..settings import DATASETS
from .account import LOOKBACK_CRON, Account

DAILY = tuple(d for d in DATASETS if d != "ongoing")  # ongoing is polled by its sensor, not partitioned
REFRESHED_ON_END = ("history", "history_expanded", "messages", "conversations")


def jobs(account: Account) -> tuple[JobDefinition | None, JobDefinition | None]:
    """The daily job (every daily dataset) and the refresh job the ongoing sensor launches."""
    daily = [account.key(d) for d in DAILY if account.has(d)]
    refreshed = [account.key(d) for d in REFRESHED_ON_END if account.has(d)]
    daily_job = define_asset_job(
        account.named("daily_job"), selection=AssetSelection.assets(*daily),
        description="Every daily dataset (reports, history, messages, conversations) for the selected days.",
    ) if daily else None
    refresh_job = define_asset_job(
        account.named("refresh_day_job"), selection=AssetSelection.assets(*refreshed),
        description="Re-fetches a day's interactions and messages after some of them have ended.",
    ) if refreshed else None
    return daily_job, refresh_job


def lookback_range(now, keys: list[str], lookback_days: int) -> tuple[str, str] | None:
    """The days from yesterday - lookback_days to the day before yesterday that are partitions."""
    if len(keys) < 2:
        return None
    wanted = {(now - timedelta(days=d)).date().isoformat() for d in range(2, lookback_days + 2)}
    chosen = [k for k in keys[-(lookback_days + 2):] if k in wanted]
    return (chosen[0], chosen[-1]) if chosen else None


def still_open(account: Account, log) -> list[str]:
    """The account's days marked open in its lake (read only: nothing is claimed or written from here)."""
    try:
        return open_days.open_days(account.settings.lake())
    except (OSError, ValueError) as exc:
        log.warning(f"Days with interactions still going on could not be read from the lake ({exc}): only the "
                    "look-back days are fetched again this time.")
        return []


def schedules(account: Account, daily_job: JobDefinition) -> list[ScheduleDefinition]:
    days = account.settings.lookback_days
    daily = build_schedule_from_partitioned_job(
        daily_job, name=account.named("daily_schedule"), hour_of_day=1, minute_of_hour=0,
        description="Materializes yesterday (account time zone) at 01:00.",
    )

    @schedule(job=daily_job, cron_schedule=LOOKBACK_CRON, execution_timezone=account.settings.timezone,
              name=account.named("lookback_schedule"),
              description=f"At 04:30 re-materializes the {days} days before yesterday in one run (lookback_days), "
                          "so interactions that ended late are complete, and, one run each, older days that still "
                          f"had interactions going on (up to {account.settings.open_days_max} days back).")
    def lookback(context: ScheduleEvaluationContext):
        now = context.scheduled_execution_time
        keys = account.partitions.get_partition_keys(current_time=now)
        requests = []
        span = lookback_range(now, keys, days)
        if span is not None:
            first, last = span
            requests.append(RunRequest(run_key=f"lookback-{first}-{last}", tags={
                "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}))
        oldest = (now - timedelta(days=account.settings.open_days_max + 1)).date().isoformat()
        before = span[0] if span else keys[-1] if keys else ""
        for day in still_open(account, context.log):
            if oldest <= day < before and account.partitions.has_partition_key(day):
                requests.append(RunRequest(run_key=f"open-{day}-{now.date()}", partition_key=day))
        return requests

    return [daily, lookback]


def automation_sensor(account: Account) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        account.named("automation_sensor"), target=AssetSelection.assets(*(account.key(d) for d in DAILY
                                                                           if account.has(d))),
        default_status=DefaultSensorStatus.STOPPED,
        description="Runs the account's daily assets by their automation conditions (an alternative to the two "
                    "schedules: turn on one or the other).",
    )
