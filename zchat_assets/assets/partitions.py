"""Daily partitions in the account's time zone, and the API window of each day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dagster import BackfillPolicy, DailyPartitionsDefinition

from .. import settings

TIMEZONE = settings.timezone_name()
daily_partitions = DailyPartitionsDefinition(start_date=settings.start_date(TIMEZONE), timezone=TIMEZONE)
# Several days per run: a backfill of a month is one run per asset step, not thirty.
backfill_policy = BackfillPolicy.single_run()


@dataclass(frozen=True)
class Day:
    """A partition and the parameters the API wants for it."""

    key: str
    offset: str  # the zone's UTC offset at the day's start, as the API writes it: -0300

    @property
    def start(self) -> str:
        return f"{self.key} 00:00:00"

    @property
    def end(self) -> str:
        return f"{self.key} 23:59:59"


def day_window(key: str, tz_name: str = TIMEZONE) -> Day:
    """The API window of a local day. A day with a DST change is queried with its midnight offset."""
    midnight = datetime.combine(date.fromisoformat(key), time(), ZoneInfo(tz_name))
    minutes = int(midnight.utcoffset() / timedelta(minutes=1))
    sign = "-" if minutes < 0 else "+"
    return Day(key, f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}")


def local_day(moment: datetime, tz_name: str = TIMEZONE) -> str:
    return moment.astimezone(ZoneInfo(tz_name)).date().isoformat()
