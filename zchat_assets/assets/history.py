"""The service history, standard and expanded: one row per interaction (protocol) of the day."""

from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, asset

from .. import open_days
from ..api.vendor import HISTORY_FILTERS
from ..quality import Check, unique_ids
from ..schemas import dataset_schema, to_table
from .account import Shape
from .days import DayOutcome, api_days, late_changes_spec
from .metadata import partition_metadata

CODE_VERSION = "2"
PREVIEW = ["protocol_id", "created_at", "media", "current_state", "agent_name", "department_name"]


def audit(writer, other: str, seen: set, others: set[str] | None) -> dict:
    """The day's checks; `others` are the protocols of the other history's published day (None: it has none)."""
    unlisted, extra = (others - seen, seen - others - {None}) if others is not None else (set(), set())
    listed = ("" if not unlisted else f"{len(unlisted)} protocol(s) of {other} not listed here even when asked "
              f"again (deleted at the vendor since {other} was fetched?): {sorted(unlisted)[:5]}")
    more = f"{len(extra)} protocol(s) not in {other} yet, which its next run fetches: {sorted(extra)[:5]}" if extra else ""
    return {"protocol_id_unique": unique_ids(writer.read(["protocol_id"]).column("protocol_id"), "protocol_id"),
            "protocols_match": Check(not (unlisted or extra), "; ".join(t for t in (listed, more) if t), "warn")}


def listed(lake, dataset: str, day: str) -> set[str] | None:
    """The protocols of a dataset's published day, or None when it has none."""
    if not lake.exists(dataset, day):
        return None
    return {p for p in lake.read(dataset, day, columns=["protocol_id"]).column("protocol_id").to_pylist() if p}


def history_asset(account: Shape, name: str, expanded: bool) -> AssetsDefinition:
    key = account.key(name)
    other = "history" if expanded else "history_expanded"
    what = "expanded service history (standard fields plus counters, times, tags and web client data)" \
        if expanded else "service history"

    @asset(
        **account.asset_args(name, "history"), code_version=CODE_VERSION,
        description=f"The {what}: one row per interaction created that day, fetched page by page.",
        check_specs=[AssetCheckSpec("protocol_id_unique", asset=key, blocking=True,
                                    description="Every row has a protocol_id and none appears twice."),
                     AssetCheckSpec("protocols_match", asset=key,
                                    description=f"The same protocols as {other}'s day: one missing here is asked "
                                                "again before the day is published (a record deleted while the "
                                                "pages were read hides another)."),
                     late_changes_spec(key)],
    )
    def history(context: AssetExecutionContext):
        schema = dataset_schema(name)

        def produce(member, day, client, lake) -> DayOutcome:
            privacy, filters = member.privacy(context), member.settings.filters.params(HISTORY_FILTERS)
            unfinished, seen = 0, set()
            others = listed(lake, other, day.key) if account.has(other) else None

            def walk(writer, wanted: set[str] | None = None) -> None:
                nonlocal unfinished
                for page in client.history_pages(day.start, day.end, day.offset, expanded=expanded, **filters):
                    if wanted is not None:
                        page = [r for r in page if str(r.get("id")) in wanted]
                    table = to_table(page, name, privacy=privacy, zone=day.zone)
                    unfinished += table.column("end_time").null_count if expanded else 0
                    seen.update(table.column("protocol_id").to_pylist())
                    writer.write(table)
                    del page, table  # not kept while the next page is read (paging.walk)

            with lake.replace_partition(name, day.key, schema, lambda w: audit(w, other, seen, others)) as writer:
                walk(writer)
                if others and others - seen:
                    context.log.warning(f"{name} {member.partition(day.key)}: {len(others - seen)} protocol(s) of {other} were not "
                                        "listed (a record deleted while the pages were read?): asking again")
                    walk(writer, others - seen)
            if expanded:
                open_days.mark(lake, day.key, unfinished)
            return DayOutcome(partition_metadata(name, writer.result, writer.sample, PREVIEW), writer.checks,
                              writer.result.changes)

        yield from api_days(context, account, produce)

    return history


def history_assets(account: Shape) -> list[AssetsDefinition]:
    return [history_asset(account, name, name == "history_expanded")
            for name in ("history", "history_expanded") if account.has(name)]
