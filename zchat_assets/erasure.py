"""Erasing one data subject (LGPD Art. 18) from an account's part of the lake, and keeping them out.

A subject is named by one identifier: a customer id, a phone number, an e-mail address, a document
(CPF, any punctuation) or a protocol. `find` walks the account's histories and messages for the rows
that belong to them: their interactions, found by that identifier and then by every other identifier
those rows hold (their customer id, other phones and e-mails), and the conversations in which they
typed it. Each erasure is recorded in `<lake>/_erasure/[account=<name>/]<id>.json` by keyed hashes only
(HMAC-SHA256 with the account's personal-data secret): of each identifier in one canonical spelling,
of the same values as the lake stores them under `personal_data: hash`, and of the subject's protocols.
From the moment the record exists, every write of the account (`Lake` applies `Erasures` to each table
it writes, and again just before it publishes a day) erases the subject's rows created before the
erasure: re-fetching a day never brings them back, and a later contact of theirs is a new one.

Erasing keeps each interaction, so counts and reports still add up, with every personal field nulled
and the customer's messages' text, media and original JSON removed; `delete` removes the subject's
interactions and their messages. `erase` records first, then rewrites each file that holds them,
each in one atomic step: running it again (after a kill) finishes the job and changes nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .lake import QUARANTINE, Lake
from .privacy import Privacy, _hmac

FOLDER = "_erasure"
KINDS = ("customer_id", "phone", "email", "document", "protocol")
INTERACTIONS = ("history", "history_expanded", "conversations", "ongoing")
MESSAGES = "messages"
CACHE = "_cache/messages"
# Where each kind of identifier sits in the interaction datasets; in messages the customer's id is the author's.
COLUMNS = {"customer_id": "customer_id", "customer_channel_phone": "phone", "customer_channel_email": "email",
           "customer_document": "document"}
ERASED_MESSAGE_FIELDS = ("author_id", "author_name", "text", "attachment_url", "attachment_mime_type", "raw_json")
MIN_KEY_LENGTH = 16


class ErasureError(ValueError):
    """An erasure cannot be done, or applied, as asked."""


def canonical(kind: str, value: str) -> str:
    """One spelling of an identifier: digits of a phone (without Brazil's 55) or a document, an e-mail in
    lower case, ids as given."""
    text = str(value).strip()
    if kind in ("phone", "document"):
        digits = re.sub(r"\D", "", text)
        return digits[2:] if kind == "phone" and len(digits) in (12, 13) and digits.startswith("55") else digits
    return text.casefold() if kind == "email" else text


def spellings(kind: str, value: str) -> set[str]:
    """The ways the API may have sent an identifier, to find it in a lake that stores keyed hashes of the
    values as sent: as given, in digits, and for phones with and without +55 and Brazilian punctuation."""
    given, plain = str(value).strip(), canonical(kind, value)
    out = {given, plain}
    if kind == "phone" and len(plain) in (10, 11):
        area, number = plain[:2], plain[2:]
        local = f"{number[:-4]}-{number[-4:]}"
        out |= {f"55{plain}", f"+55{plain}", f"+55 {area} {local}", f"+55 ({area}) {local}", f"({area}) {local}",
                f"{area} {local}", f"+55 {area} {number}"}
    if kind == "document" and len(plain) == 11:
        out.add(f"{plain[:3]}.{plain[3:6]}.{plain[6:9]}-{plain[9:]}")
    return {s for s in out if s}


@dataclass
class Record:
    """One erasure as the lake keeps it: keyed hashes only, never an identifier."""

    id: str
    account: str | None
    by: str
    delete: bool
    erased_at: str
    keys: set[str] = field(default_factory=set)  # identifiers in canonical spelling, keyed
    stored: set[str] = field(default_factory=set)  # values as `personal_data: hash` stores them
    protocols: set[str] = field(default_factory=set)  # the subject's protocols, keyed
    state: str = "pending"
    days: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        for name in ("keys", "stored", "protocols"):
            out[name] = sorted(out[name])
        return out

    @classmethod
    def from_json(cls, data: dict) -> Record:
        data = dict(data)
        for name in ("keys", "stored", "protocols"):
            data[name] = set(data.get(name, ()))
        return cls(**data)


class Subject:
    """The keyed hashes of what names a subject, with the account's secret."""

    def __init__(self, key: str):
        self._key = key

    def hash(self, kind: str, value) -> str:
        return _hmac(self._key, f"zchat-erasure|{kind}|{canonical(kind, value)}")

    def stored(self, value) -> str:
        """A value as `personal_data: hash` stores it."""
        return _hmac(self._key, str(value))


def secret(privacy: Privacy) -> str:
    if len(privacy.key or "") < MIN_KEY_LENGTH:
        raise ErasureError(f"Erasure records are keyed with the personal-data secret, and {privacy.key_env} holds none "
                           f"of {MIN_KEY_LENGTH} characters or more: set it (the same value for every run of the "
                           "account, whatever personal_data says), then run this again.")
    return privacy.key


def folder(lake: Lake) -> str:
    return f"{FOLDER}/account={lake.account}" if lake.account else FOLDER


def records(lake: Lake) -> list[Record]:
    paths = [p for p in lake.listing(folder(lake)) if p.endswith(".json")]
    return [Record.from_json(lake.read_json(p)) for p in paths]


class Erasures:
    """The account's recorded erasures, as every write applies them (nothing to do, and no cost, when there
    are none). `refresh` reads the records again: a write started before an erasure applies it before it
    publishes."""

    def __init__(self, lake: Lake | None, privacy: Privacy, found: list[Record] | None = None):
        self._lake, self._privacy = lake, privacy
        self.records = found if found is not None else (records(lake) if lake is not None else [])
        self._subject = Subject(secret(privacy)) if self.records else None
        self.version = tuple(sorted((r.id, r.state, len(r.protocols)) for r in self.records))

    def refresh(self) -> bool:
        """Reads the lake's records again; True when they changed since."""
        if self._lake is None:
            return False
        before = self.version
        self.__init__(self._lake, self._privacy)
        return self.version != before

    def apply(self, dataset: str, table: pa.Table) -> pa.Table:
        """The table without the subjects' personal data: their interactions blanked (or removed, for an
        erasure that deletes), and in messages their own messages' content (or every message of theirs)."""
        return self.erase(dataset, table)[0]

    def erase(self, dataset: str, table: pa.Table) -> tuple[pa.Table, int]:
        """`apply`, and how many rows it removed or changed."""
        kind = _kind(dataset)
        if not self.records or table.num_rows == 0 or kind is None:
            return table, 0
        blank, delete = self.matches(kind, table)
        if not blank.any() and not delete.any():
            return table, 0
        changed = int(delete.sum())
        if blank.any():
            rows = np.flatnonzero(blank)
            before = table.take(rows)
            table = (_blank_messages if kind == MESSAGES else _blank_interactions)(table, blank)
            changed += sum(a != b for a, b in zip(before.to_pylist(), table.take(rows).to_pylist()))
        if delete.any():
            table = table.filter(pa.array(~delete))
        return table, changed

    def matches(self, kind: str, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Rows to blank and rows to remove. In interactions a row is the subject's by its protocol, or by an
        identifier when it was created before the erasure; in messages every message of such a protocol, or of a
        conversation whose customer is the subject (only the customer's messages are blanked)."""
        n = table.num_rows
        blank, delete = np.zeros(n, bool), np.zeros(n, bool)
        created = _epochs(table)
        protocols = table.column("protocol_id")
        for record in self.records:
            mine = _in(protocols, lambda p: self._subject.hash("protocol", p) in record.protocols)
            before = created < datetime.fromisoformat(record.erased_at).timestamp()
            if kind == MESSAGES:
                customer = _customer_rows(table)
                by_author = customer & before & self._identified(table.column("author_id"), "customer_id", record)
                if by_author.any():  # the whole conversation is theirs
                    theirs = set(protocols.filter(pa.array(by_author)).to_pylist())
                    mine |= pc.is_in(protocols, pa.array(sorted(theirs), pa.string())).to_numpy(zero_copy_only=False)
                if record.delete:
                    delete |= mine
                else:
                    blank |= mine & customer
                continue
            for name, what in COLUMNS.items():
                if name in table.column_names:
                    mine |= before & self._identified(table.column(name), what, record)
            (delete if record.delete else blank).__ior__(mine)
        return blank & ~delete, delete

    def _identified(self, column: pa.ChunkedArray, kind: str, record: Record) -> np.ndarray:
        """Rows whose value (any value of a list) is one of the record's identifiers."""
        def known(value: str) -> bool:
            return value in record.stored or self._subject.hash(kind, value) in record.keys

        if pa.types.is_list(column.type):
            flat = pc.list_flatten(column)
            if len(flat) == 0:
                return np.zeros(len(column), bool)
            hit = _in(flat, known)
            rows = np.zeros(len(column), bool)
            rows[pc.list_parent_indices(column).to_numpy()[hit]] = True
            return rows
        if kind == "document":  # several documents are joined with ', '
            return _in(column, lambda v: any(known(part) for part in v.split(", ")))
        return _in(column, known)


def _kind(dataset: str) -> str | None:
    """What a dataset's rows are: interactions, messages, or neither (reports hold no customer)."""
    base = dataset.removeprefix(f"{QUARANTINE}/").split("/account=")[0]
    if base in (MESSAGES, CACHE):
        return MESSAGES
    return "interactions" if base in INTERACTIONS else None


def _in(column, test: Callable[[str], bool]) -> np.ndarray:
    """Rows whose value passes `test`, tried once per distinct value (customers recur, days are large)."""
    values = pc.unique(column).to_pylist()
    chosen = [v for v in values if v is not None and v != "" and test(v)]
    if not chosen:
        return np.zeros(len(column), bool)
    return pc.fill_null(pc.is_in(column, pa.array(chosen, column.type)), False).to_numpy(zero_copy_only=False)


def _epochs(table: pa.Table) -> np.ndarray:
    created = table.column("created_at").cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    return pc.fill_null(created, 0).to_numpy(zero_copy_only=False) / 1e6


def _customer_rows(table: pa.Table) -> np.ndarray:
    return pc.fill_null(pc.equal(table.column("author_type"), "CUSTOMER"), False).to_numpy(zero_copy_only=False)


def _blank_interactions(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Personal columns nulled (lists emptied), unknown customer fields dropped from extra_json, and in
    conversations the customer's nested messages emptied, on `rows` only."""
    from .privacy import PERSONAL_COLUMNS

    mask = pa.array(rows)
    drop = Privacy("drop")
    for name in table.column_names:
        column = table.column(name)
        if name in PERSONAL_COLUMNS:
            empty = pa.scalar([], column.type) if pa.types.is_list(column.type) else pa.scalar(None, column.type)
            table = _set(table, name, pc.if_else(mask, empty, column))
        elif name == "extra_json":
            table = _set(table, name, _mapped(column, rows, drop._extra))
        elif name == "message_list":
            table = _set(table, name, _mapped(column, rows, _blank_items))
    return table


def _blank_items(items: list[dict] | None) -> list[dict] | None:
    return None if items is None else [
        {**m, "author_name": None, "text": None} if m.get("author_type") == "CUSTOMER" else m for m in items]


def _blank_messages(table: pa.Table, rows: np.ndarray) -> pa.Table:
    mask = pa.array(rows)
    for name in ERASED_MESSAGE_FIELDS:
        if name in table.column_names:
            column = table.column(name)
            table = _set(table, name, pc.if_else(mask, pa.scalar(None, column.type), column))
    return table


def _mapped(column: pa.ChunkedArray, rows: np.ndarray, change) -> pa.Array:
    values = column.to_pylist()
    for i in np.flatnonzero(rows):
        values[i] = change(values[i])
    return pa.array(values, column.type)


def _set(table: pa.Table, name: str, values) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), values)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def record_id(subject: Subject, kind: str, value: str) -> str:
    return subject.hash(kind, value)[:20]

