"""Schedules in the account's time zone: yesterday every night, and a look-back over the days before.

Interactions created on a day can end days later (a customer answers the next morning), so the
look-back re-materializes the few days before yesterday, in one ranged run.
"""

from datetime import timedelta

from dagster import RunRequest, ScheduleEvaluationContext, build_schedule_from_partitioned_job, schedule

from .. import settings
from .jobs import daily_job
from .partitions import TIMEZONE, daily_partitions

LOOKBACK_DAYS = settings.lookback_days()

daily_schedule = build_schedule_from_partitioned_job(
    daily_job, name="daily_schedule", hour_of_day=1, minute_of_hour=0,
    description="Materializes yesterday (account time zone) at 01:00.",
)


def lookback_range(context: ScheduleEvaluationContext) -> tuple[str, str] | None:
    """The days from yesterday - LOOKBACK_DAYS to the day before yesterday that are partitions."""
    now = context.scheduled_execution_time
    keys = daily_partitions.get_partition_keys(current_time=now)
    if len(keys) < 2:
        return None
    wanted = {(now - timedelta(days=d)).date().isoformat() for d in range(2, LOOKBACK_DAYS + 2)}
    chosen = [k for k in keys[-(LOOKBACK_DAYS + 2):] if k in wanted]
    return (chosen[0], chosen[-1]) if chosen else None


@schedule(job=daily_job, cron_schedule="30 4 * * *", execution_timezone=TIMEZONE, name="lookback_schedule",
          description=f"At 04:30 re-materializes the {LOOKBACK_DAYS} days before yesterday in one run "
                      "(ZCHAT_LOOKBACK_DAYS), so interactions that ended late are complete.")
def lookback_schedule(context: ScheduleEvaluationContext):
    span = lookback_range(context)
    if span is None:
        return []
    first, last = span
    return RunRequest(run_key=f"lookback-{first}-{last}", tags={
        "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
