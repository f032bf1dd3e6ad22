"""One day's messages on their way into the lake: the single owner of the cache, the partition and the checks.

`DayMessages` takes the day's expanded history (each protocol's `messages` counter and end time, both
None while unfinished), whole or a page at a time as it is read (`take`), and says which of its protocols
the message cache cannot give, to fetch. It takes fetched `(protocol, messages)` pairs meanwhile, and
writes them in batches of `flush_messages` messages or `flush_seconds`, whichever comes first; then the
conversations the cache gives (`from_cache`). Each batch goes to the day's
partition and, for the conversations that had ended, to the cache at the same moment, so an
interrupted run loses at most one batch of work (and a failing one caches its last batch too). A
finished conversation short of its counter is held back until it is asked again (`short`): still
short, it is a gap, like a conversation the API says is not there (gaps.py). On close the day is
swapped in, its gaps recorded, the stale cache chunks pruned and the others compacted, and the checks computed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from contextlib import suppress
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from . import gaps as gap_records
from .api import ApiUnavailableError, GoneError
from .gaps import Gap
from .lake import Lake, WrittenPartition
from .message_cache import MessageCache
from .privacy import Privacy
from .quality import Check, message_gaps, messages_complete, unique_ids
from .schemas import dataset_schema, messages_table

DATASET = "messages"
FLUSH_MESSAGES = 4_000
FLUSH_SECONDS = 2.0


EXPANDED_COLUMNS = ["protocol_id", "messages", "end_time"]
# In a messages day's Parquet footer: the expanded history it was fetched for (see `fingerprint`).
BUILT_FROM = b"zchat.history_expanded"


def fingerprint(expanded: pa.Table) -> str:
    """Names a version of a day's expanded history (its protocols, counters and end times), so that what
    is built from it can say which version that was: conversations join messages only with the history
    they were fetched for."""
    rows = expanded.select(EXPANDED_COLUMNS).sort_by("protocol_id").to_pylist()
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]


def expected_counts(expanded: pa.Table) -> dict[str, int | None]:
    """protocol -> the `messages` counter to expect at least; None while unfinished (more may come).
    Records without an id have no messages to ask for: they are kept, and flagged, in the histories."""
    finished = pc.is_valid(expanded.column("end_time")).to_pylist()
    counts = expanded.column("messages").to_pylist()
    return {p: (n if done else None) for p, n, done in zip(expanded.column("protocol_id").to_pylist(), counts, finished)
            if p is not None}


def versions(expanded: pa.Table) -> dict[str, str | None]:
    """protocol -> the conversation's version as the expanded history gives it now, its end time and its
    `messages` counter (`2026-11-18T15:02:11+00:00|12`); None while unfinished. A cached conversation is
    reused only while both are what they were when it was stored: late messages change the counter."""
    ends, counts = expanded.column("end_time").to_pylist(), expanded.column("messages").to_pylist()
    return {p: (f"{e.isoformat()}|{n}" if e else None)
            for p, e, n in zip(expanded.column("protocol_id").to_pylist(), ends, counts) if p is not None}


class DayMessages:
    def __init__(self, lake: Lake, day: str, privacy: Privacy, *,
                 flush_messages: int = FLUSH_MESSAGES, flush_seconds: float = FLUSH_SECONDS):
        self._lake, self._day, self._privacy = lake, day, privacy
        self._expected: dict[str, int | None] = {}
        self._ends: dict[str, str | None] = {}
        self._built_from: str | None = None
        self._flush_messages, self._flush_seconds = flush_messages, flush_seconds
        self._cache = MessageCache(lake, day, privacy)
        self._lock = threading.Lock()  # `take` may run in the thread reading the pages, beside `add`
        self.cached: dict[str, str] = {}  # protocol -> chunk
        self.to_fetch: list[str] = []
        self.fetched: dict[str, int] = {}  # protocol -> messages
        self.written: WrittenPartition | None = None
        self.checks: dict[str, Check] = {}
        self.gaps: dict[str, Gap] = {}
        self._short: dict[str, list[dict]] = {}  # finished, fewer messages than the counter: asked again first
        self._started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._batch: list[tuple[str, list[dict]]] = []
        self._batch_size = 0
        self._since = time.monotonic()

    def __enter__(self) -> DayMessages:
        self._replace = self._lake.replace_partition(DATASET, self._day, dataset_schema(DATASET), self._audit)
        self._writer = self._replace.__enter__()
        return self

    def take(self, expanded: pa.Table) -> list[str]:
        """Takes the expanded history, or one page of it; returns its protocols the cache cannot give, to fetch.
        A protocol already taken is not taken again."""
        expected, ends = expected_counts(expanded), versions(expanded)
        with self._lock:
            new = [p for p in expected if p not in self._expected]
            self._expected.update((p, expected[p]) for p in new)
            self._ends.update((p, ends[p]) for p in new)
            cached = self._cache.usable({p: ends[p] for p in new})
            self.cached.update(cached)
            self.fetched.update((p, self._cache.stored(p, chunk)) for p, chunk in cached.items())
            fetch = [p for p in new if p not in cached]
            self.to_fetch.extend(fetch)
        return fetch

    def fetched_for(self, expanded: pa.Table) -> None:
        """Names the version of the expanded history these messages are for, in the day's footer (`fingerprint`)."""
        self._built_from = fingerprint(expanded)

    def from_cache(self) -> list[str]:
        """Writes the conversations the cache gives, once every protocol is taken; returns those to fetch after
        all (another run of the same day pruned their chunk meanwhile)."""
        again: list[str] = []
        for chunk, protocols in self._cache.by_chunk(self.cached).items():
            groups = self._cache.read(chunk, protocols)
            if groups is None:
                for protocol in protocols:
                    del self.cached[protocol], self.fetched[protocol]
                again.extend(sorted(protocols))
                continue
            for table in groups:
                self._writer.write(table)
        self.to_fetch.extend(again)
        return again

    def add(self, protocol_id: str, items: list[dict] | GoneError) -> None:
        """A protocol's messages as the API answered; the second answer of one held back as short settles it."""
        if isinstance(items, GoneError):
            self.gaps[protocol_id] = Gap("purged", f"the API answered {items}")
            before = self._short.pop(protocol_id, None)
            if before:  # what the first answer gave is kept: the day loses nothing it had
                self.fetched[protocol_id] = len(before)
                self._batch.append((protocol_id, before))
            return
        expected, before = self._expected.get(protocol_id), self._short.pop(protocol_id, None)
        if expected is not None and len(items) < expected:
            if before is None:
                self._short[protocol_id] = items
                return
            items = max(before, items, key=len)
            self.gaps[protocol_id] = Gap("short", f"{len(items)} of the {expected} messages its counter gives, "
                                                  "when asked twice")
        self.fetched[protocol_id] = len(items)
        self._batch.append((protocol_id, items))
        self._batch_size += len(items)
        if self._batch_size >= self._flush_messages or time.monotonic() - self._since >= self._flush_seconds:
            self._flush()

    def short(self) -> list[str]:
        """Finished conversations that came with fewer messages than their counter, to be asked again."""
        return sorted(self._short)

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            with suppress(Exception):  # what was fetched is kept for the next run; the real error goes on
                self._flush(to_day=False)
            self._replace.__exit__(kind, error, trace)  # the staged day is removed, the old one stays
            return
        try:
            for protocol_id, items in self._short.items():  # never asked again: kept, and the check says so
                self.fetched[protocol_id] = len(items)
                self._batch.append((protocol_id, items))
            self._flush()
            self._keep_published()
            if self._built_from is not None:
                self._writer.footer[BUILT_FROM] = self._built_from.encode()
        except BaseException:
            self._replace.__exit__(*sys.exc_info())
            raise
        self._replace.__exit__(None, None, None)  # audits, then publishes or quarantines (DayRejected)
        self.written, self.checks = self._writer.result, self._writer.checks
        gap_records.record(self._lake, self._day, self.gaps, self._started)
        self._cache.prune(self._ends)
        with suppress(OSError):  # the day is published: a chunk left over is merged by the next run
            self._cache.compact(self._ends)

    def _keep_published(self) -> None:
        """A conversation purged at the vendor keeps the messages the lake's published day already has, so a
        later run (the look-back, a backfill) never removes what was fetched before it was purged. When every
        conversation asked for answers 404, that is the API, not purged conversations: the day fails."""
        purged = {p for p, gap in self.gaps.items() if gap.kind == "purged"} - set(self.fetched)
        if len(purged) >= 3 and not self.fetched:  # nothing came, from the API or the cache
            raise ApiUnavailableError(f"messages {self._day}: all {len(purged)} conversations asked for answered 404, which "
                                      "looks like the API, not conversations purged at the vendor: the previous "
                                      "version stays; try again later, or run zchat-assets doctor.")
        if not purged or not self._lake.exists(DATASET, self._day):
            return
        published = self._lake.read(DATASET, self._day, schema=dataset_schema(DATASET))
        kept = published.filter(pc.is_in(published.column("protocol_id"), pa.array(sorted(purged), pa.string())))
        if kept.num_rows:
            self._writer.write(kept)

    def _audit(self, writer) -> dict:
        """The checks of the staged day, before it is published."""
        return {"messages_complete": messages_complete(self._expected, self.fetched, self.gaps),
                "message_id_unique": unique_ids(writer.read(["message_id"]).column("message_id"), "message_id"),
                "message_gaps": message_gaps(self.gaps)}

    @property
    def cache_files(self) -> tuple[int, int]:
        """The cache chunks this run wrote for what it fetched, and the chunks the day has now."""
        return self._cache.added, len(self._cache.chunks)

    @property
    def sample(self) -> pa.Table:
        return self._writer.sample

    def _flush(self, to_day: bool = True) -> None:
        """Writes the batch to the cache (the conversations that had ended) and, unless the day failed, to
        the day."""
        if not self._batch:
            return
        table = messages_table(self._batch, self._privacy).sort_by(
            [("protocol_id", "ascending"), ("created_at", "ascending")])
        # Cached: conversations that had ended and look whole, at least as many messages as the counter says
        # and no id twice (fewer, or a repeat, is fetched again next time rather than kept).
        ended = {p: [self._ends[p], len(items)] for p, items in self._batch
                 if self._ends.get(p) is not None and len(items) >= (self._expected[p] or 0) and _distinct(items)}
        if len(ended) < len(self._batch):
            ended_table = table.filter(pc.is_in(table.column("protocol_id"), pa.array(list(ended), pa.string())))
        else:
            ended_table = table
        with self._lock:  # `take` reads the cache's chunks
            self._cache.add(ended_table, ended)
        if to_day:
            self._writer.write(table)
        self._batch, self._batch_size, self._since = [], 0, time.monotonic()


def _distinct(items: list[dict]) -> bool:
    """No message id twice (messages without one, such as some system messages, are not compared)."""
    ids = [m.get("id") for m in items if m.get("id") is not None]
    return len(ids) == len(set(ids))
