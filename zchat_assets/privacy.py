"""Customers' personal data under Brazil's LGPD: kept as the API sends it, hashed, or dropped.

It covers every dataset the project writes: the customer fields of the histories and of the ongoing
snapshots (name, CPF, photo, e-mail addresses, phone numbers, channel ids, and customer fields the
schema does not name yet, in `extra_json`), the web client's IP address, and in messages the
author's name when the author is the customer, inside the original JSON too. `conversations` is
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

MODES = ("keep", "hash", "drop")
PERSONAL_COLUMNS = frozenset({
    "customer_main_identifier", "customer_document", "customer_main_photo", "customer_channel_email",
    "customer_channel_phone", "customer_channel_external", "customer_channel_facebook",
    "customer_channel_mercado_livre", "customer_channel_telegram", "ip",
})
# Customer variables the document lists on their own, which a flat record may carry at its top level.
FLAT_PERSONAL_KEYS = frozenset({"document", "main_identifier", "main_photo", "ip"})
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
        """Names the setting without revealing the key: data stored under another setting is not reused."""
        if self.mode != "hash":
            return self.mode
        return "hash:" + _hmac(self.key, "zchat-assets fingerprint")[:12]

    def value(self, text: str | None) -> str | None:
        if text is None or self.mode == "keep":
            return text
        return _hmac(self.key, text) if self.mode == "hash" else None

    def apply(self, table: pa.Table) -> pa.Table:
        """The table with every personal value hashed or dropped (unchanged under `keep`)."""
        if self.mode == "keep":
            return table
        for name in table.column_names:
            if name in PERSONAL_COLUMNS:
                table = _set(table, name, [self._any(v) for v in table.column(name).to_pylist()])
        if "extra_json" in table.column_names:
            table = _set(table, "extra_json", [self._extra(v) for v in table.column("extra_json").to_pylist()])
        if "author_type" in table.column_names:
            customer = pc.fill_null(pc.equal(table.column("author_type"), "CUSTOMER"), False).to_pylist()
            names = table.column("author_name").to_pylist()
            table = _set(table, "author_name", [self.value(n) if c else n for n, c in zip(names, customer)])
            raws = table.column("raw_json").to_pylist()
            table = _set(table, "raw_json", [self._raw(r) if c else r for r, c in zip(raws, customer)])
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
        author = message.get("author")
        if isinstance(author, dict) and author.get("name") is not None:
            name = author["name"]
            author["name"] = self._any(name if isinstance(name, list) else str(name))
        return json.dumps(message, ensure_ascii=False)


def _personal(key: str) -> bool:
    return key.startswith("channel_") or key in FLAT_PERSONAL_KEYS


@lru_cache(maxsize=65_536)  # customers recur across pages, messages and days
def _hmac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def _set(table: pa.Table, name: str, values: list) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
