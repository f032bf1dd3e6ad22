"""Customers' personal data under Brazil's LGPD: kept as the API sends it, hashed, or dropped.

It covers every dataset the project writes. Which columns are personal data is said once, by the
`personal` flags of schemas.py: the customer's id and fields in the histories and the ongoing
snapshots (name, CPF, photo, e-mail addresses, phone numbers, channel ids), the web client's IP
address, and in messages the author's name on the rows the customer wrote (inside the original JSON
too). Customer fields the schema does not name yet are protected in `extra_json`. `conversations` is
built from those, so it inherits the choice.

Hashing is HMAC-SHA256 keyed with a secret (ZCHAT_PERSONAL_DATA_KEY): the same value gives the same
hash in every run and dataset, so joins and distinct counts still work, while nobody without the key
can test a guessed CPF against the lake.

Free text is a setting of its own (`text`): kept as written, or with the identifiers customers type into
it (CPF, CNPJ, phone, e-mail) masked (masking.py) in the columns the schemas flag `free_text` (a
message's text, the expanded history's notes, every author's rows: agents copy a customer's CPF too) and
in the JSON kept beside them: every string of a message's original JSON but the values the lake stores in
columns of their own (ids, times, types, author, attachment), and every string of `extra_json`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from . import masking
from .schemas import DATASETS

MODES = ("keep", "hash", "drop")
TEXT_MODES = ("keep", "mask")
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
FREE_TEXT_COLUMNS = frozenset(c.name for columns in DATASETS.values() for c in columns if c.free_text)
# The places in a message's original JSON whose values have columns of their own that are no free text: kept as
# those columns keep them. Every other string there may be free text (a caption, an attachment's file name).
MESSAGE_FIELDS = frozenset(c.path[:-1] + (leaf,) for c in DATASETS["messages"] if c.path and not c.free_text
                           for leaf in (c.path[-1], *c.also))
# Names what masking covers and how: text stored under other rules is not reused.
TEXT_COVERAGE = hashlib.sha256("|".join([*sorted(FREE_TEXT_COLUMNS), *map(str, sorted(MESSAGE_FIELDS)),
                                          masking.RULES]).encode()).hexdigest()[:8]
MIN_KEY_LENGTH = 16


class PrivacyError(ValueError):
    """The personal-data setting cannot be used as given."""


@dataclass(frozen=True)
class Privacy:
    mode: str = "keep"
    key: str | None = field(default=None, repr=False)
    key_env: str = "ZCHAT_PERSONAL_DATA_KEY"  # where the key comes from, named in errors
    text: str = "keep"  # identifiers typed into free text: keep or mask

    def __post_init__(self):
        if self.mode not in MODES:
            raise PrivacyError(f"The personal-data setting {self.mode!r} is not valid: use keep, hash or drop.")
        if self.mode == "hash" and len(self.key or "") < MIN_KEY_LENGTH:
            raise PrivacyError(f"Hashing personal data needs a secret of at least {MIN_KEY_LENGTH} characters in "
                               f"{self.key_env} (keep it: changing it changes every hash).")
        if self.text not in TEXT_MODES:
            raise PrivacyError(f"The free-text setting {self.text!r} is not valid: use keep or mask.")

    @property
    def fingerprint(self) -> str:
        """Names the setting and what it covers without revealing the key: data stored under another
        setting, or before a column was flagged, is not reused."""
        text = f"+mask:{TEXT_COVERAGE}" if self.text == "mask" else ""
        if self.mode == "keep":
            return self.mode + text
        if self.mode == "drop":
            return f"drop:{COVERAGE}{text}"
        return f"hash:{COVERAGE}:{_hmac(self.key, 'zchat-assets fingerprint')[:12]}{text}"

    def value(self, text: str | None) -> str | None:
        if text is None or self.mode == "keep":
            return text
        return _hmac(self.key, text) if self.mode == "hash" else None

    def apply(self, table: pa.Table) -> pa.Table:
        """The table with every personal value hashed or dropped (unchanged under `keep`): the flagged
        columns, unknown customer fields, and in messages the author's name in the original JSON; and with
        identifiers typed into free text masked under `text="mask"`."""
        if self.text == "mask":
            table = _masked(table)
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


def _masked(table: pa.Table) -> pa.Table:
    """The table with identifiers masked in its free-text columns and in the strings of its JSON columns."""
    for name in FREE_TEXT_COLUMNS.intersection(table.column_names):
        table = _map(table, name, masking.mask)
    for name, kept in (("raw_json", MESSAGE_FIELDS), ("extra_json", frozenset())):
        if name in table.column_names:
            table = _map(table, name, lambda text, kept=kept: _masked_json(text, kept))
    return table


def _masked_json(text: str | None, kept: frozenset) -> str | None:
    """JSON with every string masked but those at the `kept` places; the same text when nothing changed.
    The text as the API wrote it may name a key twice, which parsing keeps once: such text is written
    again, or the value parsing dropped would stay unmasked."""
    if text is None:
        return text
    try:
        value, repeated = json.loads(text, object_pairs_hook=_once), False
    except _RepeatedKey:
        value, repeated = json.loads(text), True
    masked = _masked_value(value, (), kept)
    return text if masked == value and not repeated else json.dumps(masked, ensure_ascii=False)


class _RepeatedKey(ValueError):
    pass


def _once(pairs: list[tuple]) -> dict:
    found = dict(pairs)
    if len(found) < len(pairs):
        raise _RepeatedKey
    return found


def _masked_value(value, path: tuple, kept: frozenset):
    if isinstance(value, str):
        return value if path in kept else masking.mask(value)
    if isinstance(value, dict):
        return {key: _masked_value(item, (*path, key), kept) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked_value(item, path, kept) for item in value]
    return value


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
