"""The API window of a day in the account's time zone, across daylight-saving changes."""

from datetime import datetime, timezone

import pytest

from zchat_assets.assets.partitions import day_window, local_day


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
    assert (day.offset, day.start, day.end) == (offset, f"{key}T00:00:00", f"{key}T23:59:59")
    assert datetime(2026, 1, 1, tzinfo=day.zone).strftime("%z") == offset  # the zone of offset-less timestamps


@pytest.mark.parametrize("moment,zone,day", [
    (datetime(2026, 11, 19, 2, 59, tzinfo=timezone.utc), "America/Sao_Paulo", "2026-11-18"),
    (datetime(2026, 11, 19, 3, 0, tzinfo=timezone.utc), "America/Sao_Paulo", "2026-11-19"),
    (datetime(2026, 11, 18, 23, 0, tzinfo=timezone.utc), "Asia/Tokyo", "2026-11-19"),
])
def test_local_day(moment, zone, day):
    assert local_day(moment, zone) == day
