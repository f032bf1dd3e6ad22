"""Messages of every protocol of the day: one request per protocol, fetched concurrently."""

import time

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckSpec, AssetExecutionContext, AssetKey, asset

from ..lake import PartitionWriter
from ..message_cache import MessageCache
from ..resources import ZchatApi, ZchatLake
from ..schemas import dataset_schema, messages_table
from .daily import Check, DayOutcome, run_days
from .metadata import ApiMeter, partition_metadata
from .partitions import backfill_policy, daily_partitions

KEY = ["zchat", "messages"]
FLUSH_MESSAGES = 4_000
FLUSH_SECONDS = 2.0
PROGRESS_SECONDS = 15
PREVIEW = ["protocol_id", "message_id", "created_at", "author_type", "type", "text"]


class Batch:
    """Fetched conversations on their way to the partition, written every FLUSH_MESSAGES messages or
    FLUSH_SECONDS, whichever comes first; the ended ones go to the cache at the same moment, so an
    interrupted run loses at most one batch of work."""

    def __init__(self, writer: PartitionWriter, cache: MessageCache, expected: dict[str, int | None]):
        self._writer, self._cache, self._expected = writer, cache, expected
        self._privacy = cache.privacy
        self._items: list[tuple[str, list[dict]]] = []
        self._size = 0
        self._since = time.monotonic()

    def add(self, protocol_id: str, items: list[dict]) -> None:
        self._items.append((protocol_id, items))
        self._size += len(items)
        if self._size >= FLUSH_MESSAGES or time.monotonic() - self._since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._items:
            return
        table = messages_table(self._items).sort_by([("protocol_id", "ascending"), ("created_at", "ascending")])
        table = self._privacy.apply(table)
        ended = {p: len(items) for p, items in self._items if self._expected.get(p) == len(items)}
        if len(ended) < len(self._items):
            table_ended = table.filter(pc.is_in(table.column("protocol_id"), pa.array(list(ended), pa.string())))
        else:
            table_ended = table
        self._cache.add(table_ended, ended)
        self._writer.write(table)
        self._items, self._size, self._since = [], 0, time.monotonic()


class Progress:
    """Logs done / total / rate / ETA at most every PROGRESS_SECONDS, and at the end."""

    def __init__(self, log, label: str, total: int, cached: int):
        self.log, self.label, self.total = log, label, total
        self.done = 0
        self._t0 = self._last = time.monotonic()
        log.info(f"{label}: {cached:,} protocols from the cache, {total:,} to fetch")

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


def unique_check(message_ids: pa.ChunkedArray) -> Check:
    nulls = message_ids.null_count
    duplicates = len(message_ids) - nulls - pc.count_distinct(message_ids).as_py()
    return Check(not nulls and not duplicates, f"{duplicates} duplicate and {nulls} null message_id")


def expected_counts(expanded: pa.Table) -> dict[str, int | None]:
    """protocol -> message count to expect; None while unfinished (more messages may come)."""
    finished = pc.is_valid(expanded.column("end_time")).to_pylist()
    counts = expanded.column("messages").to_pylist()
    return {p: (n if done else None) for p, n, done in zip(expanded.column("protocol_id").to_pylist(), counts, finished)}


@asset(
    key=KEY, group_name="history", partitions_def=daily_partitions, backfill_policy=backfill_policy,
    pool="zchat_api", kinds={"api", "parquet"}, deps=[AssetKey(["zchat", "history_expanded"])],
    description="Every message of every interaction of the day (history/{id}/messages, one call per protocol), "
                "each with its original JSON. Conversations that had ended are fetched once: later runs "
                "read them from the lake's message cache.",
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
            cache = MessageCache(lake, day.key)
            cached = cache.usable(expected)
            fetched = {protocol: expected[protocol] for protocol in cached}
            with lake.replace_partition("messages", day.key, schema) as writer:
                for chunk, protocols in cache.by_chunk(cached).items():
                    writer.write(cache.read(chunk, protocols))
                to_fetch = [p for p in expected if p not in cached]
                progress = Progress(context.log, f"messages {day.key}", len(to_fetch), len(cached))
                batch = Batch(writer, cache, expected)
                for protocol_id, items in client.messages_many(to_fetch):
                    fetched[protocol_id] = len(items)
                    batch.add(protocol_id, items)
                    progress.step()
                batch.flush()
            written = writer.result
            ids = lake.read("messages", day.key, columns=["message_id"]).column("message_id")
            cache.prune(expected)
            metadata = partition_metadata("messages", written, writer.sample, PREVIEW, meter.figures())
            metadata.update(protocols=len(fetched), protocols_from_cache=len(cached))
            return DayOutcome(metadata, {"messages_complete": completeness_check(expected, fetched),
                                         "message_id_unique": unique_check(ids)})

        yield from run_days(context, produce)
