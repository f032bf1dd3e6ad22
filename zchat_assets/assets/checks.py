"""Checks that compare two datasets (checks of one dataset run inside its asset)."""

from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetChecksDefinition,
                     PartitionKeyRange, asset_check)

from .account import Shape


def run_partition_keys(context: AssetCheckExecutionContext, account: Shape) -> list[str]:
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return account.partitions.get_partition_keys_in_range(PartitionKeyRange(start, end))
    return []


def report_matches_history(account: Shape) -> AssetChecksDefinition:
    @asset_check(asset=account.key("report_by_period"), name="report_matches_history",
                 additional_deps=[account.key("history")],
                 required_resource_keys=account.resource_keys(calls_api=False),
                 description="The report's received + made equals the number of interactions in history, per day.")
    def check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        compared, differences = [], []
        for member, days in account.split(run_partition_keys(context, account)):
            lake = member.lake(context)
            for day in days:
                if not (lake.exists("report_by_period", day) and lake.exists("history", day)):
                    continue
                report = lake.read("report_by_period", day, columns=["is_total", "received", "made"]).to_pylist()
                total = next((r for r in report if r["is_total"]), None)
                in_report = (total["received"] or 0) + (total["made"] or 0) if total else 0
                in_history = lake.read("history", day, columns=["protocol_id"]).num_rows
                compared.append(member.partition(day))
                if in_report != in_history:
                    differences.append(f"{member.partition(day)}: report {in_report}, history {in_history}")
        return AssetCheckResult(
            passed=not differences, severity=AssetCheckSeverity.WARN,
            metadata={"days_compared": len(compared), "differences": "\n".join(differences) or "none"},
        )

    return check


def cross_checks(account: Shape) -> list[AssetChecksDefinition]:
    return [report_matches_history(account)] if account.has("report_by_period") and account.has("history") else []
