"""What a republished day changed against the version it replaces: rows added, removed and changed, by key.

Days change after they end (interactions end days later, late messages come), and the look-back fetches
them again. Before a day is published (`Lake.replace_partition`) its staged file is compared with the
published one: each file is streamed by row groups into two 64-bit hashes per row, one of its key and
one of its content, computed column by column with numpy and pandas (no Python loop over rows); only
the key columns of the few rows named as examples are read again. Keys (`KEYS`): the protocol for the
histories and conversations, the protocol and message id for messages (a message without an id is known
by its content, so a changed one counts as removed and added), the line's title for reports. A key seen
twice is told apart by its rank. Columns one version lacks are left out, and a column whose type changed
is compared after a cast, so an upgrade that adds a column is not a change of every row.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEYS: dict[str, tuple[str, ...]] = {
    "history": ("protocol_id",), "history_expanded": ("protocol_id",), "conversations": ("protocol_id",),
    "messages": ("protocol_id", "message_id"),
    **{f"report_by_{t}": ("title",) for t in ("period", "agent", "department", "channel", "tag")},
}
EXAMPLES = 10  # keys named per kind of change
BATCH_ROWS = 4_096  # rows hashed at a time: 4,096 conversations nest ~25,000 messages; 65,536 rows made this a day's peak
PRIME = np.uint64(0x100000001B3)
NULL = np.uint64(0x9E3779B97F4A7C15)  # the hash of a null value, of any type
NO_KEY = np.uint64(0xC2B2AE3D27D4EB4F)  # mixed into a keyless row's content hash: it never equals a real key's


@dataclass(frozen=True)
class Changes:
    """A republished day against the version it replaced; `error` says why it could not be compared."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)  # "added"/"removed"/"changed" -> a few keys
    seconds: float = 0.0
    error: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def __str__(self) -> str:
        if self.error:
            return f"not compared ({self.error})"
        parts = [f"{n} {kind}" + (f" ({', '.join(self.examples[kind])}{', …' if n > len(self.examples[kind]) else ''})"
                                  if self.examples.get(kind) else "")
                 for kind, n in (("added", self.added), ("removed", self.removed), ("changed", self.changed))]
        return f"rows {'; '.join(parts)}"


@dataclass(frozen=True)
class Digest:
    """Per row: the hash of its key (unique within the version) and the hash of its content."""

    keys: np.ndarray
    rows: np.ndarray


def against_published(fs, published: list[str], staged: str, dataset: str) -> Changes | None:
    """The staged day against the published files of the day (`published`: full paths on `fs`); None when
    there is nothing to compare (a first version, or a dataset without keys). Never raises: a comparison
    that fails says why in `error`, and the publish goes on."""
    key = KEYS.get(dataset)
    if not key or not published:
        return None
    started = time.monotonic()
    try:
        old_schema, new_schema = _schema(fs, published), _schema(fs, [staged])
        columns = comparable(old_schema, new_schema)
        if any(k not in columns for k in key):
            return Changes(error=f"a key column of {', '.join(key)} is missing from a version")
        target = pa.schema([new_schema.field(c) for c in columns])
        old = digest(_batches(fs, published, columns, target), key)
        new = digest(_batches(fs, [staged], columns, target), key)
        added, removed, changed = diff(old, new)
        examples = {"added": _named(fs, [staged], key, added), "removed": _named(fs, published, key, removed),
                    "changed": _named(fs, [staged], key, changed)}
        return Changes(len(added), len(removed), len(changed), examples, round(time.monotonic() - started, 3))
    except Exception as exc:  # the comparison is a report on the publish: it never stops one
        return Changes(error=f"{type(exc).__name__}: {exc}", seconds=round(time.monotonic() - started, 3))


def compare(old: pa.Table, new: pa.Table, key: tuple[str, ...]) -> Changes:
    """Two versions held in memory, compared as `against_published` compares files."""
    columns = comparable(old.schema, new.schema)
    target = pa.schema([new.schema.field(c) for c in columns])
    a, b = (digest(_cast(t.select(columns), target).to_batches(BATCH_ROWS), key) for t in (old, new))
    added, removed, changed = diff(a, b)

    def named(table: pa.Table, rows: np.ndarray) -> list[str]:
        return _keys_text(table.select(list(key)).take(pa.array(rows[:EXAMPLES], pa.int64())))

    return Changes(len(added), len(removed), len(changed),
                   {"added": named(new, added), "removed": named(old, removed), "changed": named(new, changed)})


def comparable(old: pa.Schema, new: pa.Schema) -> list[str]:
    """The columns both versions have, in the new order; one whose type changed only if the old casts to it."""
    return [f.name for f in new if f.name in old.names and _castable(old.field(f.name).type, f.type)]


def diff(old: Digest, new: Digest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions: added (in new), removed (in old), changed (in new: same key, other content)."""
    _, in_old, in_new = np.intersect1d(old.keys, new.keys, assume_unique=True, return_indices=True)
    kept_old, kept_new = np.zeros(len(old.keys), bool), np.zeros(len(new.keys), bool)
    kept_old[in_old], kept_new[in_new] = True, True
    changed = np.sort(in_new[old.rows[in_old] != new.rows[in_new]])
    return np.flatnonzero(~kept_new), np.flatnonzero(~kept_old), changed


def digest(batches: Iterable[pa.RecordBatch], key: tuple[str, ...]) -> Digest:
    keys, rows = [], []
    for batch in batches:
        content = row_hashes(batch)
        keyed = row_hashes(batch.select(list(key)))
        missing = np.zeros(batch.num_rows, bool)
        for name in key:
            missing |= batch.column(name).is_null().to_numpy(zero_copy_only=False)
        keys.append(np.where(missing, _mix(content ^ NO_KEY), keyed))
        rows.append(content)
    keys = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    return Digest(_unique(keys), np.concatenate(rows) if rows else np.empty(0, np.uint64))


def row_hashes(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """One 64-bit hash per row of every column, in column order."""
    out = np.full(batch.num_rows, PRIME, np.uint64)
    for column in batch.columns:
        out = _mix((out ^ column_hash(_array(column))) * PRIME)
    return out


def column_hash(array: pa.Array) -> np.ndarray:
    """One 64-bit hash per value, nested lists and structs included (a list's items count in their order)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return column_hash(array.dictionary_decode())
    if pa.types.is_struct(kind):
        out = np.full(len(array), PRIME, np.uint64)
        for child in array.flatten():
            out = _mix((out ^ column_hash(child)) * PRIME)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
        values = array.flatten()
        ends = np.cumsum(lengths)
        position = np.arange(len(values), dtype=np.int64) - np.repeat(ends - lengths, lengths)
        items = _mix(column_hash(values) ^ _mix(position.astype(np.uint64) + PRIME))
        sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(items, dtype=np.uint64)])
        out = _mix((sums[ends] - sums[ends - lengths]) ^ lengths.astype(np.uint64))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        out = pd.util.hash_array(pc.fill_null(array, "").to_numpy(zero_copy_only=False), categorize=False)
    elif pa.types.is_boolean(kind):
        out = pd.util.hash_array(pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(np.uint8))
    elif pa.types.is_floating(kind):
        out = pd.util.hash_array(pc.fill_null(array.cast(pa.float64()), 0).to_numpy().view(np.int64))
    elif pa.types.is_integer(kind) or pa.types.is_temporal(kind):
        out = pd.util.hash_array(pc.fill_null(array.view(_signed(kind)) if pa.types.is_temporal(kind) else
                                              array.cast(pa.int64()), 0).to_numpy().astype(np.int64))
    else:
        raise TypeError(f"no row hash for type {kind}")
    if array.null_count:
        out = np.where(array.is_null().to_numpy(zero_copy_only=False), NULL, out)
    return out.astype(np.uint64, copy=False)


def _mix(values: np.ndarray) -> np.ndarray:
    """A 64-bit finalizer (splitmix64's), so that combined hashes stay spread; wraps around on purpose."""
    values = values.astype(np.uint64, copy=True)
    values ^= values >> np.uint64(30)
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    values ^= values >> np.uint64(31)
    return values


def _unique(keys: np.ndarray) -> np.ndarray:
    """A key seen again gets its rank mixed in (the second row of a key is "that key, twice")."""
    rank = pd.Series(keys).groupby(keys, sort=False).cumcount().to_numpy().astype(np.uint64)
    return np.where(rank == 0, keys, _mix(keys ^ _mix(rank)))


def _signed(kind: pa.DataType) -> pa.DataType:
    return pa.int32() if kind.bit_width == 32 else pa.int64()


def _array(column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _castable(old: pa.DataType, new: pa.DataType) -> bool:
    if old == new:
        return True
    try:
        pa.array([], old).cast(new)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _cast(table: pa.Table | pa.RecordBatch, target: pa.Schema):
    return table if table.schema == target else table.cast(target)


def _schema(fs, paths: list[str]) -> pa.Schema:
    with fs.open(paths[0], "rb") as handle:
        return pq.read_schema(handle)


def _batches(fs, paths: list[str], columns: list[str], target: pa.Schema) -> Iterator[pa.RecordBatch]:
    for path in paths:
        with fs.open(path, "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(BATCH_ROWS, columns=columns):
                yield _cast(batch.replace_schema_metadata(None), target)


def _named(fs, paths: list[str], key: tuple[str, ...], rows: np.ndarray) -> list[str]:
    """The keys of the first few rows given, read from the key columns alone."""
    if not len(rows):
        return []
    table = pa.concat_tables(pq.read_table(p, filesystem=fs, columns=list(key)).replace_schema_metadata(None)
                             for p in paths)
    return _keys_text(table.take(pa.array(rows[:EXAMPLES], pa.int64())))


def _keys_text(table: pa.Table) -> list[str]:
    """`123` or `123/m-4` (protocol/message); a missing part reads `(none)`."""
    return ["/".join("(none)" if v is None else str(v) for v in row.values()) for row in table.to_pylist()]
