"""One day's messages on their way into the lake: the single owner of the cache, the partition and the checks.

`DayMessages` is opened with the day's expanded history (each protocol's `messages` counter and end
time, both None while unfinished). It writes the conversations the message cache can give, says which protocols are
left to fetch, takes fetched `(protocol, messages)` pairs, and writes them in batches of
`flush_messages` messages or `flush_seconds`, whichever comes first. Each batch goes to the day's
partition and, for the conversations that had ended, to the cache at the same moment, so an
interrupted run loses at most one batch of work. On close the day is swapped in, the stale cache
chunks are pruned, and the checks are computed.
"""

from __future__ import annotations

import sys
import time

import pyarrow as pa
import pyarrow.compute as pc

from .lake import Lake, WrittenPartition
from .message_cache import MessageCache
from .privacy import Privacy
from .quality import Check, messages_complete, unique_ids
from .schemas import dataset_schema, messages_table

DATASET = "messages"
FLUSH_MESSAGES = 4_000
FLUSH_SECONDS = 2.0


EXPANDED_COLUMNS = ["protocol_id", "messages", "end_time"]


def expected_counts(expanded: pa.Table) -> dict[str, int | None]:
    """protocol -> the `messages` counter to expect at least; None while unfinished (more may come)."""
    finished = pc.is_valid(expanded.column("end_time")).to_pylist()
    counts = expanded.column("messages").to_pylist()
    return {p: (n if done else None) for p, n, done in zip(expanded.column("protocol_id").to_pylist(), counts, finished)}


def end_times(expanded: pa.Table) -> dict[str, str | None]:
    """protocol -> when it ended, as text; None while unfinished."""
    ends = expanded.column("end_time").to_pylist()
    return {p: (e.isoformat() if e else None) for p, e in zip(expanded.column("protocol_id").to_pylist(), ends)}


class DayMessages:
    def __init__(self, lake: Lake, day: str, expanded: pa.Table, privacy: Privacy, *,
                 flush_messages: int = FLUSH_MESSAGES, flush_seconds: float = FLUSH_SECONDS):
        self._lake, self._day, self._privacy = lake, day, privacy
        self._expected, self._ends = expected_counts(expanded), end_times(expanded)
        self._flush_messages, self._flush_seconds = flush_messages, flush_seconds
        self._cache = MessageCache(lake, day, privacy)
        self.cached = self._cache.usable(self._ends)  # protocol -> chunk
        self.to_fetch = [p for p in self._expected if p not in self.cached]
        self.fetched = {p: self._cache.stored(p, chunk) for p, chunk in self.cached.items()}  # protocol -> messages
        self.written: WrittenPartition | None = None
        self.checks: dict[str, Check] = {}
        self._batch: list[tuple[str, list[dict]]] = []
        self._batch_size = 0
        self._since = time.monotonic()

    def __enter__(self) -> DayMessages:
        self._replace = self._lake.replace_partition(DATASET, self._day, dataset_schema(DATASET), self._audit)
        self._writer = self._replace.__enter__()
        for chunk, protocols in self._cache.by_chunk(self.cached).items():
            table = self._cache.read(chunk, protocols)
            if table is None:  # pruned meanwhile by another run of the same day: fetch those again
                for protocol in protocols:
                    del self.cached[protocol], self.fetched[protocol]
                self.to_fetch.extend(sorted(protocols))
            else:
                self._writer.write(table)
        return self

    def add(self, protocol_id: str, items: list[dict]) -> None:
        self.fetched[protocol_id] = len(items)
        self._batch.append((protocol_id, items))
        self._batch_size += len(items)
        if self._batch_size >= self._flush_messages or time.monotonic() - self._since >= self._flush_seconds:
            self._flush()

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            try:
                self._flush()
            except BaseException:
                self._replace.__exit__(*sys.exc_info())  # the staged day is removed, the old one stays
                raise
        self._replace.__exit__(kind, error, trace)  # audits, then publishes or quarantines (DayRejected)
        if kind is not None:
            return
        self.written, self.checks = self._writer.result, self._writer.checks
        self._cache.prune(self._ends)

    def _audit(self, writer) -> dict:
        """The checks of the staged day, before it is published."""
        return {"messages_complete": messages_complete(self._expected, self.fetched),
                "message_id_unique": unique_ids(writer.read(["message_id"]).column("message_id"), "message_id")}

    @property
    def sample(self) -> pa.Table:
        return self._writer.sample

    def _flush(self) -> None:
        if not self._batch:
            return
        table = messages_table(self._batch, self._privacy).sort_by(
            [("protocol_id", "ascending"), ("created_at", "ascending")])
        # Cached: conversations that had ended, with at least as many messages as the counter says (fewer
        # means some are missing: fetched again next time rather than kept).
        ended = {p: [self._ends[p], len(items)] for p, items in self._batch
                 if self._ends.get(p) is not None and len(items) >= (self._expected[p] or 0)}
        if len(ended) < len(self._batch):
            ended_table = table.filter(pc.is_in(table.column("protocol_id"), pa.array(list(ended), pa.string())))
        else:
            ended_table = table
        self._cache.add(ended_table, ended)
        self._writer.write(table)
        self._batch, self._batch_size, self._since = [], 0, time.monotonic()
