"""`zchat-assets doctor`: the first command to run against a real account.

It checks the token, the base URL and TLS, calls every endpoint for yesterday with small pages and a
few protocols' messages, and compares what came back with the schemas: fields we do not know, fields
we expected and did not get, values of another type, timestamps with or without an offset, which
reading of the vendor's document the account speaks, how the expanded `messages` counter relates to
`/messages`, whether `limit` and `page` are honoured, latency and rate-limit headers. It writes nothing
to the lake, never prints the token, and keeps to the account's rate limit.

Exit status: 0 all matches (notes included: what is kept losslessly, or read either way), 1 something
that would lose or misread data, 2 cannot reach or authenticate.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .api import ApiUnavailableError, AuthError, ConfigError, GoneError, ZchatClient, ZchatError
from .api.errors import missing_token
from .api.vendor import AUTHOR_TYPES, QUEUE_STATES
from .assets.partitions import day_window
from .schemas import DATASETS, SchemaError, author_type, messages_table, to_table, unknown_fields
from .settings import AccountSettings

SAMPLE = 5  # records per page asked for
PROTOCOLS = 10  # conversations whose messages are compared with their counter
OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
# Where a user tells us about fields the schema does not name yet.
REPORT_TO = ("fields kept in extra_json lose nothing; report them as an issue of the repository you installed "
             "zchat-assets from (`git remote get-url origin` in your clone), pasting the lines above, so that the "
             "schema can name them")


class Report:
    def __init__(self, out):
        self.out, self.to_act, self.unknown = out, 0, False

    def ok(self, text: str) -> None:
        self.out(f"  ok    {text}")

    def note(self, text: str) -> None:
        self.out(f"  note  {text}")

    def act(self, text: str) -> None:
        self.to_act += 1
        self.out(f"  ACT   {text}")


def run(settings: AccountSettings, environ: Mapping[str, str], out=print) -> int:
    who = f"account {settings.name}" if settings.name else "the unnamed account (ZCHAT_* variables)"
    out(f"zchat-assets doctor: {who} at {settings.base_url}")
    token = (environ.get(settings.token_env) or "").strip()
    if not token:
        out(f"  FAIL  {missing_token(settings.secret_variable('token_env'))}")
        return 2
    report = Report(out)
    day = day_window((datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1)).isoformat(),
                     settings.timezone)
    probe = settings.model_copy(update={"concurrency": 1, "max_retries": 1, "page_size": SAMPLE})
    with ZchatClient(token, probe, token_variable=settings.secret_variable("token_env")) as client:
        try:
            lines = client.report("period", day.start, day.end, day.offset)
        except (AuthError, ConfigError, ApiUnavailableError) as exc:
            out(f"  FAIL  {exc}")
            return 2
        report.ok(f"token accepted, base URL and TLS fine; yesterday ({day.key}) asked in {day.offset}")
        try:
            _check(report, client, day, lines, settings.page_size)
        except ZchatError as exc:
            report.act(f"an endpoint failed: {exc}")
        _latency(report, client)
    if report.unknown:
        report.note(REPORT_TO)
    out(f"{report.to_act} thing(s) to act on." if report.to_act else "Everything matches what zchat-assets reads.")
    return 1 if report.to_act else 0


def _check(report: Report, client: ZchatClient, day, lines: list[dict], page_size: int) -> None:
    _shape(report, "report_by_period", lines)
    averages = [v for line in lines for k, v in line.items() if k.startswith("tm") and isinstance(v, float)]
    if any(v != round(v) for v in averages):
        report.note("report averages come with decimals: kept exactly (float columns)")

    window = {"from": day.start, "to": day.end, "timezone": day.offset}
    first = client.get("history", {**window, "limit": str(SAMPLE), "page": "1"})["data"]
    second = client.get("history", {**window, "limit": str(SAMPLE), "page": "2"})["data"]
    _shape(report, "history", first)
    _paging(report, first, second)
    _page_cap(report, client, window, page_size)
    expanded = client.get("history/expanded", {**window, "limit": str(2 * PROTOCOLS), "page": "1"})["data"]
    _shape(report, "history_expanded", expanded)
    _timestamps(report, first + expanded, day.offset)
    if any(isinstance(r.get("agent"), str) or any(k.startswith("channel_") for k in r) for r in expanded):
        report.note("the expanded history sends agent, department and customer fields flat: read into the same "
                    "columns")
    _counter(report, client, expanded)
    ongoing = client.get("ongoing", {"limit": "100", "page": "1"})["data"]  # enough to meet the queue state
    _shape(report, "ongoing", ongoing)
    spelled = {r.get("current_state") for r in ongoing} & set(QUEUE_STATES)
    if spelled:
        report.note(f"the queue state is spelled {', '.join(sorted(spelled))}: counted as state_not_answered")


def _shape(report: Report, dataset: str, records: list[dict]) -> None:
    """Fields unknown to the schema (a note: kept in extra_json, nothing is lost), fields it expects and did
    not get (their columns stay empty), values of another type (to act on: such days would fail)."""
    if not records:
        report.note(f"{dataset}: nothing to compare ({'nothing in progress now' if dataset == 'ongoing' else 'no records yesterday'})")
        return
    columns = DATASETS[dataset]
    unknown = sorted({key for r in records for key in _paths(unknown_fields(r, dataset))})
    absent = sorted(c.name for c in columns if c.path and not any(_has(r, c.path) or (c.flat and c.flat in r)
                                                                  for r in records))
    problems = []
    try:
        to_table(records, dataset)
    except SchemaError as exc:
        problems.append(str(exc))
    if unknown:
        report.unknown = True
        report.note(f"{dataset}: fields zchat-assets does not know yet, kept as they came in extra_json: "
                    f"{', '.join(unknown)}")
    if absent:
        report.note(f"{dataset}: fields expected and not sent: {', '.join(absent)} (their columns stay empty)")
    for problem in problems:
        report.act(problem)
    if not (unknown or problems):
        report.ok(f"{dataset}: {len(records)} record(s) match the schema")


def _paging(report: Report, first: list[dict], second: list[dict]) -> None:
    ids = [r.get("id") for r in first]
    if len(first) > SAMPLE:
        report.act(f"history: limit={SAMPLE} answered {len(first)} records: paging would repeat records")
    elif {r.get("id") for r in second} & set(ids):
        report.act("history: page 2 repeats records of page 1: `page` does not seem to be honoured")
    else:
        report.ok("history: limit and page honoured")
    if any(i is None for i in ids):
        report.note("history: records without an id: kept, and flagged by protocol_id_unique")


def _page_cap(report: Report, client: ZchatClient, window: dict, page_size: int) -> None:
    """Whether the API answers pages as large as the account's runs ask (`page_size`)."""
    asked = {**window, "limit": str(page_size)}
    full = client.get("history", {**asked, "page": "1"})["data"]
    if len(full) < page_size and full and client.get("history", {**asked, "page": "2"})["data"]:
        report.note(f"history: the API caps a page at {len(full)} records (limit={page_size} asked): read whole "
                    "all the same, one page at a time until an empty one")


def _timestamps(report: Report, records: list[dict], offset: str) -> None:
    stamps = [r[k] for r in records for k in ("created_at", "current_state_time") if isinstance(r.get(k), str) and r[k]]
    naive = sum(1 for s in stamps if not OFFSET.search(s))
    if naive:
        report.note(f"{naive} of {len(stamps)} timestamps have no offset: read as local times of {offset}, the zone asked for")
    elif stamps:
        report.ok("timestamps carry their offset")


def _counter(report: Report, client: ZchatClient, expanded: list[dict]) -> None:
    """How the expanded `messages` counter relates to what `/messages` returns, by author type."""
    finished = [r for r in expanded if r.get("endTime") and r.get("id") is not None][:PROTOCOLS]
    relations = Counter()
    seen: list[dict] = []
    for record in finished:
        try:
            messages = client.messages(str(record["id"]))
        except GoneError as gone:
            report.note(f"messages: conversation {record['id']} is not there ({gone}): such a conversation is "
                        "published as a gap, and asked for again by every later run of its day")
            continue
        seen.extend(messages)
        authors = Counter(author_type((m.get("author") or {}).get("type")) for m in messages)
        counter = int(record.get("messages") or 0)
        humans = authors["CUSTOMER"] + authors["AGENT"]
        if len(messages) == counter:
            relations["equal"] += 1
        elif len(messages) > counter and humans == counter:
            relations["bots"] += 1
        elif len(messages) < counter:
            relations["fewer"] += 1
        else:
            relations["other"] += 1
        if any(m.get("id") is None for m in messages):
            relations["no id"] += 1
    if not finished:
        report.note("messages: no finished conversation yesterday to compare with its counter")
    if relations["fewer"]:
        report.act(f"messages: {relations['fewer']} finished conversation(s) with fewer messages than the expanded "
                   "counter: each is asked again, then published as a gap (message_gaps); if most are, ask the "
                   "vendor what the counter counts")
    if relations["bots"]:
        report.note("messages: the expanded counter leaves bot and system messages out: fine, more is not an error")
    if relations["other"]:
        report.note(f"messages: {relations['other']} conversation(s) with more messages than the counter, "
                    "not only bots and system messages")
    if relations["no id"]:
        report.note("messages: some messages come without an id: kept, and flagged by message_id_unique")
    _message_shape(report, seen)
    if relations["equal"] and not (relations["fewer"] or relations["other"]):
        report.ok(f"messages: the counter matches /messages for {relations['equal'] + relations['bots']} conversation(s)")


def _message_shape(report: Report, messages: list[dict]) -> None:
    """The message format is not documented: whether its text, kind and author type are where we read them."""
    if not messages:
        return
    table = messages_table([("sample", messages)])
    spelled = {str((m.get("author") or {}).get("type")) for m in messages} - set(AUTHOR_TYPES)
    unknown = sorted({t for t in table.column("author_type").to_pylist() if t not in AUTHOR_TYPES}, key=str)
    if unknown:
        report.act(f"messages: author types zchat-assets does not know: {', '.join(map(str, unknown))} (the "
                   "customer's are hashed under personal_data: hash only when recognised)")
    elif spelled:
        report.note(f"messages: author types spelled {', '.join(sorted(spelled))}: read as "
                    f"{', '.join(AUTHOR_TYPES)}")
    for column, names in (("text", "text or content"), ("type", "type or content_type")):
        if table.column(column).null_count == len(table):
            report.act(f"messages: no message has its {column} under {names}: the `{column}` column would stay empty")


def _latency(report: Report, client: ZchatClient) -> None:
    seconds = client.latencies()
    if seconds:
        report.ok(f"{client.stats.requests} requests, median answer {1000 * statistics.median(seconds):.0f} ms, "
                  f"slowest {1000 * max(seconds):.0f} ms")
    if client.rate_headers:
        report.note("rate-limit headers: " + ", ".join(f"{k}: {v}" for k, v in sorted(client.rate_headers.items())))


def _paths(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.extend(_paths(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}")
    return out


def _has(record: dict, path: tuple[str, ...]) -> bool:
    node = record
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True
