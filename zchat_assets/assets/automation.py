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
                     RunRequest, ScheduleDefinition, ScheduleEvaluationContext, define_asset_job, schedule)

from .. import open_days
from ..settings import DATASETS
from .account import LOOKBACK_CRON, NIGHTLY_CRON, Shape
from .vendor_retention import check_key

DAILY = tuple(d for d in DATASETS if d != "ongoing")  # ongoing is polled by its sensor, not partitioned
REFRESHED_ON_END = ("history", "history_expanded", "messages", "conversations")


def jobs(shape: Shape) -> tuple[JobDefinition | None, JobDefinition | None]:
    """The daily job (every daily dataset) and the refresh job the ongoing sensor launches."""
    daily = [shape.key(d) for d in DAILY if shape.has(d)]
    refreshed = [shape.key(d) for d in REFRESHED_ON_END if shape.has(d)]
    # The vendor-retention check scans the whole lake: it runs in its own job, not in every day's run.
    whole_lake = AssetSelection.checks(*filter(None, [check_key(shape)]))
    daily_job = define_asset_job(
        shape.named("daily_job"), selection=AssetSelection.assets(*daily) - whole_lake,
        description="Every daily dataset (reports, history, messages, conversations) for the selected days.",
    ) if daily else None
    refresh_job = define_asset_job(
        shape.named("refresh_day_job"), selection=AssetSelection.assets(*refreshed) - whole_lake,
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


def still_open(shape: Shape, log) -> dict[str | None, list[str]]:
    """The days marked open in the lake, by account (read only: nothing is claimed or written from here)."""
    try:
        return open_days.open_days_by_account([m.settings.lake() for m in shape.members])
    except (OSError, ValueError) as exc:
        log.warning(f"Days with interactions still going on could not be read from the lake ({exc}): only the "
                    "look-back days are fetched again this time.")
        return {}


def schedules(shape: Shape, daily_job: JobDefinition) -> list[ScheduleDefinition]:
    days = shape.settings.lookback_days
    timezone = shape.settings.timezone

    @schedule(job=daily_job, cron_schedule=NIGHTLY_CRON, execution_timezone=timezone, name=shape.named("daily_schedule"),
              description="Materializes yesterday at 01:00 (the account's time zone)"
                          f"{', one run per account' if shape.fleet else ''}.")
    def nightly(context: ScheduleEvaluationContext):
        keys = shape.days.get_partition_keys(current_time=context.scheduled_execution_time)
        return [RunRequest(run_key=f"nightly-{member.partition(keys[-1])}", partition_key=member.partition(keys[-1]),
                           tags=shape.run_tags(member))
                for member in shape.members if keys and member.settings.start_date <= keys[-1]]

    @schedule(job=daily_job, cron_schedule=LOOKBACK_CRON, execution_timezone=timezone,
              name=shape.named("lookback_schedule"),
              description=f"At 04:30 re-materializes the {days} days before yesterday (lookback_days) in one run"
                          f"{' per account' if shape.fleet else ''}, so interactions that ended late are complete, "
                          "and, one run each, older days that still had interactions going on (up to "
                          f"{shape.settings.open_days_max} days back).")
    def lookback(context: ScheduleEvaluationContext):
        now = context.scheduled_execution_time
        keys = shape.days.get_partition_keys(current_time=now)
        oldest = (now - timedelta(days=shape.settings.open_days_max + 1)).date().isoformat()
        opened = still_open(shape, context.log)
        requests = []
        for member in shape.members:
            tags = shape.run_tags(member)
            span = lookback_range(now, [k for k in keys if k >= member.settings.start_date], days)
            if span is not None:
                first, last = (member.partition(day) for day in span)
                requests.append(RunRequest(run_key=f"lookback-{first}-{last}", tags={
                    **tags, "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}))
            before = span[0] if span else keys[-1] if keys else ""
            for day in opened.get(member.name, []):
                if oldest <= day < before and member.settings.start_date <= day and shape.days.has_partition_key(day):
                    requests.append(RunRequest(run_key=f"open-{member.partition(day)}-{now.date()}",
                                               partition_key=member.partition(day), tags=tags))
        return requests

    return [nightly, lookback]


def automation_sensor(shape: Shape) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        shape.named("automation_sensor"), target=AssetSelection.assets(*(shape.key(d) for d in DAILY if shape.has(d))),
        default_status=DefaultSensorStatus.STOPPED,
        description="Runs the daily assets by their automation conditions (an alternative to the two schedules: "
                    "turn on one or the other).",
    )
