"""Messages of every protocol of the day: one request per protocol, fetched concurrently."""

import time

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckSpec, AssetExecutionContext, AssetKey, asset

from ..resources import ZchatApi, ZchatLake
from ..schemas import dataset_schema, messages_table
from .daily import Check, DayOutcome, run_days
from .metadata import ApiMeter, partition_metadata
from .partitions import backfill_policy, daily_partitions

KEY = ["zchat", "messages"]
BATCH_MESSAGES = 20_000
PROGRESS_SECONDS = 15
PREVIEW = ["protocol_id", "message_id", "created_at", "author_type", "type", "text"]


class Progress:
    """Logs done / total / rate / ETA at most every PROGRESS_SECONDS, and at the end."""

    def __init__(self, log, label: str, total: int):
        self.log, self.label, self.total = log, label, total
        self.done = 0
        self._t0 = self._last = time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self._last >= PROGRESS_SECONDS or self.done == self.total:
            self._last = now
            rate = self.done / max(now - self._t0, 1e-9)
            eta = (self.total - self.done) / rate if rate else 0
            self.log.info(f"{self.label}: {self.done:,}/{self.total:,} protocols, {rate:,.0f}/s, ETA {eta:,.0f}s")


def completeness_check(expected: dict[str, int | None], fetched: dict[str, int]) -> Check:
    """Every protocol fetched; for finished interactions, as many messages as the expanded record says."""
    missing = [p for p in expected if p not in fetched]
    wrong = [f"{p} ({fetched[p]} != {n})" for p, n in expected.items() if n is not None and p in fetched and fetched[p] != n]
    if not missing and not wrong:
        return Check(True)
    return Check(False, f"{len(missing)} protocols not fetched {missing[:5]}; {len(wrong)} with a different "
                        f"message count {wrong[:5]}")


def unique_check(message_ids: list) -> Check:
    distinct = len(set(message_ids))
    return Check(distinct == len(message_ids) and None not in message_ids,
                 f"{len(message_ids) - distinct} duplicate or null message_id")


def expected_counts(expanded: pa.Table) -> dict[str, int | None]:
    """protocol -> message count to expect; None while unfinished (more messages may come)."""
    finished = pc.is_valid(expanded.column("end_time")).to_pylist()
    counts = expanded.column("messages").to_pylist()
    return {p: (n if done else None) for p, n, done in zip(expanded.column("protocol_id").to_pylist(), counts, finished)}


@asset(
    key=KEY, group_name="history", partitions_def=daily_partitions, backfill_policy=backfill_policy,
    pool="zchat_api", kinds={"api", "parquet"}, deps=[AssetKey(["zchat", "history_expanded"])],
    description="Every message of every interaction of the day (history/{id}/messages, one call per protocol), "
                "each with its original JSON.",
    check_specs=[
        AssetCheckSpec("messages_complete", asset=KEY, blocking=True,
                       description="Every protocol of the day fetched; finished ones have the message count "
                                   "the expanded history gives."),
        AssetCheckSpec("message_id_unique", asset=KEY, blocking=True, description="No message appears twice."),
    ],
)
def messages(context: AssetExecutionContext, zchat_api: ZchatApi, zchat_lake: ZchatLake):
    lake = zchat_lake.open()
    schema = dataset_schema("messages")
    with zchat_api.open_client(context.log) as client:
        meter = ApiMeter(client)

        def produce(day) -> DayOutcome:
            meter.start()
            expected = expected_counts(lake.read("history_expanded", day.key,
                                                 columns=["protocol_id", "messages", "end_time"]))
            fetched: dict[str, int] = {}
            message_ids: list = []
            sample = schema.empty_table()
            progress = Progress(context.log, f"messages {day.key}", len(expected))
            with lake.replace_partition("messages", day.key, schema) as writer:
                batch, size = [], 0

                def flush():
                    nonlocal sample
                    table = messages_table(batch).sort_by([("protocol_id", "ascending"), ("created_at", "ascending")])
                    writer.write(table)
                    message_ids.extend(table.column("message_id").to_pylist())
                    if not sample.num_rows:
                        sample = table.slice(0, 5)
                    batch.clear()

                for protocol_id, items in client.messages_many(expected):
                    fetched[protocol_id] = len(items)
                    batch.append((protocol_id, items))
                    size += len(items)
                    progress.step()
                    if size >= BATCH_MESSAGES:
                        flush()
                        size = 0
                if batch:
                    flush()
            written = writer.result
            metadata = partition_metadata("messages", written, sample, PREVIEW, meter.figures())
            metadata["protocols"] = len(fetched)
            return DayOutcome(metadata, {"messages_complete": completeness_check(expected, fetched),
                                         "message_id_unique": unique_check(message_ids)})

        yield from run_days(context, produce)
