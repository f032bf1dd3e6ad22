"""`zchat-assets erase`: one data subject out of an account's part of the lake, and kept out.

First `find` walks the account's histories, ongoing snapshots and messages for the subject's protocols
and for every identifier their rows hold; then the erasure is recorded (from then on every write of the
account applies it); then every file holding the subject (each dataset's days, the message cache, the
ongoing snapshots, the quarantine) is rewritten without them, one atomic step per file, and the record
is marked done with the days and rows it touched. Running it again finds the record and resumes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import gaps as gap_records, provenance
from .day_messages import BUILT_FROM, EXPANDED_COLUMNS, fingerprint
from .erasure import (CACHE, COLUMNS, MESSAGES, Erasures, ErasureError, Record, Subject, canonical, folder, now,
                      record_id, records, secret, spellings)
from .lake import QUARANTINE, STAGING, Lake
from .message_cache import ENDS_KEY
from .privacy import Privacy

# Messages before the expanded history: a messages day names the version of the history it was fetched for,
# which an erasure that deletes changes; done in this order, a run killed between the two leaves them matching.
DATASETS = (MESSAGES, CACHE, "history_expanded", "history", "conversations", "ongoing")
# Footer keys a rewrite sets afresh: Arrow's own copy of the schema, and the file's provenance (`rewrite_file`).
FOOTER_ONLY = (b"ARROW:schema", provenance.KEY)
TYPED = ("phone", "document", "email")  # what a customer may type into a message
STALE_STAGING_SECONDS = 600  # staging files untouched this long belong to killed runs, and may hold the subject


@dataclass
class Outcome:
    record: Record
    days: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, dataset: str, day: str, rows: int) -> None:
        if rows:
            self.days[dataset].add(day)
            self.rows[dataset] += rows


def erase(lake: Lake, privacy: Privacy, kind: str, value: str, delete: bool = False, dry_run: bool = False,
          log=print) -> Outcome:
    """Erases the subject named by `value` (a `kind` of erasure.KINDS) from the account's part of `lake`."""
    subject = Subject(secret(privacy))
    if not canonical(kind, value):
        raise ErasureError(f"--{kind.replace('_', '-')} is empty once spaces and punctuation are removed: give the "
                           "identifier as the customer gave it.")
    rid = record_id(subject, kind, value)
    earlier = next((r for r in records(lake) if r.id == rid), None)
    record = earlier or Record(rid, lake.account, kind, delete, now())
    record.delete = record.delete or delete
    record.keys.add(subject.hash(kind, value))
    record.stored |= {subject.stored(s) for s in spellings(kind, value)}
    if kind == "protocol":
        record.protocols.add(subject.hash("protocol", value))
    find(lake, privacy, subject, record, kind, value)
    if earlier:
        log(f"Resuming the erasure recorded at {earlier.erased_at} ({earlier.state}).")
    outcome = Outcome(record)
    path = f"{folder(lake)}/{rid}.json"
    if not dry_run:
        record.state = "pending"
        lake.put_json(path, record.to_json())  # from now on, every write of the account applies it
        lake.sweep(STAGING, STALE_STAGING_SECONDS)
    rewrite(lake, Erasures(None, privacy, [record]), outcome, dry_run)
    if not dry_run:
        record.state = "done"
        record.days = {d: sorted(days) for d, days in sorted(outcome.days.items())}
        record.rows = dict(sorted(outcome.rows.items()))
        if earlier and earlier.state == "done":  # what an earlier pass touched stays on record
            for dataset, days in earlier.days.items():
                record.days[dataset] = sorted(set(record.days.get(dataset, [])) | set(days))
            for dataset, rows in earlier.rows.items():
                record.rows[dataset] = record.rows.get(dataset, 0) + rows
        lake.put_json(path, record.to_json())
    return outcome


def find(lake: Lake, privacy: Privacy, subject: Subject, record: Record, kind: str, value: str) -> None:
    """Adds to `record` the subject's protocols and every identifier their rows hold, until nothing new turns up
    (a phone leads to a customer id, which leads to their other interactions)."""
    typed = canonical(kind, value) if kind in TYPED else None
    for _ in range(4):
        before = (len(record.keys), len(record.stored), len(record.protocols))
        erasures = Erasures(None, privacy, [record])
        for dataset in ("history_expanded", "history", "ongoing"):
            for day in lake.days(dataset):
                for path in lake.files(dataset, day):
                    table = lake.read_file(path)
                    _learn(table, _mine(erasures, "interactions", table), privacy, subject, record)
        for day in lake.days(MESSAGES):
            for path in lake.files(MESSAGES, day):
                table = lake.read_file(path, columns=["protocol_id", "created_at", "author_type", "author_id", "text"])
                mine = _mine(erasures, MESSAGES, table)
                if typed:
                    mine |= _typed(table, kind, typed)
                for protocol in set(table.column("protocol_id").filter(pa.array(mine)).to_pylist()) - {None}:
                    record.protocols.add(subject.hash("protocol", protocol))
        if (len(record.keys), len(record.stored), len(record.protocols)) == before:
            return


def _mine(erasures: Erasures, kind: str, table: pa.Table) -> np.ndarray:
    blank, delete = erasures.matches(kind, table)
    return blank | delete if kind != MESSAGES else _whole_conversations(table, blank | delete)


def _whole_conversations(table: pa.Table, rows: np.ndarray) -> np.ndarray:
    protocols = table.column("protocol_id")
    theirs = sorted(set(protocols.filter(pa.array(rows)).to_pylist()) - {None})
    return pc.fill_null(pc.is_in(protocols, pa.array(theirs, pa.string())), False).to_numpy(zero_copy_only=False)


def _typed(table: pa.Table, kind: str, typed: str) -> np.ndarray:
    """Messages in which the customer typed the identifier, whatever its punctuation."""
    customer = pc.fill_null(pc.equal(table.column("author_type"), "CUSTOMER"), False)
    text = table.column("text")
    text = pc.utf8_lower(text) if kind == "email" else pc.replace_substring_regex(text, r"\D", "")
    found = pc.fill_null(pc.and_(customer, pc.match_substring(text, typed)), False)
    return found.to_numpy(zero_copy_only=False)


def _learn(table: pa.Table, rows: np.ndarray, privacy: Privacy, subject: Subject, record: Record) -> None:
    """The protocols of the subject's rows, and each identifier those rows hold, as the record keeps them."""
    if not rows.any():
        return
    mine = table.filter(pa.array(rows))
    record.protocols |= {subject.hash("protocol", p) for p in mine.column("protocol_id").to_pylist() if p}
    for name, what in COLUMNS.items():
        for value in _values(mine, name):
            if privacy.mode == "keep":
                record.keys.add(subject.hash(what, value))
                record.stored.add(subject.stored(value))
            elif privacy.mode == "hash":
                record.stored.add(value)


def _values(table: pa.Table, name: str) -> set[str]:
    if name not in table.column_names:
        return set()
    column = table.column(name)
    values = pc.list_flatten(column).to_pylist() if pa.types.is_list(column.type) else column.to_pylist()
    if name == "customer_document":
        values = [part for v in values if v for part in v.split(", ")]
    return {str(v) for v in values if v}


def rewrite(lake: Lake, erasures: Erasures, outcome: Outcome, dry_run: bool) -> None:
    """Every file of the account that holds the subject, rewritten without them (or counted, for a dry run)."""
    removed: dict[str, set[str]] = defaultdict(set)  # day -> protocols removed from its messages
    places = [*DATASETS, *(f"{QUARANTINE}/{d}" for d in DATASETS if d != CACHE)]
    for dataset in places:
        for day in lake.days(dataset):
            for path in lake.files(dataset, day):
                table = lake.read_file(path)
                erased, rows = erasures.erase(dataset, table)
                if not rows:
                    continue
                outcome.add(dataset, day, rows)
                metadata = {k: v for k, v in lake.file_metadata(path).items() if k not in FOOTER_ONLY}
                if dataset in (MESSAGES, CACHE):
                    gone = set(table.column("protocol_id").to_pylist()) - set(erased.column("protocol_id").to_pylist())
                    removed[day] |= gone
                    if dataset == MESSAGES and gone and lake.exists("history_expanded", day):
                        expanded = lake.read("history_expanded", day, columns=EXPANDED_COLUMNS)
                        if metadata.get(BUILT_FROM) == fingerprint(expanded).encode():
                            after = erasures.apply("history_expanded", lake.read("history_expanded", day))
                            metadata[BUILT_FROM] = fingerprint(after).encode()
                    if dataset == CACHE and gone:
                        ends = {p: v for p, v in json.loads(metadata.get(ENDS_KEY, b"{}")).items() if p not in gone}
                        metadata[ENDS_KEY] = json.dumps(ends, separators=(",", ":")).encode()
                if not dry_run:
                    lake.rewrite_file(path, erased.replace_schema_metadata(metadata))
    if not dry_run:
        for day, protocols in removed.items():
            gap_records.forget(lake, day, protocols)


def summary(outcome: Outcome, lake: Lake, dry_run: bool) -> list[str]:
    """What the command prints: per dataset, the days and rows changed."""
    record = outcome.record
    what = "removed (interactions and their messages)" if record.delete else "blanked (personal fields, and the " \
                                                                              "customer's message text and media)"
    lines = [f"{'Would change' if dry_run else 'Changed'} in {lake.uri(lake.root)}"
             f"{' for account ' + lake.account if lake.account else ''}: the subject's rows {what}."]
    for dataset in sorted(outcome.rows):
        days = sorted(outcome.days[dataset])
        shown = ", ".join(days[:6]) + (f" and {len(days) - 6} more" if len(days) > 6 else "")
        lines.append(f"  {dataset:<22} {outcome.rows[dataset]:>6} row(s) on {len(days)} day(s): {shown}")
    if not outcome.rows:
        lines.append("  nothing: no file of the account holds the subject" + (" any more." if not dry_run else "."))
    if dry_run:
        lines.append("Nothing was written (--dry-run).")
    else:
        lines.append(f"Recorded by keyed hashes only in {folder(lake)}/{record.id}.json: every later write of the "
                     "account keeps the subject out.")
    return lines
