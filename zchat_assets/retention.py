"""Retention: the vendor's, which loses the days the lake does not have, and the lake's own.

Zenvia keeps an account's interactions for 24 months (its plan terms, `vendor_retention_days`, 730): a
day that was never fetched, or whose run failed, is lost for good once it is older than that. This
module holds the arithmetic of both retentions, the scan of an account's missing days (days of the
account not published in every dataset fetched from the API), the estimate of the requests fetching
them takes (`zchat-assets plan`), and the removal of the lake's days older than `retention_days`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from . import gaps, message_cache, open_days, settled
from .api.vendor import REPORT_DATA_TYPES
from .assets.budget import SENSOR_SHARE
from .assets.partitions import local_day
from .lake import QUARANTINE, Lake
from .settings import AccountSettings

WARN_DAYS = 30  # a missing day is warned about this many days before the vendor loses it
REPORTS = tuple(f"report_by_{t}" for t in REPORT_DATA_TYPES)
HISTORIES = ("history", "history_expanded")
GROUPS = {"reports": REPORTS, "history": HISTORIES, "messages": ("messages",)}  # the datasets fetched from the API
API_DATASETS = tuple(d for group in GROUPS.values() for d in group)
NEIGHBOURS = 3  # published days on each side of a missing one whose interactions estimate its own
ANSWER_SECONDS = 1.0  # assumed per answer without a rate limit: `concurrency` requests answered each second


def today(tz: str, now: datetime | None = None) -> date:
    """The account's current day, in its time zone."""
    return date.fromisoformat(local_day(now or datetime.now(timezone.utc), tz))


def lost_on(day: str, vendor_retention_days: int) -> date:
    """The first day on which the vendor no longer has all of `day`: it is then that many days old."""
    return date.fromisoformat(day) + timedelta(days=vendor_retention_days)


def first_kept(current: date, retention_days: int | None) -> str | None:
    """The oldest day the lake keeps (a day older than `retention_days` is removed); None: every day."""
    return (current - timedelta(days=retention_days)).isoformat() if retention_days else None


def account_days(start_date: str, current: date, retention_days: int | None = None) -> list[str]:
    """The account's complete days the lake should hold: from its start (or the oldest it keeps) to yesterday."""
    first = max(date.fromisoformat(start_date), date.fromisoformat(first_kept(current, retention_days) or start_date))
    return [(first + timedelta(days=n)).isoformat() for n in range((current - first).days)]


def missing_days(days: Iterable[str], datasets: Iterable[str], published: dict[str, set[str]]) -> dict[str, tuple]:
    """day -> the datasets (of `datasets`, in their order) that have not published it, for days missing any."""
    datasets = tuple(datasets)
    found = {}
    for day in days:
        absent = tuple(d for d in datasets if day not in published.get(d, ()))
        if absent:
            found[day] = absent
    return found


def at_risk(missing: Iterable[str], current: date, vendor_retention_days: int,
            within: int = WARN_DAYS) -> list[tuple[str, date]]:
    """(day, the day it is lost) for the missing days the vendor still has and loses within `within` days,
    oldest first."""
    dated = ((day, lost_on(day, vendor_retention_days)) for day in sorted(missing))
    return [(day, lost) for day, lost in dated if current < lost <= current + timedelta(days=within)]


def published(lake: Lake, datasets: Iterable[str]) -> dict[str, set[str]]:
    """The days each dataset has published: a day folder with a Parquet file (one listing per dataset)."""
    found = {}
    for dataset in datasets:
        try:
            paths = lake.fs.find(lake.folder(dataset))
        except FileNotFoundError:
            paths = []
        found[dataset] = {p.rsplit("/", 2)[-2][len("date="):] for p in paths
                          if p.endswith(".parquet") and p.rsplit("/", 2)[-2].startswith("date=")}
    return found


@dataclass
class Scan:
    """An account's missing days as its lake shows them on `current` (its time zone's today)."""

    settings: AccountSettings
    current: date
    missing: dict[str, tuple]  # day -> datasets not published
    published: dict[str, set[str]]

    @property
    def at_risk(self) -> list[tuple[str, date]]:
        return at_risk(self.missing, self.current, self.settings.vendor_retention_days)

    @property
    def lost(self) -> list[str]:
        """Missing days the vendor no longer has."""
        return [d for d in sorted(self.missing) if lost_on(d, self.settings.vendor_retention_days) <= self.current]


def scan(settings: AccountSettings, now: datetime | None = None) -> Scan:
    """Reads the account's lake (nothing is written): which of its days miss an API dataset."""
    current = today(settings.timezone, now)
    datasets = [d for d in API_DATASETS if d in settings.datasets]
    found = published(settings.lake(), datasets)
    days = account_days(settings.start_date, current, settings.retention_days)
    return Scan(settings, current, missing_days(days, datasets, found), found)


# -- the plan's estimate ------------------------------------------------------------------------------

def history_requests(interactions: float, page_size: int) -> int:
    """One walk of a history: every page with records, then the empty one that ends it (`ZchatClient.pages`)."""
    return math.ceil(interactions / page_size) + 1


def day_requests(datasets: Iterable[str], interactions: float, page_size: int) -> int:
    """Requests to fetch the given datasets of one day: one per report, a walk per history, one messages
    request per protocol."""
    total = 0
    for dataset in datasets:
        if dataset in REPORTS:
            total += 1
        elif dataset in HISTORIES:
            total += history_requests(interactions, page_size)
        elif dataset == "messages":
            total += math.ceil(interactions)
    return total


def interactions_near(day: str, counts: dict[str, int], neighbours: int = NEIGHBOURS) -> float | None:
    """A missing day's interactions: the mean of the nearest published days on each side (up to `neighbours`
    each), else of every published day; None when the lake has none."""
    if day in counts:
        return float(counts[day])
    before = sorted(d for d in counts if d < day)[-neighbours:]
    after = sorted(d for d in counts if d > day)[:neighbours]
    chosen = before + after or list(counts)
    return sum(counts[d] for d in chosen) / len(chosen) if chosen else None


def throughput(settings: AccountSettings) -> tuple[float, str]:
    """Requests per second a run alone gets, and the assumption it rests on, in words."""
    if settings.rate_limit:
        rate = settings.rate_limit * (1 - SENSOR_SHARE)
        return rate, (f"{rate:g} requests/s, the {1 - SENSOR_SHARE:.0%} of rate_limit {settings.rate_limit:g} "
                      "a run alone gets")
    rate = settings.concurrency / ANSWER_SECONDS
    return rate, (f"{rate:g} requests/s: no rate_limit, so concurrency {settings.concurrency} requests in flight, "
                  f"each assumed answered in {ANSWER_SECONDS:g} s (doctor measures the account's latency)")


def interaction_counts(lake: Lake, account: Scan, days: Iterable[str]) -> dict[str, int]:
    """Interactions of the published days near `days` (their expanded history's rows, read from footers)."""
    dataset = next((d for d in ("history_expanded", "history") if account.published.get(d)), None)
    if dataset is None:
        return {}
    have = sorted(account.published[dataset])
    wanted: set[str] = set()
    for day in days:
        if day in account.published[dataset]:
            wanted.add(day)
            continue
        before = [d for d in have if d < day][-NEIGHBOURS:]
        after = [d for d in have if d > day][:NEIGHBOURS]
        wanted.update(before + after or have[-NEIGHBOURS:])
    return {day: lake.describe(dataset, day).rows for day in sorted(wanted)}


@dataclass(frozen=True)
class DayPlan:
    day: str
    datasets: tuple
    interactions: float | None  # None: the lake has no published day to estimate from
    requests: int
    lost_on: date


def plan(account: Scan) -> list[DayPlan]:
    """Every missing day with the requests it needs (an estimate: see `interactions_near`), oldest first."""
    settings = account.settings
    counts = interaction_counts(settings.lake(), account, account.missing)
    out = []
    for day, datasets in sorted(account.missing.items()):
        interactions = interactions_near(day, counts)
        requests = day_requests(datasets, interactions or 0, settings.page_size)
        out.append(DayPlan(day, datasets, interactions, requests, lost_on(day, settings.vendor_retention_days)))
    return out


# -- the lake's own retention -------------------------------------------------------------------------

def expired_areas(settings: AccountSettings) -> list[str]:
    """Everything of an account's lake kept by day: its datasets (ongoing snapshots included), their
    quarantine and late-change records, the message cache, gaps records and open-day markers."""
    return [*settings.datasets, *(f"{QUARANTINE}/{d}" for d in settings.datasets),
            *(f"{settled.FOLDER}/{d}" for d in settings.datasets), message_cache.DATASET, gaps.FOLDER,
            open_days.FOLDER]


def remove_day(lake: Lake, area: str, day: str) -> bool:
    """Removes one day of one area, file by file: a dataset's day is one file, so a reader sees it whole
    or not at all. Safe to run twice, or in two steps at once. Returns whether anything was there."""
    files = _listed(lake, lake.folder(area, day))
    for path in (p for p in files if not p.endswith("/")):
        with suppress(FileNotFoundError):
            lake.fs.rm(path)
    with suppress(OSError):  # the emptied folder, so that listings of days no longer show it
        if lake.local:
            lake.fs.rmdir(lake.folder(area, day))
        for marker in _listed(lake, lake.folder(area, day)):  # an object store's folder marker (SeaweedFS)
            lake.fs.rm_file(marker)
    return any(not p.endswith("/") for p in files)


def _listed(lake: Lake, folder: str) -> list[str]:
    try:
        return [i["name"] for i in lake.fs.ls(folder, detail=True) if i["type"] == "file"]
    except FileNotFoundError:
        return []


def expire(lake: Lake, settings: AccountSettings, now: datetime | None = None) -> tuple[str | None, dict[str, int]]:
    """Removes the account's days older than `retention_days` (by their age in its time zone) from every
    area; returns the oldest day kept and the days removed by area (nothing when every day is kept)."""
    keep = first_kept(today(settings.timezone, now), settings.retention_days)
    if keep is None:
        return None, {}
    removed = {}
    for area in expired_areas(settings):
        count = sum(remove_day(lake, area, day) for day in lake.days(area) if day < keep)
        if count:
            removed[area] = count
    return keep, removed
