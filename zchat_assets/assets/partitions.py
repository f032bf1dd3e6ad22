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
    (`from=2021-04-01T06:00:00`, `timezone=-0300`)."""

    key: str
    offset: str  # the zone's UTC offset at the day's start, as the API writes it: -0300

    @property
    def start(self) -> str:
        return f"{self.key}T00:00:00"

    @property
    def end(self) -> str:
        return f"{self.key}T23:59:59"

    @property
    def zone(self) -> timezone:
        """The offset the request asks for: what a timestamp the API sends without one is local to."""
        minutes = int(self.offset[1:3]) * 60 + int(self.offset[3:])
        return timezone(timedelta(minutes=-minutes if self.offset[0] == "-" else minutes))


def day_window(key: str, tz_name: str) -> Day:
    """The API window of a local day. A day with a DST change is queried with its midnight offset."""
    midnight = datetime.combine(date.fromisoformat(key), time(), ZoneInfo(tz_name))
    minutes = int(midnight.utcoffset() / timedelta(minutes=1))
    sign = "-" if minutes < 0 else "+"
    return Day(key, f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}")


def local_day(moment: datetime, tz_name: str) -> str:
    return moment.astimezone(ZoneInfo(tz_name)).date().isoformat()
