"""When a day stops changing: the figures of each republish, the settled rule, and a warning when a settled
day changes after all.

A day is **settled** when a re-fetch at an age past `lookback_days` (the look-back's last re-fetch of it,
`lookback_days + 1` days after it, or any later one) finds nothing new. It stays settled until a later
re-fetch finds a change: that fetch fails the `late_changes` check (a warning: the day is published all
the same), naming the rows, and the day is unsettled again until a re-fetch past the look-back finds it
unchanged. The record lives in the lake, next to the data it describes, at
`<lake>/_changes/<dataset>/[account=<name>/]date=D/changes.json`, so a run on any machine, on any
Dagster instance, reads it with one small request (as `_gaps/` and `_open/`), and the lake's retention
removes it with the day.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from .assets.partitions import local_day
from .changes import Changes
from .lake import Lake
from .quality import Check

FOLDER = "_changes"
FILE = "changes.json"
CHECK = "late_changes"
CHECK_DESCRIPTION = ("A day that had settled (a re-fetch older than lookback_days found nothing new) changed: "
                     "the day is published, and the rows that changed are named.")


def age_days(day: str, tz: str) -> int:
    """How many days before today, in the account's time zone, the day is: yesterday is 1."""
    today = date.fromisoformat(local_day(datetime.now(timezone.utc), tz))
    return (today - date.fromisoformat(day)).days


def path(lake: Lake, dataset: str, day: str) -> str:
    return f"{lake.relative(f'{FOLDER}/{dataset}', day)}/{FILE}"


def settle(previous: dict | None, dataset: str, day: str, changes: Changes, age: int, lookback_days: int,
           at: str) -> tuple[dict, Check]:
    """The day's record after this republish, and the check's verdict on it."""
    record = dict(previous or {"dataset": dataset, "day": day, "settled_at": None})
    if changes.error:
        return record, Check(True, f"{dataset} {day}: {changes}", "warn")
    fetch = {"at": at, "age_days": age, "rows_added": changes.added, "rows_removed": changes.removed,
             "rows_changed": changes.changed}
    record.update(republished=record.get("republished", 0) + 1, last_fetch=fetch)
    was = record.get("settled_at")
    if changes.any:
        record.update(settled_at=None, settled_age_days=None, last_change=fetch)
        if was:
            return record, Check(False, f"{dataset} {day} changed {age} days after it, though it had settled on {was}: "
                                        f"{changes}", "warn")
    elif not was and age > lookback_days:
        record.update(settled_at=at, settled_age_days=age)
    return record, Check(True, "", "warn")


def record(lake: Lake, dataset: str, day: str, changes: Changes | None, age: int, lookback_days: int) -> tuple[dict, Check]:
    """Records the day's republish in the lake; returns its metadata figures and the `late_changes` check.
    Never raises: the day is published already, and a record that cannot be kept is said in the figures."""
    figures: dict = {"day_age_days": age}
    try:
        where = path(lake, dataset, day)
        if changes is None:  # a first version: what was recorded of an earlier one no longer holds
            lake.discard(where)
            return {**figures, "settled": False}, Check(True, "", "warn")
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        kept, check = settle(lake.read_json(where), dataset, day, changes, age, lookback_days, at)
        lake.put_json(where, kept)
    except Exception as exc:  # the record is a report on a day already published
        return {**figures, "late_changes_error": f"{type(exc).__name__}: {exc}"}, Check(True, "", "warn")
    if changes.error:
        return {**figures, "late_changes_error": changes.error}, check
    figures.update(rows_added=changes.added, rows_removed=changes.removed, rows_changed=changes.changed,
                   changes_seconds=changes.seconds, settled=bool(kept["settled_at"]))
    if changes.any:
        figures["late_changes"] = str(changes)
    return figures, check
