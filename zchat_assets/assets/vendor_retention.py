"""The vendor-retention warning: days missing from the lake that the vendor loses within 30 days.

Why an asset check run by a schedule of its own, rather than a sensor that reports check evaluations:
the scan lists every dataset of every account (a fleet's thousand accounts on an object store take
minutes), and a sensor tick must end within a minute; a run has no such limit, logs what it found, and
can be launched by hand from the check's page. One check, one job and one schedule per account or
fleet, whatever the number of accounts. The check sits on `history` (the day's interactions); the daily
jobs leave it out, so that a day's run does not scan the whole lake. It reads the lake only and calls
no API, so its schedule runs by default. Its result is a WARN on the asset's *Checks* tab (and in the
instance, as the check's latest evaluation) naming each account, its days at risk and the day each is
lost.
"""

from dagster import (AssetCheckExecutionContext, AssetCheckKey, AssetCheckResult, AssetCheckSeverity,
                     AssetChecksDefinition, AssetSelection, DefaultScheduleStatus, JobDefinition, MetadataValue,
                     ScheduleDefinition, asset_check, define_asset_job)

from .. import retention
from .account import Shape

CHECK = "vendor_retention"
CRON = "0 6 * * *"  # after the night's runs (01:00 and 04:30), so that what they failed to publish counts
TABLE_ROWS = 200  # rows of the days-at-risk table; the counts cover every day


def target(shape: Shape) -> str | None:
    """The dataset the check sits on: history, else the first dataset fetched from the API."""
    return next((d for d in ("history", *retention.API_DATASETS) if shape.has(d)), None)


def check_key(shape: Shape) -> AssetCheckKey | None:
    dataset = target(shape)
    return AssetCheckKey(shape.key(dataset), CHECK) if dataset else None


def vendor_retention_check(shape: Shape) -> AssetChecksDefinition:
    dataset = target(shape)
    window = retention.WARN_DAYS

    @asset_check(asset=shape.key(dataset), name=CHECK,
                 description=f"Days missing from the lake (never fetched, or failed) that the vendor loses within "
                             f"{window} days (vendor_retention_days), by account, each with the day it is lost.")
    def check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        rows, lost, accounts, checked = [], 0, set(), 0
        for member in shape.members:
            found = retention.scan(member.settings)
            checked += 1
            lost += len(found.lost)
            for day, lost_on in found.at_risk:
                accounts.add(member.name)
                rows.append((member.name or "(unnamed)", day, ", ".join(found.missing[day]), lost_on.isoformat()))
            if found.at_risk:
                context.log.warning(f"Account {member.name or '(unnamed)'}: {len(found.at_risk)} missing day(s) pass the vendor's "
                                    f"retention within {window} days, the first {found.at_risk[0][0]} on "
                                    f"{found.at_risk[0][1]}.")
        rows.sort(key=lambda row: (row[3], row[0]))
        metadata = {"accounts_checked": checked, "accounts_at_risk": len(accounts), "days_at_risk": len(rows),
                    "days_already_lost": lost, "first_lost_on": rows[0][3] if rows else "none"}
        if rows:
            table = ["| account | day | missing | lost on |", "| --- | --- | --- | --- |",
                     *(f"| {' | '.join(row)} |" for row in rows[:TABLE_ROWS])]
            more = f"\n\n…and {len(rows) - TABLE_ROWS} more day(s)." if len(rows) > TABLE_ROWS else ""
            metadata["at_risk"] = MetadataValue.md("\n".join(table) + more)
        return AssetCheckResult(passed=not rows, severity=AssetCheckSeverity.WARN, metadata=metadata,
                                description=f"{len(rows)} missing day(s) of {len(accounts)} account(s) are lost "
                                            f"within {window} days: fetch them first (zchat-assets plan)."
                                if rows else None)

    return check


def vendor_retention_definitions(shape: Shape) -> tuple[list[AssetChecksDefinition], list[JobDefinition],
                                                          list[ScheduleDefinition]]:
    """The check, the job that runs it alone, and its daily schedule; nothing for an account fetching nothing."""
    if target(shape) is None:
        return [], [], []
    check = vendor_retention_check(shape)
    job = define_asset_job(shape.named("vendor_retention_job"), selection=AssetSelection.checks(check),
                           description="Checks every account's lake for missing days the vendor loses soon.")
    schedule = ScheduleDefinition(name=shape.named("vendor_retention_schedule"), job=job, cron_schedule=CRON,
                                  execution_timezone=shape.settings.timezone,
                                  default_status=DefaultScheduleStatus.RUNNING,
                                  description=f"Runs the {CHECK} check at 06:00 (the account's time zone).")
    return [check], [job], [schedule]
