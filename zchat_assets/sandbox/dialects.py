"""The readings of the vendor's document that the sandbox can speak besides its default one.

The document is vague; a real account may answer in any of these ways, so the pipeline is tested
against each. A dialect changes how records are shown, never the data behind them.
"""

from __future__ import annotations

from datetime import datetime, timezone

DIALECTS = {
    "auth_in_body": "a wrong token is answered HTTP 200 with {success: false, status: 401} in the body",
    "errors_in_body": "every other error (400, 404) is answered HTTP 200 with its status in the body",
    "flat_expanded": "the expanded history's agent, phone_extension, department, channel_*, document and "
                     "main_identifier as variables of their own, not nested",
    "naive_times": "timestamps without an offset, in the zone the request asked for (UTC when it asked none)",
    "fractional_averages": "report averages and response_time with decimals",
    "not_answer": "the queue state spelled NOT_ANSWER, as the ongoing section of the document writes it",
    "counter_excludes_bots": "the expanded `messages` counter counts the customer's and agents' messages only",
    "missing_ids": "system messages come without an id",
    "lower_content": "messages' author types in lower case (customer, agent), their text as `content` and their "
                     "kind as `content_type`",
    "escaped_json": "good answers' JSON written compactly, every character beyond ASCII escaped (\\u00e9)",
}
TIMESTAMPS = ("created_at", "current_state_time", "first_answer_time", "startTime", "endTime")
QUEUE_STATE = "NOT_ANSWERED"


def parse_dialects(spec: str | None) -> frozenset[str]:
    """`"flat_expanded,naive_times"` (or `"all"`) to a set of dialect names."""
    names = {part.strip() for part in (spec or "").split(",") if part.strip()}
    if names == {"all"}:
        return frozenset(DIALECTS)
    unknown = sorted(names - set(DIALECTS))
    if unknown:
        raise ValueError(f"unknown dialects {unknown}: choose from {', '.join(DIALECTS)} or all")
    return frozenset(names)


def flatten(record: dict) -> dict:
    """An expanded record with the nested agent, department and customer fields made variables of their own."""
    out = dict(record)
    agent, department, customer = out.pop("agent", None), out.pop("department", None), out.pop("customer", None)
    out["agent"] = agent["name"] if agent else None
    out["phone_extension"] = agent["phone_extension"] if agent else None
    out["department"] = department["name"] if department else None
    if customer:
        out["customer"] = {"id": customer["id"]}
        out.update(customer["fields"])
    return out


def naive(record: dict, zone: timezone) -> dict:
    """The record's timestamps without an offset, as local times of `zone`."""
    out = dict(record)
    for name in TIMESTAMPS:
        if out.get(name):
            moment = datetime.fromisoformat(out[name].replace("Z", "+00:00")).astimezone(zone)
            out[name] = moment.replace(tzinfo=None).isoformat(timespec="seconds")
    return out


def queue_state(record: dict) -> dict:
    out = dict(record)
    for name in ("current_state", "state"):
        if out.get(name) == QUEUE_STATE:
            out[name] = "NOT_ANSWER"
    return out


def without_system_ids(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "id"} if m["author"]["type"] == "SYSTEM" else m for m in messages]


def human_messages(messages: list[dict]) -> int:
    return sum(1 for m in messages if m["author"]["type"] in ("CUSTOMER", "AGENT"))


def lower_content(messages: list[dict]) -> list[dict]:
    """Messages as another reading of the (undocumented) message format writes them."""
    out = []
    for m in messages:
        m = dict(m, author=dict(m["author"], type=m["author"]["type"].lower()))
        m["content"], m["content_type"] = m.pop("text", None), m.pop("type", None)
        out.append(m)
    return out
