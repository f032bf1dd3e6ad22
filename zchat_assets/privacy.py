"""Customers' personal data under Brazil's LGPD: kept as the API sends it, hashed, or dropped.

It covers every dataset the project writes. Which columns are personal data is said once, by the
`personal` flags of schemas.py: the customer's id and fields in the histories and the ongoing
snapshots (name, CPF, photo, e-mail addresses, phone numbers, channel ids), the web client's IP
address, and in messages the author's name on the rows the customer wrote (inside the original JSON
too). Customer fields the schema does not name yet are protected in `extra_json`. `conversations` is
built from those, so it inherits the choice.

Hashing is HMAC-SHA256 keyed with a secret (ZCHAT_PERSONAL_DATA_KEY): the same value gives the same
hash in every run and dataset, so joins and distinct counts still work, while nobody without the key
can test a guessed CPF against the lake. Message text is kept as written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from .schemas import DATASETS

MODES = ("keep", "hash", "drop")
_FLAGGED = [c for columns in DATASETS.values() for c in columns if c.personal]
PERSONAL_COLUMNS = frozenset(c.name for c in _FLAGGED)
# The top-level keys a flat record carries those values under: a column's flat name (document,
# channel_email, …) or its path when that is a single key (ip).
FLAT_PERSONAL_KEYS = frozenset([c.flat for c in _FLAGGED if c.flat] +
                               [c.path[0] for c in _FLAGGED if c.path and len(c.path) == 1])
# Where the flagged message fields sit in a message's original JSON (author.name, author.id), protected there too.
MESSAGE_PATHS = tuple(c.path for c in DATASETS["messages"] if c.personal)
# Names what a protected table covers: data stored while fewer columns were flagged is not reused.
COVERAGE = hashlib.sha256(",".join(sorted(PERSONAL_COLUMNS)).encode()).hexdigest()[:8]
MIN_KEY_LENGTH = 16


class PrivacyError(ValueError):
    """The personal-data setting cannot be used as given."""


@dataclass(frozen=True)
class Privacy:
    mode: str = "keep"
    key: str | None = field(default=None, repr=False)
    key_env: str = "ZCHAT_PERSONAL_DATA_KEY"  # where the key comes from, named in errors

    def __post_init__(self):
        if self.mode not in MODES:
            raise PrivacyError(f"The personal-data setting {self.mode!r} is not valid: use keep, hash or drop.")
        if self.mode == "hash" and len(self.key or "") < MIN_KEY_LENGTH:
            raise PrivacyError(f"Hashing personal data needs a secret of at least {MIN_KEY_LENGTH} characters in "
                               f"{self.key_env} (keep it: changing it changes every hash).")

    @property
    def fingerprint(self) -> str:
        """Names the setting and what it covers without revealing the key: data stored under another
        setting, or before a column was flagged, is not reused."""
        if self.mode == "keep":
            return self.mode
        if self.mode == "drop":
            return f"drop:{COVERAGE}"
        return f"hash:{COVERAGE}:{_hmac(self.key, 'zchat-assets fingerprint')[:12]}"

    def value(self, text: str | None) -> str | None:
        if text is None or self.mode == "keep":
            return text
        return _hmac(self.key, text) if self.mode == "hash" else None

    def apply(self, table: pa.Table) -> pa.Table:
        """The table with every personal value hashed or dropped (unchanged under `keep`): the flagged
        columns, unknown customer fields, and in messages the author's name in the original JSON."""
        if self.mode == "keep":
            return table
        rows = _customer_rows(table)
        for name in PERSONAL_COLUMNS.intersection(table.column_names):
            table = _map(table, name, self._any, rows)
        if "extra_json" in table.column_names:
            table = _map(table, "extra_json", self._extra)
        if rows is not None:
            table = _map(table, "raw_json", self._raw, rows)
        return table

    def _any(self, value):
        """A text or a list of values (from JSON, so maybe numbers) with each one protected."""
        if isinstance(value, list):
            return [h for h in (self.value(None if v is None else str(v)) for v in value) if h is not None]
        return self.value(value)

    def _extra(self, text: str | None) -> str | None:
        """Unknown fields: every customer field, and customer variables sent flat (the expanded history's
        channel_*, document, main_identifier as variables of their own) wherever they appear."""
        if text is None:
            return text
        extra = json.loads(text)
        fields = extra.get("customer", {}).get("fields") if isinstance(extra.get("customer"), dict) else None
        for where in (fields, extra):
            if not isinstance(where, dict):
                continue
            for key, value in where.items():
                if where is fields or _personal(key):
                    where[key] = self._any(value if isinstance(value, list) else None if value is None else str(value))
        return json.dumps(extra, ensure_ascii=False)

    def _raw(self, text: str | None) -> str | None:
        if text is None:
            return text
        message = json.loads(text)
        for path in MESSAGE_PATHS:
            node = message
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(path[-1]) is not None:
                value = node[path[-1]]
                node[path[-1]] = self._any(value if isinstance(value, list) else str(value))
        return json.dumps(message, ensure_ascii=False)


def _personal(key: str) -> bool:
    """A flat record's key that holds a customer's value; channels the schema does not name yet
    (channel_whatsapp) are a customer's too."""
    return key.startswith("channel_") or key in FLAT_PERSONAL_KEYS


def _customer_rows(table: pa.Table) -> list[bool] | None:
    """In messages, which rows the customer wrote: only those are a customer's personal data (agents' and
    bots' names are not). None for the other tables, where every row is a customer's."""
    if "author_type" not in table.column_names:
        return None
    return pc.fill_null(pc.equal(table.column("author_type"), "CUSTOMER"), False).to_pylist()


@lru_cache(maxsize=65_536)  # customers recur across pages, messages and days
def _hmac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def _map(table: pa.Table, name: str, protect, rows: list[bool] | None = None) -> pa.Table:
    """The table with `protect` applied to the column's values, on `rows` only when given."""
    values = table.column(name).to_pylist()
    if rows is None:
        rows = [True] * len(values)
    values = [protect(v) if chosen else v for v, chosen in zip(values, rows)]
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
