"""Checks that compare two datasets (checks of one dataset run inside its asset)."""

from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetKey, PartitionKeyRange,
                     asset_check)

from ..resources import ZchatLake
from .partitions import daily_partitions


def run_partition_keys(context: AssetCheckExecutionContext) -> list[str]:
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return daily_partitions.get_partition_keys_in_range(PartitionKeyRange(start, end))
    return []


@asset_check(asset=AssetKey(["zchat", "report_by_period"]), additional_deps=[AssetKey(["zchat", "history"])],
             description="The report's received + made equals the number of interactions in history, per day.")
def report_matches_history(context: AssetCheckExecutionContext, zchat_lake: ZchatLake) -> AssetCheckResult:
    lake = zchat_lake.open()
    compared, differences = [], []
    for day in run_partition_keys(context):
        if not (lake.exists("report_by_period", day) and lake.exists("history", day)):
            continue
        report = lake.read("report_by_period", day, columns=["is_total", "received", "made"]).to_pylist()
        total = next((r for r in report if r["is_total"]), None)
        in_report = (total["received"] or 0) + (total["made"] or 0) if total else 0
        in_history = lake.read("history", day, columns=["protocol_id"]).num_rows
        compared.append(day)
        if in_report != in_history:
            differences.append(f"{day}: report {in_report}, history {in_history}")
    return AssetCheckResult(
        passed=not differences, severity=AssetCheckSeverity.WARN,
        metadata={"days_compared": len(compared), "differences": "\n".join(differences) or "none"},
    )
