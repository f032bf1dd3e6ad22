"""What each endpoint answers: parameters parsed and validated as the vendor documents, JSON built.

Functions here raise `ApiProblem` for a 4xx; the HTTP layer (`app.py`) turns it into the vendor's
error shape. Nothing here knows about HTTP.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from datetime import datetime, timedelta, timezone

from . import dialects
from .names import iso
from .world import NO_AGENT_STATES, SLA_FIRST_RESPONSE, Interaction, World

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
REPORT_TYPES = ("period", "agent", "department", "channel", "tag")
ADDITIVE = ("backlog", "received", "made", "rang", "answered", "ended", "not_answered", "pending",
            "postponed", "discarded", "missed", "expired", "remainder")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
# Conversations a real account may have lost for good, which the document does not rule out: purged at the
# vendor (its /messages answers 404), or one message short of its `messages` counter, however often asked.
GAP_KINDS = ("purged", "short")


class ApiProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# -- parameters ----------------------------------------------------------------------------------

def parse_offset(value: str | None) -> timezone:
    """The `timezone` parameter: five characters such as -0300; UTC when absent."""
    if not value:
        return timezone.utc
    match = _OFFSET.match(value.strip())
    if not match:
        raise ApiProblem(400, f"Invalid timezone '{value}': use the 5-digit format, e.g. -0300")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        raise ApiProblem(400, f"Invalid timezone '{value}'")
    return timezone(-delta if sign == "-" else delta)


def parse_when(value: str, tz: timezone, name: str) -> float:
    """`from`/`to`: YYYY-MM-DD HH:MM[:SS] (space or T) in the given offset; a bare date is midnight."""
    text = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz).timestamp()
        except ValueError:
            continue
    raise ApiProblem(400, f"Invalid '{name}' date '{value}': use YYYY-MM-DD HH:MM:SS")


def window(q: Mapping[str, str], now: float) -> tuple[float, float, timezone]:
    tz = parse_offset(q.get("timezone"))
    start = parse_when(q["from"], tz, "from") if q.get("from") else now - 30 * 86400
    end = parse_when(q["to"], tz, "to") if q.get("to") else now
    if end < start:
        raise ApiProblem(400, "'from' must be before 'to'")
    return start, end, tz


def paging(q: Mapping[str, str]) -> tuple[int, int]:
    try:
        limit = int(q.get("limit") or DEFAULT_LIMIT)
        page = int(q.get("page") or 1)
    except ValueError:
        raise ApiProblem(400, "'limit' and 'page' must be integers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiProblem(400, f"'limit' must be between 1 and {MAX_LIMIT}")
    if page < 1:
        raise ApiProblem(400, "'page' must be greater than or equal to 1")
    return limit, page


def _csv(q: Mapping[str, str], name: str) -> set[str] | None:
    raw = q.get(name)
    if not raw:
        return None
    return {part.strip().strip("'\"").upper() if name in ("states", "types") else part.strip()
            for part in raw.split(",") if part.strip()}


def _filters(q: Mapping[str, str], now: float) -> Callable[[Interaction], bool] | None:
    """The documented filters (agents, departments, states, types, tags, active, search) as one test, read
    from the query once for a whole day of interactions; None when the query has none."""
    agents, departments, states = _csv(q, "agents"), _csv(q, "departments"), _csv(q, "states")
    types, tags = _csv(q, "types"), _csv(q, "tags")
    active, search = q.get("active"), q.get("search", "").strip().lower()
    if active not in ("true", "false"):
        active = None
    if all(f is None for f in (agents, departments, states, types, tags, active)) and not search:
        return None

    def test(ix: Interaction) -> bool:
        agent = ix.agent_at(now)
        if agents is not None and (agent is None or agent.id not in agents):
            return False
        if departments is not None and ix.department.id not in departments:
            return False
        if states is not None and ix.state_at(now)[0] not in states:
            return False
        if types is not None and ix.media not in types:
            return False
        if tags is not None and not tags.intersection(t.id for t in ix.tags):
            return False
        if active is not None and ix.active != (active == "true"):
            return False
        if search:
            name = str(ix.customer_fields["main_identifier"]).lower()
            email = agent.email.lower() if agent else ""
            if search not in name and search not in email and search != str(ix.protocol):
                return False
        return True

    return test


def _matching(interactions: Iterable[Interaction], q: Mapping[str, str], now: float) -> list[Interaction]:
    test = _filters(q, now)
    return list(interactions) if test is None else [ix for ix in interactions if test(ix)]


# -- records --------------------------------------------------------------------------------------

# Each record has several timestamps, and every walk of a day writes them all again: formatted once.
_iso = lru_cache(maxsize=1 << 17)(iso)


def record(ix: Interaction, now: float, *, expanded: bool = False, ongoing: bool = False) -> dict:
    """An interaction as `history`, `history/expanded` or `ongoing` shows it at `now`."""
    state, since = ix.state_at(now)
    agent = ix.agent_at(now)
    answered_at = ix.attended + ix.first_contact if ix.first_contact is not None and not ix.active else None
    out = {
        "active": "true" if ix.active else "false",
        "agent": None if agent is None else {"id": agent.id, "name": agent.name, "phone_extension": agent.phone_extension},
        "created_at": _iso(ix.created),
        "current_state": state,
        "current_state_time": _iso(since),
        "customer": {"id": ix.customer_id, "fields": ix.customer_fields},
        "department": {"id": ix.department.id, "name": ix.department.name},
        "id": ix.protocol,
        "media": ix.media,
        "sla_overdue": ix.first_contact is not None and ix.first_contact > SLA_FIRST_RESPONSE,
    }
    if ongoing:
        if out["agent"] is not None:
            out["agent"]["status"] = "ONLINE" if (int(agent.id) + int(now) // 3600) % 5 else "OFFLINE"
        return out
    out["first_answer_time"] = _iso(answered_at) if answered_at is not None and answered_at <= now else None
    out["mood"] = str(ix.mood) if ix.mood is not None and now >= ix.ended else None
    if expanded:
        out.update(_expanded(ix, now, state))
    return out


def _expanded(ix: Interaction, now: float, state: str) -> dict:
    finished = now >= ix.ended
    final = ix.final_state if finished else None
    lasted = int(min(now, ix.ended) - ix.attended) if now > ix.attended else 0
    responses = ix.message_count // 2
    return {
        "expired": int(final == "EXPIRED"), "missed": int(final == "MISSED"), "canceled": int(final == "CANCELED"),
        "answered": int(final == "ENDED"), "ended": int(final == "ENDED" and ix.ended_by_agent),
        "discarded": int(final == "DISCARDED"), "queued": 0 if ix.active else 1,
        "ringing": 0 if ix.agent is None else 1 + ix.transfers, "postponed": int(ix.postponed > 0),
        "pending": int(ix.pending > 0), "transferring": ix.transfers,
        "messages": ix.message_count,
        "queued_time": ix.queued, "ringing_time": ix.ringing,
        "missed_time": lasted if final == "MISSED" else 0, "canceled_time": ix.queued if final == "CANCELED" else 0,
        "expired_time": lasted if final == "EXPIRED" else 0, "discarded_time": lasted if final == "DISCARDED" else 0,
        "talking_time": min(ix.talking, lasted), "postponed_time": ix.postponed if finished else 0,
        "pending_time": ix.pending if finished else 0,
        "first_contact_time": ix.first_contact if ix.first_contact is not None else None,
        "response_count": responses,
        "response_time": (ix.talking // max(responses, 1)) if responses else None,
        "sla_time": int(ix.ended - ix.created) if finished else None,
        "browser": ix.web.get("browser", ""), "ip": ix.web.get("ip", ""), "os": ix.web.get("os", ""),
        "source": ix.web.get("source", ""), "group_name": ix.department.name,
        "startTime": _iso(ix.created), "endTime": _iso(ix.ended) if finished else None,
        "origin": "AGENT" if ix.active else "CUSTOMER", "state": state, "type": ix.media,
        "tagCount": len(ix.tags), "tags": [{"id": t.id, "name": t.name} for t in ix.tags],
        "notes": "Cliente pediu retorno por e-mail." if ix.protocol % 17 == 0 else "",
    }


# -- endpoints --------------------------------------------------------------------------------------

class Views:
    """The five endpoints over one `World`, in the default reading of the document plus `dialects`."""

    def __init__(self, world: World, dialects: frozenset[str] = frozenset(), gaps: Mapping[str, float] | None = None,
                 page_cap: int | None = None):
        """`gaps` maps a kind of GAP_KINDS to the share of finished conversations that have it; `page_cap`
        answers at most that many records a page, whatever `limit` asked for (the document says 10,000)."""
        self.world = world
        self.dialects = dialects
        self.gaps = dict(gaps or {})
        self.page_cap = page_cap

    def gap(self, protocol: str) -> str | None:
        """The permanent gap a protocol has, if any: the same every time it is asked, in every run."""
        for kind in GAP_KINDS:
            if zlib.crc32(f"{kind}:{protocol}".encode()) / 2**32 < self.gaps.get(kind, 0):
                return kind
        return None

    def history(self, q: Mapping[str, str], *, expanded: bool, shift: int = 0) -> list[dict]:
        """One page; `shift` > 0 serves it as if that many records had been inserted ahead (drift)."""
        now = self.world.now()
        start, end, zone = window(q, now)
        found = _matching(self.world.between(start, end), q, now)
        records = [self._record(ix, now, expanded=expanded) for ix in _page(found, q, shift, self.page_cap)]
        if expanded and "flat_expanded" in self.dialects:
            records = [dialects.flatten(r) for r in records]
        return self._spoken(records, zone)

    def ongoing(self, q: Mapping[str, str], shift: int = 0) -> list[dict]:
        now = self.world.now()
        found = _matching(self.world.ongoing(), q, now)
        return self._spoken([record(ix, now, ongoing=True) for ix in _page(found, q, shift, self.page_cap)],
                            timezone.utc)

    def messages(self, protocol: str) -> list[dict]:
        now = self.world.now()
        ix = self.world.interaction(int(protocol)) if protocol.isdigit() else None
        gap = self.gap(protocol) if ix is not None and ix.ended <= now else None
        if ix is None or ix.created > now or gap == "purged":
            raise ApiProblem(404, f"Interaction {protocol} not found")
        shown = self._visible_messages(ix, now)
        if gap == "short" and shown:
            shown = shown[:-1]
        if "missing_ids" in self.dialects:
            shown = dialects.without_system_ids(shown)
        if "lower_content" in self.dialects:
            shown = dialects.lower_content(shown)
        return self._spoken(shown, timezone.utc)

    def _visible_messages(self, ix: Interaction, now: float) -> list[dict]:
        return [m for m in self.world.messages(ix) if _epoch(m["created_at"]) <= now]

    def _spoken(self, records: list[dict], zone: timezone) -> list[dict]:
        """Records as the dialects write state names and timestamps."""
        if "not_answer" in self.dialects:
            records = [dialects.queue_state(r) for r in records]
        if "naive_times" in self.dialects:
            records = [dialects.naive(r, zone) for r in records]
        return records

    def report(self, q: Mapping[str, str]) -> list[dict]:
        now = self.world.now()
        data_type = q.get("data_type") or "period"
        if data_type not in REPORT_TYPES:
            raise ApiProblem(400, f"Invalid data_type '{data_type}': use one of {', '.join(REPORT_TYPES)}")
        start, end, tz = window(q, now)
        inside = _matching(self.world.between(start, end), q, now)
        before = _matching((ix for ix in self.world.between(start - 3 * 86400, start - 1) if ix.ended >= start),
                           q, now)
        groups: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for ix in inside:
            for title in _titles(ix, data_type, tz, now):
                groups[title][0].append(ix)
        for ix in before:
            for title in _titles(ix, data_type, tz, now, backlog_day=datetime.fromtimestamp(start, tz)):
                groups[title][1].append(ix)
        fractional = "fractional_averages" in self.dialects
        lines = [_line(title, *groups[title], end, now, fractional) for title in sorted(groups)]
        lines.append(_line("Total", inside, before, end, now, fractional))
        return lines

    def _record(self, ix: Interaction, now: float, *, expanded: bool) -> dict:
        out = record(ix, now, expanded=expanded)
        if expanded and now < ix.ended and ix.message_count:
            out["messages"] = len(self._visible_messages(ix, now))
            out["response_count"] = out["messages"] // 2
        if expanded and "counter_excludes_bots" in self.dialects and ix.message_count:
            out["messages"] = dialects.human_messages(self._visible_messages(ix, now))
        if expanded and "fractional_averages" in self.dialects and out["response_count"]:
            out["response_time"] = round(ix.talking / out["response_count"], 2)
        return out


def _page(found: list, q: Mapping[str, str], shift: int, cap: int | None = None) -> list:
    limit, page = paging(q)
    limit = min(limit, cap or limit)
    first = max(0, (page - 1) * limit - shift)
    return found[first: first + limit]


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _titles(ix: Interaction, data_type: str, tz: timezone, now: float, backlog_day: datetime | None = None) -> list[str]:
    if data_type == "period":
        return [(backlog_day or datetime.fromtimestamp(ix.created, tz)).date().isoformat()]
    if data_type == "agent":
        agent = ix.agent_at(now)
        return [agent.name if agent else "Sem agente"]
    if data_type == "department":
        return [ix.department.name]
    if data_type == "channel":
        return [ix.media]
    return [t.name for t in ix.tags] or ["Sem tag"]


def _line(title: str, inside: list[Interaction], backlog: list[Interaction], end: float, now: float,
          fractional: bool = False) -> dict:
    """One report line; counters are additive across lines, averages are over the line's interactions
    (whole seconds, or with two decimals when `fractional`)."""

    def _avg(values: list[int]) -> float:
        if not values:
            return 0
        mean = sum(values) / len(values)
        return round(mean, 2) if fractional else round(mean)

    states = [ix.state_at(now)[0] for ix in inside]
    # In queue, pending and postponed: where the period's interactions stood when it ended (or now, for a
    # period still going on), as the ongoing endpoint showed them at that moment.
    at_end = [ix.state_at(min(end, now))[0] for ix in inside]
    ended = [ix for ix, s in zip(inside, states) if s == "ENDED"]
    attended = [ix for ix in inside if ix.agent is not None and ix.attended <= now]
    first = [ix.first_contact for ix in ended if ix.first_contact is not None]
    pending = [ix.pending for ix in ended if ix.pending]
    postponed = [ix.postponed for ix in ended if ix.postponed]
    tma = _avg([ix.talking for ix in ended])
    tme = _avg([ix.queued for ix in attended])
    tmpa = _avg(pending)
    return {
        "answered": len(ended),
        "backlog": len(backlog),
        "discarded": states.count("DISCARDED"),
        "ended": sum(1 for ix in ended if ix.ended_by_agent),
        "expired": states.count("EXPIRED"),
        "made": sum(1 for ix in inside if ix.active),
        "missed": states.count("MISSED"),
        "not_answered": at_end.count("NOT_ANSWERED"),
        "pending": at_end.count("PENDING"),
        "postponed": at_end.count("POSTPONED"),
        "rang": len(attended),
        "received": sum(1 for ix in inside if not ix.active),
        "remainder": sum(1 for ix in inside if ix.ended > min(end, now) and ix.final_state not in NO_AGENT_STATES),
        "sla": tma + tme + tmpa,
        "slapr": round(100 * sum(1 for f in first if f <= SLA_FIRST_RESPONSE) / len(first)) if first else 0,
        "title": title,
        "tma": tma,
        "tmaxe": max((ix.queued for ix in attended), default=0),
        "tme": tme,
        "tmp": _avg(postponed),
        "tmpa": tmpa,
        "tmpr": _avg(first),
        "tmr": _avg([ix.talking // max(1, ix.message_count // 2) for ix in ended if ix.message_count]),
    }
