"""Schedules evaluated at chosen times in the account's time zone."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from zchat_assets.assets.schedules import LOOKBACK_DAYS
from zchat_assets.definitions import defs

TZ = ZoneInfo("America/Sao_Paulo")


def evaluate(name: str, when: datetime):
    schedule = defs.get_repository_def().get_schedule_def(name)
    return schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))


def test_daily_schedule_targets_yesterday_in_the_account_time_zone():
    # 01:00 in São Paulo on the 20th is 04:00 UTC: the day to fetch is the 19th, not the 20th.
    (request,) = evaluate("daily_schedule", datetime(2026, 11, 20, 1, 0, tzinfo=TZ)).run_requests
    assert request.partition_key == "2026-11-19"


def test_lookback_rematerializes_the_days_before_yesterday_in_one_run():
    (request,) = evaluate("lookback_schedule", datetime(2026, 11, 20, 4, 30, tzinfo=TZ)).run_requests
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-18"
    first = request.tags["dagster/asset_partition_range_start"]
    assert first == f"2026-11-{18 - LOOKBACK_DAYS + 1:02d}"
