"""The Parquet lake: Hive-style day folders, each day one file replaced whole, on a local folder or any fsspec URI.

`<lake>/<dataset>/date=YYYY-MM-DD/part-00000.parquet` (a named account adds `account=<name>/` before
`date=`). Each account's part of a lake (the whole lake for the unnamed account) records its origin in
`<lake>/_origins/` when first written, and a writer of another origin is refused before it writes. A day is written into a staging file outside the dataset (`<lake>/_staging/`, which readers
globbing `<dataset>/` never see) and then published with one atomic step onto its one explicit key: a
rename on a local disk, a single-object copy on an object store, where an object appears whole or not
at all. So a reader sees the previous day or the new one: never half of one, never both, never a folder
nested in another, and two runs that write the same day at the same time leave exactly one of their two
versions, whole (the last to publish). No lock is needed for that, so none can be left behind by a
killed run. Row groups keep a large day readable in parallel: one file a day costs readers nothing.
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from . import provenance
from .changes import Changes, against_published

STAGING = "_staging"
QUARANTINE = "_quarantine"
ORIGINS = "_origins"
UNNAMED_ORIGIN = "lake.json"  # the unnamed account's claim: the whole lake
PART = "part-00000.parquet"
SAMPLE_ROWS = 5
STALE_STAGING_SECONDS = 24 * 3600  # no write of one day stays in staging that long


class LakeError(ValueError):
    """The lake URI cannot be used."""


class DayRejected(Exception):
    """A day failed a blocking check on its staged data: it was not published, and is kept aside."""

    def __init__(self, dataset: str, day: str, checks: dict, quarantine: str):
        self.dataset, self.day, self.checks, self.quarantine = dataset, day, checks, quarantine
        failed = "; ".join(f"{name} failed ({check.detail})" for name, check in checks.items() if check.blocks)
        super().__init__(f"{dataset} {day} was not published: {failed}; the previous version stays, and the "
                         f"rejected data is kept for inspection in {quarantine}.")


@dataclass(frozen=True)
class Origin:
    """What an account's part of a lake holds: whose data, from which API host, in which time zone's days."""

    account: str | None
    host: str
    timezone: str

    def __str__(self) -> str:
        who = f"account {self.account}" if self.account else "the unnamed account"
        return f"{who} from {self.host} in {self.timezone}"


@dataclass(frozen=True)
class WrittenPartition:
    uri: str
    rows: int
    files: int
    bytes: int
    changes: Changes | None = None  # against the version it replaced; None for a first version
    provenance: dict | None = None  # what wrote it, as its footer says (provenance.py)


class PartitionWriter:
    """Streams tables of one schema into a day's staging file."""

    def __init__(self, lake: Lake, path: str, schema: pa.Schema, dataset: str):
        self._lake, self.path, self.schema, self.dataset = lake, path, schema, dataset
        self.erasures = lake.erasures.version if lake.erasures else None  # the erasures this day was written under
        self.rows = 0
        self.provenance: dict | None = None  # written into the footer when the file is finished
        self.footer: dict[bytes, bytes] = {}  # more of the footer's key-value metadata, known only at the end
        self.result: WrittenPartition | None = None  # set once the day is published
        self.checks: dict = {}  # the audit's verdicts on the staged day
        self.sample = schema.empty_table()  # the first rows written, for previews
        self._writer: pq.ParquetWriter | None = None
        self._handle = None

    def write(self, table: pa.Table) -> pa.Table:
        """Appends `table` to the day; returns it as written (in the day's schema, without erased subjects)."""
        if table.num_rows == 0 and self._writer is not None:
            return table
        table = table.select(self.schema.names).cast(self.schema)
        if self._lake.erasures:
            table = self._lake.erasures.apply(self.dataset, table)
        if not self.sample.num_rows and table.num_rows:
            # A copy: a slice would keep the whole first table alive until the day is written.
            self.sample = pa.Table.from_pylist(table.slice(0, SAMPLE_ROWS).to_pylist(), schema=self.schema)
        if self._writer is None:
            self._handle = self._lake.fs.open(self.path, "wb")
            self._writer = pq.ParquetWriter(self._handle, self.schema, compression="zstd")
        self._writer.write_table(table)
        self.rows += table.num_rows
        return table

    def abort(self) -> None:
        """Lets go of the staging file without writing anything more (a failed write; the disk may be full)."""
        for closing in (self._writer, self._handle):
            with suppress(Exception):
                if closing is not None:
                    closing.close()
        self._writer = self._handle = None

    def close(self) -> None:
        """Finishes the staging file (an empty day still gets one, with the schema); safe to call twice."""
        if self._writer is None and self._handle is None:
            self.write(self.schema.empty_table())
        if self._writer is not None:
            if self._lake.provenance is not None:
                self.provenance = self._lake.provenance(self.schema, self.rows)
            footer = _footer(self.provenance, self.footer)
            if footer:
                self._writer.add_key_value_metadata(footer)
            self._writer.close()
            self._handle.close()
            self._writer = None

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The staged day, as written so far and closed (for checks before it is published)."""
        self.close()
        return pq.read_table(self.path, filesystem=self._lake.fs, columns=columns)


class Lake:
    """One account's view of a lake root. A named `account` has a Hive level of its own in every dataset
    (`<dataset>/account=<name>/date=D`), so several accounts share one lake and one glob reads them all
    with an `account` column. `setting` is where the URI was set (ZCHAT_LAKE_URI, or a defs.yaml's
    `lake_uri`), named in every error."""

    def __init__(self, uri: str, account: str | None = None, setting: str = "ZCHAT_LAKE_URI"):
        self.account, self.setting = account, setting
        if not uri or not uri.strip():
            raise LakeError(f"{setting} is empty: set it to a folder or an fsspec URI (s3://bucket/prefix).")
        try:
            # No listing cache: other runs and machines write to the same lake.
            self.fs, root = fsspec.core.url_to_fs(uri.strip(), use_listings_cache=False)
        except (ImportError, ValueError) as exc:
            raise LakeError(f"{setting} {uri!r} cannot be opened ({exc}): install the fsspec driver for it "
                            "or use a local folder.") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        self.erasures = None  # the account's recorded erasures (erasure.Erasures), applied to every table written
        self.provenance = None  # what writes (provenance.stamp), put in every Parquet footer
        self.origin: Origin | None = None  # set once claimed
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")

    def relative(self, dataset: str, day: str | None = None) -> str:
        """A dataset's folder below the root (of this account), or one day's."""
        base = f"{dataset}/account={self.account}" if self.account else dataset
        return f"{base}/date={day}" if day else base

    def folder(self, dataset: str, day: str | None = None) -> str:
        return f"{self.root}/{self.relative(dataset, day)}"

    def uri(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)

    @contextmanager
    def replace_partition(self, dataset: str, day: str, schema: pa.Schema,
                          audit: Callable[[PartitionWriter], dict] | None = None) -> Iterator[PartitionWriter]:
        """Yields a writer. On normal exit the staged day is audited (`audit` returns the day's checks,
        kept in `writer.checks`), then published (`writer.result` describes it) unless a check blocks
        it: then it goes to quarantine and `DayRejected` is raised. On any failure the previous day
        stays, byte for byte, and the staging file is removed on every path."""
        staging = f"{self.root}/{STAGING}/{self.relative(dataset, day)}.{uuid.uuid4().hex}.parquet"
        self.fs.makedirs(staging.rsplit("/", 1)[0], exist_ok=True)
        writer = PartitionWriter(self, staging, schema, dataset)
        try:
            yield writer
            writer.close()
            self._erase_late(writer)
            writer.checks = audit(writer) if audit else {}
            if any(check.blocks for check in writer.checks.values()):
                raise DayRejected(dataset, day, writer.checks, self._quarantine(staging, dataset, day, writer.checks))
            size = self.fs.size(staging)
            final = self.folder(dataset, day)
            changed = against_published(self.fs, self._parquet(final), staging, dataset)  # never raises
            self._publish(staging, final)
            self._clear(f"{QUARANTINE}/{self.relative(dataset, day)}")  # the next good run ends the quarantine
        except OSError as exc:  # a full disk, a lost permission, a store that went away
            raise LakeError(f"Writing {dataset} {day} to the lake at {self.uri(self.root)} failed "
                            f"({_reason(exc)}): nothing of it was kept and the previous version stays; free "
                            "space or fix access, then run it again.") from None
        finally:
            writer.abort()
            self._discard(staging)
        writer.result = WrittenPartition(self.uri(final), writer.rows, 1, size, changed, writer.provenance)

    def _erase_late(self, writer: PartitionWriter) -> None:
        """An erasure recorded while the day was being written is applied before it is published."""
        if self.erasures is None or not self.erasures.refresh() and writer.erasures == self.erasures.version:
            return
        table = writer.read()
        erased = self.erasures.apply(writer.dataset, table)
        if not erased.equals(table):
            if writer.provenance is not None:
                writer.provenance["rows"] = erased.num_rows
            with self.fs.open(writer.path, "wb") as handle:
                _write(handle, erased, writer.provenance, writer.footer)
            writer.rows, writer.sample = erased.num_rows, erased.slice(0, SAMPLE_ROWS)

    def write_partition(self, dataset: str, day: str, table: pa.Table,
                        audit: Callable[[PartitionWriter], dict] | None = None) -> WrittenPartition:
        with self.replace_partition(dataset, day, table.schema, audit) as writer:
            writer.write(table)
        return writer.result

    def _quarantine(self, staging: str, dataset: str, day: str, checks: dict) -> str:
        """Keeps a rejected day aside with the checks' findings; returns the folder's URI."""
        relative = f"{QUARANTINE}/{self.relative(dataset, day)}"
        folder = f"{self.root}/{relative}"
        self._clear(relative)
        self.fs.makedirs(folder, exist_ok=True)
        findings = {name: {"passed": c.passed, "severity": c.severity, "detail": c.detail} for name, c in checks.items()}
        self.put_json(f"{relative}/findings.json", {"dataset": dataset, "day": day, "rejected_at": _now(),
                                                     "checks": findings})
        self._put(staging, f"{folder}/{PART}")
        return self.uri(folder)

    def _clear(self, relative_folder: str) -> None:
        for path in self._files_in(f"{self.root}/{relative_folder}"):
            self.fs.rm(path)

    def _publish(self, staging: str, final: str) -> None:
        """Puts the staged file on the day's one key in one atomic step, then removes any other file of
        the day (days written before this layout could have several)."""
        target = f"{final}/{PART}"
        self.fs.makedirs(final, exist_ok=True)
        self._put(staging, target)
        for path in self._parquet(final):
            if path.rsplit("/", 1)[-1] != PART:
                self.fs.rm(path)

    def _put(self, staging: str, target: str) -> None:
        """One file onto its key in one atomic step: a rename on a local disk, a single object copied
        server-side on an object store (never a folder moved); the staging file is discarded later."""
        if self.local:
            os.replace(staging, target)
        else:
            self.fs.copy(staging, target)

    def _discard(self, path: str) -> None:
        """Removes a staging file if it is still there; a failure here never hides the real one."""
        with suppress(FileNotFoundError, OSError):
            if self.fs.exists(path):
                self.fs.rm(path)

    def add_file(self, dataset: str, day: str, name: str, table: pa.Table) -> str:
        """Adds one file to a day (append-only datasets such as sensor snapshots), atomically;
        returns its path below the lake root."""
        return self.add_tables(dataset, day, name, table.schema, [table])

    def add_tables(self, dataset: str, day: str, name: str, schema: pa.Schema, tables: Iterable[pa.Table]) -> str:
        """`add_file` of tables written one by one as they come, so that a file need never be whole in memory
        (the message cache's compaction of a day); an exception from `tables` leaves nothing behind."""
        staging = f"{self.root}/{STAGING}/{self.relative(dataset)}/{uuid.uuid4().hex}.parquet"
        self.fs.makedirs(staging.rsplit("/", 1)[0], exist_ok=True)
        final = f"{self.folder(dataset, day)}/{name}"
        if self.erasures is not None:
            self.erasures.refresh()
        try:
            with self.fs.open(staging, "wb") as handle, pq.ParquetWriter(handle, schema, compression="zstd") as writer:
                rows = 0
                for table in tables:
                    table = self.erasures.apply(dataset, table) if self.erasures is not None else table
                    writer.write_table(table)
                    rows += table.num_rows
                if self.provenance is not None:
                    writer.add_key_value_metadata({provenance.KEY: provenance.encoded(self.provenance(schema, rows))})
            self.fs.makedirs(self.folder(dataset, day), exist_ok=True)
            self._put(staging, final)
        finally:
            self._discard(staging)
        return f"{self.relative(dataset, day)}/{name}"

    def rewrite_file(self, relative_path: str, table: pa.Table) -> None:
        """Replaces one file below the root with `table` in one atomic step, its schema's metadata and its
        provenance kept (with the new row count and when it was rewritten)."""
        staging = f"{self.root}/{STAGING}/{uuid.uuid4().hex}.parquet"
        with self.fs.open(f"{self.root}/{relative_path}", "rb") as handle:
            stamp = provenance.read(handle)
        if stamp is not None:
            stamp.update(rows=table.num_rows, rewritten_at=_now())
        try:
            self.fs.makedirs(staging.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(staging, "wb") as handle:
                _write(handle, table, stamp)
            self._put(staging, f"{self.root}/{relative_path}")
        finally:
            self._discard(staging)

    def listing(self, relative_folder: str) -> list[str]:
        """Paths below the root of the files in a folder, in name order ([] when there is none)."""
        return [f"{relative_folder}/{p.rsplit('/', 1)[-1]}" for p in self._files_in(f"{self.root}/{relative_folder}")]

    def put_json(self, relative_path: str, record) -> None:
        """A small JSON record put on its key below the root in one atomic step, written aside first."""
        staging = f"{self.root}/{STAGING}/{uuid.uuid4().hex}.json"
        final = f"{self.root}/{relative_path}"
        try:
            self.fs.makedirs(staging.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(staging, json.dumps(record, indent=2, ensure_ascii=False).encode())
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self._put(staging, final)
        finally:
            self._discard(staging)

    def read_json(self, relative_path: str):
        """A JSON record below the root, or None when there is none."""
        try:
            return json.loads(self.fs.cat_file(f"{self.root}/{relative_path}"))
        except FileNotFoundError:
            return None

    def read_file(self, relative_path: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(f"{self.root}/{relative_path}", filesystem=self.fs, columns=columns)

    def row_groups(self, relative_path: str) -> Iterator[pa.Table]:
        """A Parquet file one row group at a time, so that a big file is never in memory whole. The file is
        opened before the first group is asked for: one missing raises FileNotFoundError right here."""
        handle = self.fs.open(f"{self.root}/{relative_path}", "rb")
        try:
            parquet = pq.ParquetFile(handle)
        except BaseException:
            handle.close()
            raise

        def groups() -> Iterator[pa.Table]:
            with handle:
                if not parquet.num_row_groups:  # a file of no rows: its columns still
                    yield parquet.schema_arrow.empty_table()
                for index in range(parquet.num_row_groups):
                    yield parquet.read_row_group(index)

        return groups()

    def file_metadata(self, relative_path: str) -> dict[bytes, bytes]:
        """The key-value metadata of one Parquet file, read from its footer only: the Arrow schema's, and what
        was added as the file was finished (`PartitionWriter.footer`, the provenance)."""
        with self.fs.open(f"{self.root}/{relative_path}", "rb") as handle:
            return pq.read_metadata(handle).metadata or {}

    def files(self, dataset: str, day: str) -> list[str]:
        """Paths below the lake root of a day's Parquet files, in name order; [] when the day is absent."""
        return [f"{self.relative(dataset, day)}/{p.rsplit('/', 1)[-1]}" for p in self._parquet(self.folder(dataset, day))]

    def _parquet(self, folder: str) -> list[str]:
        """Full paths of the Parquet files in a folder, in name order ([] if there is no such folder)."""
        return [p for p in self._files_in(folder) if p.endswith(".parquet")]

    def _files_in(self, folder: str) -> list[str]:
        try:
            return sorted(i["name"] for i in self.fs.ls(folder, detail=True) if i["type"] == "file")
        except FileNotFoundError:
            return []

    def remove_file(self, relative_path: str) -> None:
        self.fs.rm(f"{self.root}/{relative_path}")

    def discard(self, relative_path: str) -> None:
        """Removes a file below the root if it is there."""
        self._discard(f"{self.root}/{relative_path}")

    def exists(self, dataset: str, day: str) -> bool:
        """A day exists when it has a file (object stores can keep an emptied folder)."""
        return bool(self._parquet(self.folder(dataset, day)))

    def read(self, dataset: str, day: str, schema: pa.Schema | None = None, columns: list[str] | None = None) -> pa.Table:
        folder = self.folder(dataset, day)
        files = self._parquet(folder)
        if not files:
            raise FileNotFoundError(
                f"{dataset} has no partition {day} in {self.uri(folder)}: materialize "
                f"zchat/{self.account + '/' if self.account else ''}{dataset} for {day} first.")
        return pa.concat_tables(pq.read_table(p, filesystem=self.fs, columns=columns, schema=schema) for p in files)

    def days(self, dataset: str) -> list[str]:
        try:
            names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(self.folder(dataset), detail=False)]
        except FileNotFoundError:
            return []
        return sorted(n[5:] for n in names if n.startswith("date="))

    def expire(self, dataset: str, before: str) -> int:
        """Deletes the files of the days of a dataset older than `before` (YYYY-MM-DD); returns how many
        days had any. Only for data that can be had again (the message cache) or that is kept for a
        while (ongoing polls). Some object stores keep an emptied folder: it holds nothing to read."""
        expired = 0
        for day in (d for d in self.days(dataset) if d < before):
            files = self._parquet(self.folder(dataset, day))
            for path in files:
                self.fs.rm(path)
            expired += bool(files)
        return expired

    def sweep(self, folder: str, older_than: float) -> int:
        """Deletes the files below a folder of the root older than `older_than` seconds, by their own
        age, so that whatever another run is writing or reading now (any younger file) is never touched;
        returns how many. Staging files left by killed runs go this way, and old message-cache chunks."""
        cutoff = time.time() - older_than
        try:
            found = self.fs.find(f"{self.root}/{folder}", detail=True)
        except FileNotFoundError:
            return 0
        stale = [path for path, info in found.items() if _modified(info) < cutoff]
        for path in stale:
            self._discard(path)
        return len(stale)

    def describe(self, dataset: str, day: str) -> WrittenPartition:
        folder = self.folder(dataset, day)
        files = [p for p in self.fs.ls(folder, detail=True) if p["name"].endswith(".parquet")]
        rows = 0
        for info in files:
            with self.fs.open(info["name"], "rb") as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        return WrittenPartition(self.uri(folder), rows, len(files), sum(p["size"] for p in files))

    def check_writable(self) -> None:
        """Fails early, with one sentence, if the lake cannot be written."""
        probe = f"{self.root}/{STAGING}/.probe-{uuid.uuid4().hex}"
        try:
            self.fs.makedirs(probe.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(probe, "wb") as handle:
                handle.write(b"ok")
            self.fs.rm(probe)
        except OSError as exc:
            raise LakeError(f"Cannot write to the lake at {self.uri(self.root)} ({exc.strerror or exc}): "
                            f"check {self.setting} and its permissions.") from None

    def claim(self, origin: Origin) -> None:
        """Records the origin of this account's part of the lake when first written; refuses, before anything
        is written, a writer of another origin, so that sandbox and real data, or two accounts, never mix.
        The unnamed account's part is the whole lake, so it shares it with no named account."""
        mine = f"{ORIGINS}/{f'account={self.account}.json' if self.account else UNNAMED_ORIGIN}"
        held = [self._origin(path) for path in self._files_in(f"{self.root}/{ORIGINS}") if path.endswith(".json")]
        clash = [o for o in held if (o.account is None) != (origin.account is None)
                 or (o.account == origin.account and o != origin)]
        if clash:
            raise LakeError(f"The lake at {self.uri(self.root)} holds data of {clash[0]}, and this writer is "
                            f"{origin}: nothing was written; point {self.setting} at another lake (or, to start "
                            f"this lake over, delete it with its {ORIGINS}/ folder).")
        if origin not in held:
            self.fs.makedirs(f"{self.root}/{ORIGINS}", exist_ok=True)
            self.put_json(mine, {**asdict(origin), "recorded_at": _now()})
        self.origin = origin

    def _origin(self, path: str) -> Origin:
        recorded = json.loads(self.fs.cat_file(path))
        return Origin(recorded.get("account"), recorded.get("host"), recorded.get("timezone"))


def _write(handle, table: pa.Table, stamp: dict | None, footer: dict[bytes, bytes] | None = None) -> None:
    """One Parquet file, with its provenance (when there is one) and `footer` in the footer's key-value metadata."""
    footer = _footer(stamp, footer)
    with pq.ParquetWriter(handle, table.schema, compression="zstd") as writer:
        writer.write_table(table)
        if footer:
            writer.add_key_value_metadata(footer)


def _footer(stamp: dict | None, more: dict[bytes, bytes] | None) -> dict[bytes, bytes]:
    """What a file's footer adds to the schema's metadata as it is finished: `more`, and the provenance."""
    return {**(more or {}), **({provenance.KEY: provenance.encoded(stamp)} if stamp is not None else {})}


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _reason(exc: OSError) -> str:
    """An OS error in a few words, without a traceback: 'No space left on device (ENOSPC)'."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def _modified(info: dict) -> float:
    """A listing entry's modification time in epoch seconds (local files and object stores name it apart)."""
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if value is not None else time.time()
