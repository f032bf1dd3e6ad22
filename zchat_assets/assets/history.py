"""The service history, standard and expanded: one row per interaction (protocol) of the day."""

from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, asset

from .. import open_days
from ..api.vendor import HISTORY_FILTERS
from ..quality import unique_ids
from ..schemas import dataset_schema, to_table
from .account import Account
from .days import DayOutcome, api_days
from .metadata import partition_metadata

CODE_VERSION = "1"
PREVIEW = ["protocol_id", "created_at", "media", "current_state", "agent_name", "department_name"]


def audit(writer) -> dict:
    return {"protocol_id_unique": unique_ids(writer.read(["protocol_id"]).column("protocol_id"), "protocol_id")}


def history_asset(account: Account, name: str, expanded: bool) -> AssetsDefinition:
    key = account.key(name)
    filters = account.settings.filters.params(HISTORY_FILTERS)
    what = "expanded service history (standard fields plus counters, times, tags and web client data)" \
        if expanded else "service history"

    @asset(
        **account.asset_args(name, "history"), code_version=CODE_VERSION,
        description=f"The {what}: one row per interaction created that day, fetched page by page.",
        check_specs=[AssetCheckSpec("protocol_id_unique", asset=key, blocking=True,
                                    description="Every row has a protocol_id and none appears twice.")],
    )
    def history(context: AssetExecutionContext):
        schema, privacy = dataset_schema(name), account.privacy(context)

        def produce(day, client, lake) -> DayOutcome:
            unfinished = 0
            with lake.replace_partition(name, day.key, schema, audit) as writer:
                for page in client.history_pages(day.start, day.end, day.offset, expanded=expanded, **filters):
                    table = to_table(page, name, privacy=privacy, zone=day.zone)
                    unfinished += table.column("end_time").null_count if expanded else 0
                    writer.write(table)
            if expanded:
                open_days.mark(lake, day.key, unfinished)
            return DayOutcome(partition_metadata(name, writer.result, writer.sample, PREVIEW), writer.checks)

        yield from api_days(context, account, produce)

    return history


def history_assets(account: Account) -> list[AssetsDefinition]:
    return [history_asset(account, name, name == "history_expanded")
            for name in ("history", "history_expanded") if account.has(name)]
