"""The service history, standard and expanded: one row per interaction (protocol) of the day."""

from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, asset

from ..resources import ZchatApi, ZchatLake
from ..schemas import dataset_schema, to_table
from .daily import Check, DayOutcome, run_days
from .metadata import ApiMeter, partition_metadata
from .partitions import backfill_policy, daily_partitions

GROUP = "history"
PREVIEW = ["protocol_id", "created_at", "media", "current_state", "agent_name", "department_name"]


def protocol_check(protocols: list[str | None]) -> Check:
    nulls = sum(p is None for p in protocols)
    duplicates = len(protocols) - nulls - len({p for p in protocols if p is not None})
    return Check(not nulls and not duplicates, f"{nulls} null and {duplicates} duplicate protocol_id")


def build_history_asset(name: str, expanded: bool) -> AssetsDefinition:
    key = ["zchat", name]
    what = "expanded service history (standard fields plus counters, times, tags and web client data)" \
        if expanded else "service history"

    @asset(
        key=key, group_name=GROUP, partitions_def=daily_partitions, backfill_policy=backfill_policy,
        pool="zchat_api", kinds={"api", "parquet"},
        description=f"The {what}: one row per interaction created that day, fetched page by page.",
        check_specs=[AssetCheckSpec("protocol_id_unique", asset=key, blocking=True,
                                    description="Every row has a protocol_id and none appears twice.")],
    )
    def history_asset(context: AssetExecutionContext, zchat_api: ZchatApi, zchat_lake: ZchatLake):
        lake = zchat_lake.open()
        schema = dataset_schema(name)
        with zchat_api.open_client(context.log) as client:
            meter = ApiMeter(client)

            def produce(day) -> DayOutcome:
                meter.start()
                protocols: list = []
                with lake.replace_partition(name, day.key, schema) as writer:
                    for page in client.history_pages(day.start, day.end, day.offset, expanded=expanded):
                        table = lake.privacy.apply(to_table(page, name))
                        writer.write(table)
                        protocols.extend(table.column("protocol_id").to_pylist())
                metadata = partition_metadata(name, writer.result, writer.sample, PREVIEW, meter.figures())
                return DayOutcome(metadata, {"protocol_id_unique": protocol_check(protocols)})

            yield from run_days(context, produce)

    return history_asset


history = build_history_asset("history", expanded=False)
history_expanded = build_history_asset("history_expanded", expanded=True)
