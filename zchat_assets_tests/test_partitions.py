"""The API window of a day in the account's time zone, across daylight-saving changes; days outside
the partitions."""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from dagster._core.definitions.partitions.context import partition_loading_context

from zchat_assets.assets.partitions import AccountDays, OutsideThePartitions, day_window, local_day
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World

from .conftest import NOW, TOKEN, account_defs, daily_assets, fast_api, materialize_some, only
from .truth import assert_lake_matches, protocols


@pytest.mark.parametrize("key,zone,offset", [
    ("2026-11-18", "America/Sao_Paulo", "-0300"),
    ("2026-11-18", "UTC", "+0000"),
    ("2026-11-18", "Asia/Kolkata", "+0530"),
    ("2026-03-08", "America/New_York", "-0500"),  # clocks go forward at 02:00: midnight's offset is used
    ("2026-03-09", "America/New_York", "-0400"),
    ("2026-11-01", "America/New_York", "-0400"),  # clocks go back at 02:00
    ("2026-10-25", "Europe/Lisbon", "+0100"),
    ("2018-11-04", "America/Sao_Paulo", "-0300"),  # Brazil's last DST start, at midnight itself
])
def test_day_window(key, zone, offset):
    day = day_window(key, zone)
    assert (day.offset, day.start) == (offset, f"{key}T00:00:00")
    assert datetime(2026, 1, 1, tzinfo=day.zone).strftime("%z") == offset  # the zone of offset-less timestamps


@pytest.mark.parametrize("moment,zone,day", [
    (datetime(2026, 11, 19, 2, 59, tzinfo=timezone.utc), "America/Sao_Paulo", "2026-11-18"),
    (datetime(2026, 11, 19, 3, 0, tzinfo=timezone.utc), "America/Sao_Paulo", "2026-11-19"),
    (datetime(2026, 11, 18, 23, 0, tzinfo=timezone.utc), "Asia/Tokyo", "2026-11-19"),
])
def test_local_day(moment, zone, day):
    assert local_day(moment, zone) == day


@pytest.mark.parametrize("key", ["2024-12-31", "2999-01-01", "2025-1-2", "yesterday"])
def test_a_day_outside_the_partitions_is_refused_in_a_sentence_naming_the_range_and_the_setting(key):
    days = AccountDays(start_date="2025-01-01", timezone="America/Sao_Paulo")
    with partition_loading_context() as context, pytest.raises(OutsideThePartitions) as refused:
        days.validate_partition_key(key, context)
    assert refused.value.message.startswith(f"{key} is not one of the partitions, which run from 2025-01-01 "
                                            "(the start date: ZCHAT_START_DATE, or start_date in a named account's")
    assert f"to {days.get_last_partition_key()} (yesterday in America/Sao_Paulo)" in refused.value.message


def test_a_day_inside_the_partitions_is_accepted():
    days = AccountDays(start_date="2025-01-01", timezone="America/Sao_Paulo")
    with partition_loading_context() as context:
        days.validate_partition_key("2025-01-01", context)
        days.validate_partition_key(days.get_last_partition_key(), context)


@pytest.mark.parametrize("asset", ["history", "conversations"])
def test_a_run_naming_a_day_that_is_no_longer_a_partition_fails_in_that_sentence(asset, tmp_path):
    """A run re-executed after the start date moved: our sentence, before any request."""
    result = materialize_some(only(asset), tags={"dagster/partition": "2026-09-30"}, raise_on_error=False,
                              resources={"zchat_api": fast_api("http://127.0.0.1:9", max_retries=0),
                                         "zchat_lake": ZchatLake(uri=str(tmp_path / "lake"))})
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.user_failure_data.description.startswith(
        "2026-09-30 is not one of the partitions, which run from 2026-10-01")
    assert not list((tmp_path / "lake").rglob("*.parquet"))


@pytest.mark.parametrize("key,zone,offset,end,hours", [
    ("2026-11-18", "America/Sao_Paulo", "-0300", "2026-11-18T23:59:59", 24),
    ("2026-11-01", "America/New_York", "-0400", "2026-11-02T00:59:59", 25),  # the clock goes back at 02:00
    ("2026-03-08", "America/New_York", "-0500", "2026-03-08T22:59:59", 23),  # and forward
    ("2026-09-06", "America/Santiago", "-0400", "2026-09-06T22:59:59", 23),  # midnight itself is skipped
    ("2026-04-04", "America/Santiago", "-0300", "2026-04-05T00:59:59", 25),
])
def test_a_day_is_its_local_calendar_day_in_the_offset_of_its_start(key, zone, offset, end, hours):
    day = day_window(key, zone)
    assert (day.offset, day.end) == (offset, end)
    first = datetime.fromisoformat(day.start).replace(tzinfo=day.zone)
    last = datetime.fromisoformat(day.end).replace(tzinfo=day.zone)
    assert last - first == timedelta(hours=hours, seconds=-1)
    following = day_window((date.fromisoformat(key) + timedelta(days=1)).isoformat(), zone)
    assert datetime.fromisoformat(following.start).replace(tzinfo=following.zone) - last == timedelta(seconds=1)


@pytest.mark.parametrize("days", [("2026-10-31", "2026-11-01", "2026-11-02"), ("2026-03-07", "2026-03-08", "2026-03-09")],
                         ids=["fall_back", "spring_forward"])
def test_every_interaction_lands_in_exactly_one_day_around_a_clock_change(tmp_path, days):
    world = World(seed=5, scale=400, tz="America/New_York", now=lambda: NOW)
    assets = daily_assets(account_defs(timezone="America/New_York", start_date="2026-03-01"))
    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
        result = materialize_some([*assets], resources=resources, instance=dg.DagsterInstance.ephemeral(),
                                  tags={"dagster/asset_partition_range_start": days[0],
                                      "dagster/asset_partition_range_end": days[-1]})
    assert result.success
    lake, seen = Lake(str(tmp_path)), []
    for day in days:
        assert_lake_matches(lake, world, day)
        seen.extend(lake.read("history", day).column("protocol_id").to_pylist())
    assert len(seen) == len(set(seen)) == sum(len(protocols(world, day)) for day in days)
