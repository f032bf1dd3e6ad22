"""The Digital Channels report, one asset per grouping: report_by_period, _agent, _department, …"""

import pyarrow as pa
from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, asset

from ..api.vendor import REPORT_DATA_TYPES, REPORT_FILTERS
from ..quality import report_total
from ..schemas import report_table
from .account import Shape
from .days import DayOutcome, api_days, late_changes_spec
from .metadata import partition_metadata

CODE_VERSION = "1"
PLOTTED = ("received", "made", "answered", "ended", "discarded", "missed", "expired", "tma", "tme", "tmpr", "slapr")
PREVIEW = ["title", "received", "answered", "tma", "tme"]


def daily_figures(table: pa.Table) -> dict:
    """The Total line's main figures, as numbers the UI plots across partitions."""
    total = table.filter(table.column("is_total")).to_pylist()
    return {f"total_{k}": total[0][k] for k in PLOTTED if total and total[0][k] is not None}


def report_asset(account: Shape, data_type: str) -> AssetsDefinition:
    name = f"report_by_{data_type}"
    key = account.key(name)

    @asset(
        **account.asset_args(name, "reports"), code_version=CODE_VERSION,
        description=f"The Digital Channels report grouped by {data_type}, one row per line and a `Total` line, "
                    "for each day of the account's time zone.",
        check_specs=[AssetCheckSpec("total_matches_lines", asset=key,
                                    description="The Total line equals the sum of the lines for additive counters."),
                     late_changes_spec(key)],
    )
    def report(context: AssetExecutionContext):
        def produce(member, day, client, lake) -> DayOutcome:
            filters = member.settings.filters.params(REPORT_FILTERS)
            table = report_table(client.report(data_type, day.start, day.end, day.offset, **filters), name)
            checks = {"total_matches_lines": report_total(table, data_type == "tag")}
            written = lake.write_partition(name, day.key, table, audit=lambda writer: checks)
            metadata = partition_metadata(name, written, table, PREVIEW)
            if data_type == "period":
                metadata.update(daily_figures(table))
            return DayOutcome(metadata, checks, written.changes)

        yield from api_days(context, account, key, produce)

    return report


def report_assets(account: Shape) -> list[AssetsDefinition]:
    return [report_asset(account, t) for t in REPORT_DATA_TYPES if account.has(f"report_by_{t}")]
