"""An account's daily partitions, and the API window of one: a day in the account's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import click
from dagster import DagsterUnknownPartitionError, DailyPartitionsDefinition


class OutsideThePartitions(click.ClickException):
    """A day asked for that is not a partition. A click error, so that `dagster asset materialize` and
    `dg launch` print just its sentence (Dagster's CLI replaces its own error with a generic one)."""


class AccountDays(DailyPartitionsDefinition):
    """Daily partitions that refuse a day outside them in a sentence saying where they start and end."""

    def validate_partition_key(self, partition_key, context) -> None:
        try:
            super().validate_partition_key(partition_key, context)
        except DagsterUnknownPartitionError:
            raise OutsideThePartitions(self.outside(partition_key)) from None

    def outside(self, key: str) -> str:
        first, last = self.get_first_partition_key(), self.get_last_partition_key()
        return (f"{key} is not one of the partitions, which run from {first} (the start date: ZCHAT_START_DATE, "
                f"or start_date in a named account's defs.yaml) to {last} (yesterday in {self.timezone}): give "
                "a day in that range as YYYY-MM-DD.")


@dataclass(frozen=True)
class Day:
    """A partition and the parameters the API wants for it, in the form of the document's examples
    (`from=2021-04-01T06:00:00`, `timezone=-0300`).

    The API takes one UTC offset per request, so the whole local day is asked in the offset of its start:
    `from` its midnight, `to` its last second in that same offset. On a day when the clock changes that
    last second is not 23:59:59: the day is 25 hours long in autumn (`to` is 00:59:59 of the next date)
    and 23 in spring (22:59:59). Days abut exactly, so every interaction lands in exactly one day, and
    every dataset, reports included, covers the same instants with one request (or one paging walk)."""

    key: str
    offset: str  # the zone's UTC offset at the day's start, as the API writes it: -0300
    end: str  # the day's last second, as a local time of that offset

    @property
    def start(self) -> str:
        return f"{self.key}T00:00:00"

    @property
    def zone(self) -> timezone:
        """The offset the request asks for: what a timestamp the API sends without one is local to."""
        minutes = int(self.offset[1:3]) * 60 + int(self.offset[3:])
        return timezone(timedelta(minutes=-minutes if self.offset[0] == "-" else minutes))


def day_window(key: str, tz_name: str) -> Day:
    """The API window of a local day: 23, 24 or 25 hours from its midnight, in the offset of that midnight."""
    first = date.fromisoformat(key)
    midnight = datetime.combine(first, time(), ZoneInfo(tz_name))
    next_midnight = datetime.combine(first + timedelta(days=1), time(), ZoneInfo(tz_name))
    minutes = int(midnight.utcoffset() / timedelta(minutes=1))
    sign = "-" if minutes < 0 else "+"
    day = Day(key, f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}", "")
    last = next_midnight.astimezone(timezone.utc) - timedelta(seconds=1)  # in UTC: no wall-clock arithmetic
    return Day(key, day.offset, last.astimezone(day.zone).strftime("%Y-%m-%dT%H:%M:%S"))


def local_day(moment: datetime, tz_name: str) -> str:
    return moment.astimezone(ZoneInfo(tz_name)).date().isoformat()
