"""Messages of finished conversations, kept in the lake so that each is fetched from the API once.

A conversation's messages stop changing when it ends. While a day's messages are fetched, every
batch of conversations that had ended is written at once to
`<lake>/_cache/messages/date=D/chunk-<time>-<id>.parquet`, before the day's partition is swapped in.
A second materialization of the day, or a run resuming after a crash, reads them back instead of
asking the API again. A chunk's footer lists its protocols with the version the expanded history
gave them (end time and `messages` counter) and how many messages were stored (conversations without
messages included), and a protocol is taken from the cache only if the history still shows that same
version: a conversation that was reopened, or got late messages, has another end time or counter.
After the day is published the chunks are compacted (`compact`), so a day keeps one or two chunk files
however small the batches were that a rate limit made it write them in.
The cache sits in the lake, so a run on another machine (or on an object store) finds it too. Chunks
written under another personal-data setting, or by an older version, are not reused. Deleting
`_cache/` is always safe: it only costs requests.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import suppress

import pyarrow as pa
import pyarrow.compute as pc

from .lake import Lake
from .privacy import Privacy

DATASET = "_cache/messages"
ENDS_KEY = b"zchat.message_ends"  # protocol -> [version (end time|counter), messages stored]
PRIVACY_KEY = b"zchat.personal_data"


def expire(lake: Lake, retention_days: int) -> int:
    """Deletes the chunks written more than `retention_days` ago, by their own age (a chunk being written
    or read now is younger): the cache only saves requests. Returns how many."""
    return lake.sweep(lake.relative(DATASET), retention_days * 86400)


class MessageCache:
    def __init__(self, lake: Lake, day: str, privacy: Privacy):
        """Reads the footers of the day's chunks, once; chunks this object adds are recorded as they go.
        `privacy` is the setting the chunks were written under: chunks of another are not reused."""
        self._lake, self._day = lake, day
        self.privacy = privacy
        self._chunks: dict[str, dict[str, list]] = {}  # chunk -> {protocol: [version, messages]}, oldest first
        self.added = 0  # chunks this object wrote for fetched conversations (compaction not counted)
        for chunk in lake.files(DATASET, day):
            try:
                metadata = lake.file_metadata(chunk)
            except FileNotFoundError:  # pruned by another run of the same day since the listing
                continue
            same_setting = metadata.get(PRIVACY_KEY, b"keep").decode() == self.privacy.fingerprint
            # Chunks stored under another personal-data setting are never used: fetched again instead.
            self._chunks[chunk] = json.loads(metadata.get(ENDS_KEY, b"{}")) if same_setting else {}

    def usable(self, ends: dict[str, str | None]) -> dict[str, str]:
        """protocol -> chunk holding its messages, for protocols whose version is still the one of `ends`
        (None: not ended, never taken from the cache).

        When a protocol sits in several chunks (it was fetched again), the newest chunk wins.
        """
        found: dict[str, str] = {}
        for chunk, stored in self._chunks.items():
            for protocol, (end, _) in stored.items():
                if ends.get(protocol) is not None and ends[protocol] == end:
                    found[protocol] = chunk
                else:
                    found.pop(protocol, None)
        return found

    @property
    def chunks(self) -> list[str]:
        """The day's chunks this object knows of, oldest first."""
        return list(self._chunks)

    def stored(self, protocol: str, chunk: str) -> int:
        """How many messages of the protocol the chunk holds."""
        return self._chunks[chunk][protocol][1]

    @staticmethod
    def by_chunk(usable: dict[str, str]) -> dict[str, set[str]]:
        chunks: dict[str, set[str]] = defaultdict(set)
        for protocol, chunk in usable.items():
            chunks[chunk].add(protocol)
        return dict(sorted(chunks.items()))

    def read(self, chunk: str, protocols: set[str]) -> Iterator[pa.Table] | None:
        """The chunk's rows of `protocols` (other rows were superseded by a newer chunk or left the day), one
        row group at a time: a compacted day is one chunk, too big to hold whole beside the day being written.
        None if another run of the same day has pruned the chunk since it was listed."""
        try:
            groups = self._lake.row_groups(chunk)
        except FileNotFoundError:
            return None
        wanted = None if len(protocols) == len(self._chunks[chunk]) else pa.array(sorted(protocols), pa.string())

        def rows() -> Iterator[pa.Table]:
            for group in groups:
                if wanted is not None:
                    group = group.filter(pc.is_in(group.column("protocol_id"), wanted))
                yield group.replace_schema_metadata(None)

        return rows()

    def add(self, table: pa.Table, ended: dict[str, list]) -> None:
        """Stores the messages of ended conversations (`ended`: protocol -> [version, messages])."""
        if not ended:
            return
        self._store([table], ended, time.time_ns())
        self.added += 1

    def _store(self, tables: Iterable[pa.Table], ended: dict[str, list], stamp: int) -> str:
        """Writes one chunk of `tables`, one after the other, named after `stamp` (nanoseconds: chunks sort by
        it, the newest last)."""
        name = f"chunk-{stamp:020d}-{uuid.uuid4().hex[:8]}.parquet"
        metadata = {ENDS_KEY: json.dumps(ended, separators=(",", ":")).encode(),
                    PRIVACY_KEY: self.privacy.fingerprint.encode()}
        tables = iter(tables)
        first = next(tables)
        chunk = self._lake.add_tables(DATASET, self._day, name, first.schema.with_metadata(metadata),
                                      itertools.chain([first], tables))
        self._chunks[chunk] = dict(ended)
        return chunk

    def _present(self, chunk: str) -> bool:
        """Whether the chunk is still there (another run of the same day may have pruned it since it was listed)."""
        try:
            self._lake.file_metadata(chunk)
        except FileNotFoundError:
            return False
        return True

    def prune(self, ends: dict[str, str | None]) -> int:
        """Deletes the chunks this object knows of whose protocols would none be used any more; returns
        how many. Safe when runs of the same day overlap: chunks another run added meanwhile are left
        alone, a chunk another run already deleted is skipped, and a run that finds a listed chunk gone
        fetches its conversations again (`read` returns None)."""
        used = set(self.usable(ends).values())
        stale = [chunk for chunk in self._chunks if chunk not in used]
        for chunk in stale:
            with suppress(FileNotFoundError):
                self._lake.remove_file(chunk)
            del self._chunks[chunk]
        return len(stale)

    def compact(self, ends: dict[str, str | None]) -> int:
        """Merges the day's chunks into one, so that the day keeps at most two chunk files whatever the size of
        the batches it was written in; returns how many chunks it replaced. The biggest chunk is left as it is
        when it holds at least as many of the messages in use as all the others together (a look-back run adds
        a few late conversations: only those are rewritten), else every chunk in use is merged.

        Safe when runs of the same day overlap: the merged chunk is written first, named after the newest
        chunk it replaces (so a chunk another run adds meanwhile stays newer, and wins), and then only the
        chunks whose every protocol in use it holds are deleted; a chunk another run added is not known here
        and stays, one it deleted meanwhile is left out, and a run reading a chunk deleted here fetches its
        conversations again (`read` returns None)."""
        in_use = self.by_chunk(self.usable(ends))
        sizes = {chunk: sum(self._chunks[chunk][p][1] for p in protocols) for chunk, protocols in in_use.items()}
        biggest = max(sizes, key=sizes.get, default=None)
        if biggest is not None and 2 * sizes[biggest] >= sum(sizes.values()):
            del in_use[biggest]
        in_use = {chunk: protocols for chunk, protocols in in_use.items() if self._present(chunk)}
        if len(in_use) < 2:
            return 0
        ended = {p: self._chunks[chunk][p] for chunk, protocols in in_use.items() for p in protocols}

        def tables() -> Iterator[pa.Table]:  # one row group in memory at a time, however big the day
            for chunk, protocols in in_use.items():
                groups = self.read(chunk, protocols)
                if groups is None:  # pruned by another run meanwhile: this merge would claim what it lacks
                    raise _Vanished
                yield from groups

        try:
            self._store(tables(), ended, max(_stamp(chunk) for chunk in in_use))
        except _Vanished:
            return 0  # nothing written; the next run merges what is left
        for chunk in in_use:
            with suppress(FileNotFoundError):
                self._lake.remove_file(chunk)
            del self._chunks[chunk]
        return len(in_use)


class _Vanished(Exception):
    """A chunk being merged was deleted by another run of the same day."""


def _stamp(chunk: str) -> int:
    """The nanoseconds a chunk's name starts with (`chunk-<stamp>-<id>.parquet`)."""
    return int(chunk.rsplit("/", 1)[-1].split("-")[1])
