"""Conversations: each interaction's expanded record with its messages nested and derived figures."""

from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, Failure, asset

from ..api.vendor import AUTHOR_TYPES
from ..day_messages import BUILT_FROM, fingerprint
from ..lake import Lake
from ..quality import unique_ids
from ..schemas import CONVERSATION_FIGURES, MESSAGE_ITEM, dataset_schema
from .account import Shape
from .days import DayOutcome, lake_days, late_changes_spec
from .metadata import partition_metadata

CODE_VERSION = "1"
ITEM_FIELDS = [f.name for f in MESSAGE_ITEM]
AUTHORS = tuple(AUTHOR_TYPES)
BATCH = 2_000  # conversations whose messages are Python values at once
PREVIEW = ["protocol_id", "media", "current_state", "message_count", "first_agent_reply_seconds", "conversation_seconds"]


def figures(items: list[dict], started_by_agent: bool = False) -> dict:
    """Derived figures of one conversation from its messages, sorted by time. The first agent reply is a
    response time only when the customer started the conversation: null when an agent did."""
    by_author = defaultdict(int)
    for m in items:
        by_author[m["author_type"]] += 1
    first_customer = next((m["created_at"] for m in items if m["author_type"] == "CUSTOMER"), None)
    reply = None
    if first_customer is not None and not started_by_agent:
        reply = next((m["created_at"] for m in items if m["author_type"] == "AGENT" and m["created_at"] >= first_customer), None)
    first = items[0]["created_at"] if items else None
    last = items[-1]["created_at"] if items else None
    return {
        "message_list": items,
        "message_count": len(items),
        **{f"{a.lower()}_message_count": by_author[a] for a in AUTHORS},
        "first_message_at": first,
        "last_message_at": last,
        "first_customer_message_at": first_customer,
        "first_agent_reply_at": reply,
        "first_agent_reply_seconds": int((reply - first_customer).total_seconds()) if reply else None,
        "conversation_seconds": int((last - first).total_seconds()) if items else None,
    }


def join(expanded: pa.Table, messages: pa.Table, batch: int = BATCH) -> pa.Table:
    """One row per protocol of `expanded`, in its order, with its messages and figures. The messages become
    Python values `batch` conversations at a time: a busy day's 120,000 of them at once took over 100 MB more."""
    messages = messages.select(["protocol_id", *ITEM_FIELDS]).sort_by(
        [("protocol_id", "ascending"), ("created_at", "ascending"), ("message_id", "ascending")])
    runs = pc.run_end_encode(messages.column("protocol_id").combine_chunks())  # one run per protocol, in order
    ends = runs.run_ends.to_pylist()
    where = {p: (start, end) for p, start, end in zip(runs.values.to_pylist(), [0, *ends], ends)}
    items = messages.drop_columns(["protocol_id"])
    schema = dataset_schema("conversations")
    parts = []
    for offset in range(0, max(expanded.num_rows, 1), batch):
        part = expanded.slice(offset, batch)
        spans = [where.get(p, (0, 0)) for p in part.column("protocol_id").to_pylist()]
        rows = items.take(pa.array([i for start, end in spans for i in range(start, end)], pa.int64())).to_pylist()
        figured, taken = [], 0
        for (start, end), active in zip(spans, part.column("active").to_pylist()):
            figured.append(figures(rows[taken:taken + end - start], bool(active)))
            taken += end - start
        derived = {c.name: pa.array([r[c.name] for r in figured], type=c.type) for c in CONVERSATION_FIGURES}
        parts.append(pa.table({name: part.column(name) if name in part.column_names else derived[name]
                               for name in schema.names}, schema=schema))
    return pa.concat_tables(parts)


def matching_inputs(lake: Lake, day: str, expanded: pa.Table) -> None:
    """Conversations are built only from a messages day fetched for the expanded history they join: after a
    messages day was rejected, or the history fetched again since, the two disagree, and joining them would
    give conversations messages of another version (a counter of 10 with none of its messages)."""
    files = lake.files("messages", day)
    built_from = lake.file_metadata(files[0]).get(BUILT_FROM) if files else None
    if built_from is not None and built_from.decode() != fingerprint(expanded):
        raise Failure(f"conversations {day} was not built: messages {day} was fetched for another version of "
                      f"history_expanded {day} (the history was fetched again since, or the last messages run of the "
                      f"day was rejected); materialize messages for {day}, then conversations.", allow_retries=False)


def conversations_asset(account: Shape) -> AssetsDefinition:
    key = account.key("conversations")

    @asset(
        **account.asset_args("conversations", "history", calls_api=False), code_version=CODE_VERSION,
        deps=[account.key("history_expanded"), account.key("messages")],
        description="One row per interaction: the expanded history record, its messages nested in time order, and "
                    "derived figures (messages per author type, first customer message, first agent reply).",
        check_specs=[AssetCheckSpec("protocol_id_unique", asset=key, blocking=True, description="One row per protocol."),
                     late_changes_spec(key)],
    )
    def conversations(context: AssetExecutionContext):
        def produce(member, day, lake) -> DayOutcome:
            expanded = lake.read("history_expanded", day.key, schema=dataset_schema("history_expanded"))
            matching_inputs(lake, day.key, expanded)
            nested = ["protocol_id", *ITEM_FIELDS]  # what the join nests: not the original JSON
            table = join(expanded, lake.read("messages", day.key, schema=dataset_schema("messages"), columns=nested))
            checks = {"protocol_id_unique": unique_ids(table.column("protocol_id"), "protocol_id")}
            written = lake.write_partition("conversations", day.key, table, audit=lambda writer: checks)
            return DayOutcome(partition_metadata("conversations", written, table, PREVIEW), checks, written.changes)

        yield from lake_days(context, account, key, produce)

    return conversations
