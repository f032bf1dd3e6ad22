"""The Digital Channels report, one asset per grouping: report_by_period, _agent, _department, …"""

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetsDefinition, asset

from ..api import REPORT_DATA_TYPES
from ..resources import ZchatApi, ZchatLake
from ..schemas import REPORT_COUNTERS, report_table
from .daily import Check, DayOutcome, run_days
from .metadata import ApiMeter, partition_metadata
from .partitions import backfill_policy, daily_partitions

GROUP = "reports"
PLOTTED = ("received", "made", "answered", "ended", "discarded", "missed", "expired", "tma", "tme", "tmpr", "slapr")


def total_check(table: pa.Table, multi_label: bool) -> Check:
    """The `Total` line equals the sum of the other lines for every additive counter.

    By tag, one interaction with two tags counts in both lines, so there the sum may exceed the
    total, but no line may exceed it."""
    is_total = table.column("is_total")
    totals, lines = table.filter(is_total), table.filter(pc.invert(is_total))
    if totals.num_rows != 1:
        return Check(False, f"expected one Total line, found {totals.num_rows}")
    wrong = []
    for name in REPORT_COUNTERS:
        total = totals.column(name)[0].as_py() or 0
        values = [v or 0 for v in lines.column(name).to_pylist()]
        ok = (sum(values) >= total and all(v <= total for v in values)) if multi_label else sum(values) == total
        if not ok:
            wrong.append(f"{name}: Total {total}, lines add up to {sum(values)}")
    return Check(not wrong, "; ".join(wrong))


def daily_figures(table: pa.Table) -> dict:
    """The Total line's main figures, as numbers the UI plots across partitions."""
    total = table.filter(table.column("is_total")).to_pylist()
    return {f"total_{k}": total[0][k] for k in PLOTTED if total and total[0][k] is not None}


def build_report_asset(data_type: str) -> AssetsDefinition:
    name = f"report_by_{data_type}"
    key = ["zchat", name]

    @asset(
        key=key, group_name=GROUP, partitions_def=daily_partitions, backfill_policy=backfill_policy,
        pool="zchat_api", kinds={"api", "parquet"},
        description=f"The Digital Channels report grouped by {data_type}, one row per line and a `Total` line, "
                    "for each day of the account's time zone.",
        check_specs=[AssetCheckSpec("total_matches_lines", asset=key,
                                    description="The Total line equals the sum of the lines for additive counters.")],
    )
    def report_asset(context: AssetExecutionContext, zchat_api: ZchatApi, zchat_lake: ZchatLake):
        lake = zchat_lake.open()
        with zchat_api.open_client(context.log) as client:
            meter = ApiMeter(client)

            def produce(day) -> DayOutcome:
                meter.start()
                table = report_table(client.report(data_type, day.start, day.end, day.offset), name)
                written = lake.write_partition(name, day.key, table)
                metadata = partition_metadata(name, written, table, ["title", "received", "answered", "tma", "tme"],
                                              meter.figures())
                if data_type == "period":
                    metadata.update(daily_figures(table))
                return DayOutcome(metadata, {"total_matches_lines": total_check(table, data_type == "tag")})

            yield from run_days(context, produce, {"total_matches_lines": AssetCheckSeverity.WARN})

    return report_asset


report_assets = [build_report_asset(t) for t in REPORT_DATA_TYPES]
