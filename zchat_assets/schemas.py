"""One explicit Arrow schema per dataset, and the functions that turn API JSON into Arrow tables.

A dataset is a list of `Column`s: name, Arrow type, where the value sits in the API's JSON, how it
is coerced, whether it is a customer's personal data, and a one-line description (the data
dictionary, docs/data-dictionary.md, is generated from these).
Fields the schema does not name are never dropped: they go, as JSON, into `extra_json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import lru_cache, partial
from itertools import repeat
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from .api.vendor import AUTHOR_TYPES, REPORT_DATA_TYPES

if TYPE_CHECKING:  # privacy.py reads the `personal` flags from here
    from .privacy import Privacy

TS = pa.timestamp("us", tz="UTC")
STR_LIST = pa.list_(pa.string())
TAG = pa.struct([("id", pa.string()), ("name", pa.string())])


_to_json = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: `json.dumps` with options builds one per call


class SchemaError(ValueError):
    """An API value that cannot be stored in its column without guessing."""


# -- coercions: API JSON value -> Python value for Arrow -------------------------------------------

def to_str(value):
    """Text; the API's "" for "unknown" becomes null, like a missing field."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v not in (None, "")) or None
    if isinstance(value, dict):
        return _to_json(value)
    return str(value)


def to_int(value):
    """Integers; numeric text and whole floats are accepted, anything else is a SchemaError."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    if isinstance(value, str):
        try:
            return round(float(value.strip()))
        except ValueError:
            pass
    raise SchemaError(f"expected a number, got {value!r}")


def to_float(value):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"expected a number, got {value!r}") from None


def to_bool(value):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SchemaError(f"expected true or false, got {value!r}")


def to_ts(value, zone: tzinfo = timezone.utc):
    """ISO-8601 text (with Z or an offset; without one, a local time of `zone`: the zone the request
    asked for) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError:
            raise SchemaError(f"expected an ISO timestamp, got {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    raise SchemaError(f"expected an ISO timestamp, got {value!r}")


def to_str_list(value):
    """Customer fields arrive as a string or a list of strings; both become a list (empty for "")."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [text for text in map(to_str, value) if text is not None]  # an empty list inside is no text
    return [to_str(value)]


def to_tags(value):
    if not value:
        return []
    if not isinstance(value, list):
        raise SchemaError(f"expected a list of tags, got {value!r}")
    return [{"id": to_str(t.get("id")), "name": to_str(t.get("name"))} if isinstance(t, dict)
            else {"id": None, "name": to_str(t)} for t in value]


def author_type(value):
    """A message author's type in the one spelling the lake keeps: the document never shows a message, so
    each kind is recognised under the names an API may give it, in any case."""
    if value is None or value == "":
        return None
    return _author_kind(str(value))


@lru_cache(maxsize=256)  # a day's messages spell their authors a handful of ways: 15% of their conversion
def _author_kind(value: str) -> str:
    spelled = value.strip().upper()
    return next((kind for kind, names in AUTHOR_TYPES.items() if spelled in names), spelled)


COERCE: dict[pa.DataType, Callable] = {pa.string(): to_str, pa.int64(): to_int, pa.float64(): to_float,
                                       pa.bool_(): to_bool, TS: to_ts, STR_LIST: to_str_list,
                                       pa.list_(TAG): to_tags}


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    path: tuple[str, ...] | None = None  # where in the API record; None = derived, not read from JSON
    flat: str | None = None  # the same value as a variable of its own, where the API sends it flat
    also: tuple[str, ...] = ()  # other names the value may have beside the path's last key (text or content)
    canonical: Callable | None = None  # the value in the one spelling the column keeps (author types)
    # A customer's personal data (LGPD), which ZCHAT_PERSONAL_DATA=hash or drop protects; privacy.py reads
    # these flags. Pseudonymous ids count: a hashed customer_id is a keyed hash, still joinable across datasets.
    # In messages a flag covers the rows the customer wrote, not agents' or bots' (privacy.py).
    personal: bool = False
    # Free text, where customers type identifiers (a CPF, a phone): ZCHAT_PERSONAL_DATA_TEXT=mask masks them.
    free_text: bool = False


def col(name: str, type_: pa.DataType, doc: str, *path: str, flat: str | None = None, personal: bool = False,
        also: tuple[str, ...] = (), canonical: Callable | None = None, free_text: bool = False) -> Column:
    return Column(name, type_, doc, path or (name,), flat, also, canonical, personal, free_text)


def derived(name: str, type_: pa.DataType, doc: str) -> Column:
    return Column(name, type_, doc, None)


EXTRA = derived("extra_json", pa.string(), "Fields the API sent that this schema does not name yet, as JSON (null if none).")

# -- reports ----------------------------------------------------------------------------------

REPORT_COUNTERS = {
    "backlog": "Previous backlog: services not completed the previous day.",
    "received": "New services received during the period.",
    "made": "Services initiated by an agent.",
    "rang": "Services automatically distributed to an agent.",
    "answered": "Services received by an agent and completed with message exchange.",
    "ended": "Services completed with message exchange and marked as ended by the agent.",
    "not_answered": "Uncompleted services that were in the queue.",
    "pending": "Pending (agent): placed on the pending list after the client's last message.",
    "postponed": "Pending (client): placed on the pending list after the agent's last message.",
    "discarded": "Services received by an agent but interrupted without message exchange.",
    "missed": "Inactive services closed by the agent.",
    "expired": "Services that expired and can no longer be answered.",
    "remainder": "Services not finished during the day that can still be completed.",
}
REPORT_SECONDS = {
    "tma": "Average handling time, seconds.",
    "tme": "Average wait time, seconds.",
    "tmaxe": "Maximum wait time, seconds.",
    "tmpr": "Average first response time, seconds.",
    "tmr": "Average agent response time, seconds.",
    "tmpa": "Average time for the agent to resume a pending service, seconds.",
    "tmp": "Average time for the client to resume a pending service, seconds.",
    "sla": "Total average handling time (tma + tme + tmpa), seconds.",
}
REPORT = [
    col("title", pa.string(), "Line title: the day (by period), agent, department, channel or tag; `Total` for the total line."),
    derived("is_total", pa.bool_(), "True on the report's `Total` line."),
    *(col(name, pa.int64(), doc) for name, doc in REPORT_COUNTERS.items()),
    # Averages are kept as the API sends them, decimals included; only the maximum wait is a whole count.
    *(col(name, pa.int64() if name == "tmaxe" else pa.float64(), doc) for name, doc in REPORT_SECONDS.items()),
    col("slapr", pa.float64(), "First response SLA (share answered within the SLA, as the API gives it)."),
    EXTRA,
]

# -- interactions ------------------------------------------------------------------------------

CUSTOMER_TEXT = ("main_identifier", "document", "main_photo")
CUSTOMER_CHANNELS = ("channel_email", "channel_phone", "channel_external", "channel_facebook",
                     "channel_mercado_livre", "channel_telegram")
CUSTOMER_DOCS = {
    "main_identifier": "Client's name.", "document": "Client's CPF.", "main_photo": "Client's photo URL.",
    "channel_email": "Client's e-mail addresses.", "channel_phone": "Client's phone numbers.",
    "channel_external": "External IDs.", "channel_facebook": "Facebook IDs.",
    "channel_mercado_livre": "Mercado Livre IDs.", "channel_telegram": "Telegram IDs.",
}

INTERACTION = [
    col("protocol_id", pa.string(), "Protocol number of the interaction (the API's `id`).", "id"),
    col("created_at", TS, "When the interaction was created (UTC)."),
    col("active", pa.bool_(), "True if initiated by an agent (sent), false if by the client (received)."),
    col("media", pa.string(), "Channel: PHONE, PHONE_CONF, WHATSAPP, FACEBOOK, EMAIL, SMS, TELEGRAM, TEXT, MELI_QST, MELI_MSG."),
    col("current_state", pa.string(), "Status at the time of the call (ENDED, DISCARDED, MISSED, EXPIRED, CANCELED, UNAVAILABLE, …)."),
    col("current_state_time", TS, "When the current status began (UTC)."),
    col("agent_id", pa.string(), "Agent who handled the interaction (null when none did).", "agent", "id"),
    col("agent_name", pa.string(), "Agent's name.", "agent", "name", flat="agent"),
    col("agent_phone_extension", pa.string(), "Agent's phone extension.", "agent", "phone_extension",
        flat="phone_extension"),
    col("department_id", pa.string(), "Department responsible for the interaction.", "department", "id"),
    col("department_name", pa.string(), "Department's name.", "department", "name", flat="department"),
    col("customer_id", pa.string(), "Client's id: a pseudonym, yet a person's, so `hash` makes it a keyed hash (still "
        "joinable across datasets) and `drop` a null.", "customer", "id", personal=True),
    *(col(f"customer_{f}", pa.string(), CUSTOMER_DOCS[f] + " Several values are joined with ', '.", "customer", "fields",
          f, flat=f, personal=True) for f in CUSTOMER_TEXT),
    *(col(f"customer_{f}", STR_LIST, CUSTOMER_DOCS[f] + " Always a list (empty when unknown).", "customer", "fields", f,
          flat=f, personal=True) for f in CUSTOMER_CHANNELS),
    col("sla_overdue", pa.bool_(), "True if the first response exceeded the SLA limit."),
]
HISTORY = [
    *INTERACTION,
    col("first_answer_time", TS, "When the agent first answered (UTC)."),
    col("mood", pa.string(), "Client rating from the satisfaction survey."),
    EXTRA,
]

EXPANDED_COUNTERS = {
    "expired": "1 if the interaction expired and can no longer be answered.",
    "missed": "1 if it was inactive and closed by the agent.",
    "canceled": "1 if the client ended it before it started.",
    "answered": "1 if completed by an agent.",
    "ended": "1 if closed by the agent after a final message exchange.",
    "discarded": "1 if received but interrupted by the agent.",
    "queued": "How many times it was queued.",
    "ringing": "How many times it was distributed among agents.",
    "postponed": "Times placed on the pending list waiting for the client.",
    "pending": "Times placed on the pending list waiting for an agent.",
    "transferring": "How many times it was transferred.",
    "messages": "Number of messages exchanged, as the API counts them.",
    "response_count": "Number of exchanges between client and agent.",
}
EXPANDED_SECONDS = {
    "queued_time": "Time in the queue or unanswered, seconds.",
    "ringing_time": "Time ringing for agents, seconds.",
    "missed_time": "Time for an inactive interaction to close, seconds.",
    "canceled_time": "Time until the client canceled, seconds.",
    "expired_time": "Time the inactive interaction took to be closed, seconds.",
    "discarded_time": "Time until the agent discarded it, seconds.",
    "talking_time": "Time in progress, seconds.",
    "postponed_time": "Time waiting for a client message, seconds.",
    "pending_time": "Time waiting for an agent message, seconds.",
    "first_contact_time": "Time the agent took to answer the client's first message, seconds.",
    "response_time": "Average time for the agent to respond, seconds.",
    "sla_time": "Time from the client's first message to completion, seconds.",
}
EXPANDED_TEXT = {
    "browser": "Client's browser (web chat).", "ip": "Client's IP address (web chat).",
    "os": "Client's operating system (web chat).", "source": "URL that led the client to the chat.",
    "group_name": "Group name.", "origin": "Who initiated the interaction.",
    "state": "Interaction status.", "type": "Channel of the interaction.", "notes": "Notes.",
}
HISTORY_EXPANDED = [
    *HISTORY[:-1],
    *(col(name, pa.int64(), doc) for name, doc in EXPANDED_COUNTERS.items()),
    *(col(name, pa.float64() if name == "response_time" else pa.int64(), doc) for name, doc in EXPANDED_SECONDS.items()),
    *(col(name, pa.string(), doc, personal=name == "ip", free_text=name == "notes")
      for name, doc in EXPANDED_TEXT.items()),
    col("start_time", TS, "First message: when the agent received the first message (UTC).", "startTime"),
    col("end_time", TS, "Last update: when the status last changed (UTC).", "endTime"),
    col("tag_count", pa.int64(), "Number of tags used.", "tagCount"),
    col("tags", pa.list_(TAG), "Tags used, as {id, name}."),
    EXTRA,
]

# -- messages and conversations -----------------------------------------------------------------------

MESSAGES = [
    derived("protocol_id", pa.string(), "Protocol the message belongs to."),
    col("message_id", pa.string(), "Message id.", "id"),
    col("created_at", TS, "When the message was sent (UTC)."),
    col("author_type", pa.string(), "CUSTOMER, AGENT, BOT or SYSTEM, whatever case or synonym the API used "
        "(client, operator, chatbot, …); another type is kept as sent, in upper case.", "author", "type",
        canonical=author_type),
    col("author_id", pa.string(), "Author's id (the customer's is personal data, like `customer_id`: agents' and bots' "
        "ids are kept as sent).", "author", "id", personal=True),
    col("author_name", pa.string(), "Author's name (the customer's only: agents' and bots' names are kept as sent).",
        "author", "name", personal=True),
    col("type", pa.string(), "TEXT, IMAGE, AUDIO, DOCUMENT, … (`type`, or `content_type`).", also=("content_type",)),
    col("text", pa.string(), "Message text (`text`, or `content`).", also=("content",), free_text=True),
    col("attachment_url", pa.string(), "Attachment URL, if any.", "attachment", "url"),
    col("attachment_mime_type", pa.string(), "Attachment MIME type.", "attachment", "mime_type"),
    derived("raw_json", pa.string(), "The message as the API sent it (the vendor does not document its format), personal "
            "values protected as in the columns; under `personal_data_text: mask` every string in it but the "
            "columns' own (ids, times, types, author, attachment) is masked."),
]
MESSAGE_ITEM = pa.struct([("message_id", pa.string()), ("created_at", TS), ("author_type", pa.string()),
                          ("author_name", pa.string()), ("type", pa.string()), ("text", pa.string())])
CONVERSATION_FIGURES = [
    derived("message_list", pa.list_(MESSAGE_ITEM), "The interaction's messages in time order."),
    derived("message_count", pa.int64(), "Messages fetched for the interaction."),
    derived("customer_message_count", pa.int64(), "Messages written by the client."),
    derived("agent_message_count", pa.int64(), "Messages written by agents."),
    derived("bot_message_count", pa.int64(), "Messages written by a bot."),
    derived("system_message_count", pa.int64(), "System messages (transfers, holds)."),
    derived("first_message_at", TS, "First message (UTC)."),
    derived("last_message_at", TS, "Last message (UTC)."),
    derived("first_customer_message_at", TS, "Client's first message (UTC)."),
    derived("first_agent_reply_at", TS, "First agent message after the client's first message (UTC); null when an "
                                        "agent started the conversation (`active`) or no agent replied."),
    derived("first_agent_reply_seconds", pa.int64(), "Seconds from the client's first message to the first agent "
            "message after it, queue and distribution included (the API's `first_contact_time` counts from when the "
            "agent got the interaction, so it is shorter); null when an agent started the conversation or none "
            "replied."),
    derived("conversation_seconds", pa.int64(), "Seconds from the first to the last message."),
]
CONVERSATIONS = [*HISTORY_EXPANDED[:-1], *CONVERSATION_FIGURES, EXTRA]

ONGOING = [
    derived("polled_at", TS, "When the sensor polled the ongoing endpoint (UTC)."),
    *INTERACTION,
    col("agent_status", pa.string(), "Agent's status at the poll: ONLINE or OFFLINE.", "agent", "status"),
    derived("state_seconds", pa.int64(), "Seconds the interaction had been in its current state at the poll."),
    EXTRA,
]

DATASETS: dict[str, list[Column]] = {
    **{f"report_by_{t}": REPORT for t in REPORT_DATA_TYPES},
    "history": HISTORY, "history_expanded": HISTORY_EXPANDED, "messages": MESSAGES,
    "conversations": CONVERSATIONS, "ongoing": ONGOING,
}


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type) for c in columns])


def dataset_schema(name: str) -> pa.Schema:
    return arrow_schema(DATASETS[name])


# -- JSON -> Arrow -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Known:
    """What a dataset's schema names in an object: its keys, and the objects among them it looks into."""

    names: frozenset
    nested: dict  # key -> _Known


@lru_cache(maxsize=None)
def _known(dataset: str) -> _Known:
    tree: dict = {}
    for c in DATASETS[dataset]:
        if c.path is None:
            continue
        node = tree
        for key in c.path[:-1]:
            node = node.setdefault(key, {})
        for leaf in (c.path[-1], *c.also):
            node[leaf] = None  # leaf: the whole value is stored
        if c.flat is not None:
            tree.setdefault(c.flat, None)

    def known(node: dict) -> _Known:
        return _Known(frozenset(node), {key: known(sub) for key, sub in node.items() if sub is not None})

    return known(tree)


def _unknown(value: dict, known: _Known) -> dict:
    """The record's fields the schema does not name, in the record's order, as its JSON had them."""
    if value.keys() <= known.names:  # the usual record, told by one set operation in C: only the objects it
        found = {}  # looks into can hold something unknown
        for key, sub in known.nested.items():
            item = dict.get(value, key)
            if isinstance(item, dict) and (nested := _unknown(item, sub)):
                found[key] = nested
        return found if len(found) < 2 else {key: found[key] for key in value if key in found}
    extra = {}
    for key, item in value.items():
        if key not in known.names:
            extra[key] = item
        elif key in known.nested and isinstance(item, dict):
            nested = _unknown(item, known.nested[key])
            if nested:
                extra[key] = nested
    return extra


def unknown_fields(record: dict, dataset: str) -> dict:
    """The parts of an API record that the dataset's schema does not name (what goes to extra_json)."""
    return _unknown(record, _known(dataset))


class _ParentsByPath:
    """Each record's object at a path (`customer`, `customer.fields`), worked out once for all the columns
    under it: a dozen columns share `customer.fields`."""

    def __init__(self, records: list[dict]):
        self._at: dict[tuple, list] = {(): records}

    def __call__(self, path: tuple) -> list:
        if path not in self._at:
            parents, key = self(path[:-1]), path[-1]
            self._at[path] = _get(parents, key)
        return self._at[path]


def _get(parents: list, key: str) -> list:
    """Each parent's value at `key`, None where a parent is not an object. The usual case, every parent
    an object, is one pass in C: this runs once per column of every page."""
    try:
        return list(map(dict.get, parents, repeat(key)))
    except TypeError:  # a parent that is absent, or that the API sent as another type
        return [v.get(key) if isinstance(v, dict) else None for v in parents]


def _values(parents_at: _ParentsByPath, c: Column) -> list:
    """The column's value in each record: where the schema nests it (under its key or one of its other
    names), else where a flat record has it."""
    parents = parents_at(c.path[:-1])
    values = _get(parents, c.path[-1])
    for name in c.also:
        values = [v if v is not None else other for v, other in zip(values, _get(parents, name))]
    if c.flat is None:
        return values
    flat = parents_at((c.flat,))
    return [v if v is not None or isinstance(f, dict) else f for v, f in zip(values, flat)]


def _arrow_native(values: list, type_: pa.DataType) -> pa.Array | None:
    """The column through Arrow's own converter when the API sent the column's plain JSON type (text for
    a list of strings), which gives what the Python coercers give at a fraction of the CPU; None when
    their rules are needed."""
    if type_ not in (pa.string(), TS, pa.int64(), pa.float64(), pa.bool_(), STR_LIST):
        return None
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    if isinstance(array, pa.ChunkedArray):  # over 2 GB of text in one column: the Python way
        return None
    if type_ == STR_LIST:
        return _one_string_lists(array)
    if array.type == pa.null():
        return pa.nulls(len(array), type_)
    if type_ in (pa.string(), TS):
        if array.type != pa.string():
            return None
        array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)  # "" means unknown
        if type_ == pa.string():
            return array
        try:
            return array.cast(TS)  # ISO text with Z or an offset; naive text goes the Python way (as UTC)
        except pa.ArrowInvalid:
            return None
    if type_ == pa.float64() and array.type in (pa.int64(), pa.float64()):
        return array.cast(type_)
    return array if array.type == type_ else None


def _one_string_lists(array: pa.Array) -> pa.Array | None:
    """A customer field sent as plain text (the usual case) as lists of one string, empty for null or "";
    None when some record sent anything else, such as a list (`to_str_list` then)."""
    if array.type == pa.null():
        array = array.cast(pa.string())
    if array.type != pa.string():
        return None
    kept = pc.fill_null(pc.not_equal(array, ""), False)
    ends = pc.cumulative_sum(kept.cast(pa.int32()))
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), ends])
    return pa.ListArray.from_arrays(offsets, array.filter(kept), type=STR_LIST)


def _column(c: Column, records: list[dict], parents_at: _ParentsByPath, dataset: str, zone: tzinfo) -> pa.Array:
    values = _values(parents_at, c)
    if c.canonical is not None:
        values = [c.canonical(v) for v in values]
    native = _arrow_native(values, c.type)
    if native is not None:
        return native
    coerce = partial(to_ts, zone=zone) if c.type == TS else COERCE[c.type]
    out = []
    for record, value in zip(records, values):
        try:
            out.append(coerce(value))
        except SchemaError as exc:
            raise SchemaError(
                f"{dataset}.{c.name} (record {record.get('id')!r}): {exc}; the API changed a field's type, "
                "so this partition was not written: update zchat-assets or report the change."
            ) from None
    return pa.array(out, type=c.type)


def to_table(records: Iterable[dict], dataset: str, fixed: dict | None = None, privacy: Privacy | None = None,
             zone: tzinfo = timezone.utc) -> pa.Table:
    """API records to an Arrow table of the dataset's schema (derived columns come from `fixed`), with
    the personal-data setting applied: the one place where raw records become Arrow. Timestamps sent
    without an offset are local times of `zone`, the zone the request asked for."""
    columns = DATASETS[dataset]
    records = list(records)
    n = len(records)
    arrays, parents_at = {}, _ParentsByPath(records)
    for c in columns:
        if c.path is not None:
            arrays[c.name] = _column(c, records, parents_at, dataset, zone)
        elif c.name == "extra_json":
            known = _known(dataset)
            extras = (_unknown(record, known) for record in records)
            arrays[c.name] = pa.array([_to_json(e) if e else None for e in extras], pa.string())
        elif c.name in (fixed or {}):
            value = fixed[c.name]
            arrays[c.name] = pa.array(value if isinstance(value, list) else [value] * n, type=c.type)
        else:
            arrays[c.name] = pa.nulls(n, c.type)
    table = pa.table(arrays)
    return privacy.apply(table) if privacy else table


def report_table(lines: list[dict], dataset: str) -> pa.Table:
    return to_table(lines, dataset, {"is_total": [str(line.get("title")) == "Total" for line in lines]})


def messages_table(batch: list[tuple[str, list[dict]]], privacy: Privacy | None = None) -> pa.Table:
    """(protocol, messages) pairs to one table; each message keeps its original JSON: as the API wrote it
    when the client could keep that (`Messages.sent`), else written from the decoded message."""
    flat = [m for _, messages in batch for m in messages]
    owners = [protocol for protocol, messages in batch for _ in messages]
    raw = [text for _, messages in batch
           for text in (getattr(messages, "sent", None) or [_to_json(m) for m in messages])]
    return to_table(flat, "messages", {"protocol_id": owners, "raw_json": raw}, privacy)


def markdown_dictionary() -> str:
    """The data dictionary of every dataset, as Markdown (docs/data-dictionary.md embeds this output);
    personal data is marked, since `ZCHAT_PERSONAL_DATA=hash` or `drop` changes those columns."""
    out = []
    shown: dict[int, str] = {}
    for name, columns in DATASETS.items():
        if id(columns) in shown:
            out.append(f"### `{name}`\n\nSame columns as `{shown[id(columns)]}`.\n")
            continue
        shown[id(columns)] = name
        out.append(f"### `{name}`\n\n| column | type | meaning |\n| --- | --- | --- |")
        for c in columns:
            mark = "**Personal data.** " if c.personal else ""
            mark += "**Free text** (`personal_data_text: mask` masks identifiers typed in it). " if c.free_text else ""
            out.append(f"| `{c.name}` | `{c.type}` | {mark}{c.doc} |")
        out.append("")
    return "\n".join(out)
