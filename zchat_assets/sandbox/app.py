"""The sandbox's HTTP face: a plain ASGI app serving the vendor's paths, with latency and faults.

A bare ASGI callable rather than a framework router: fault injection needs to cut bodies and drop
connections, and the benchmarks need the per-request overhead to stay small.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl

import msgspec

from .views import GAP_KINDS, ApiProblem, Views
from .world import World

PREFIX = "/api/ms/external/"
FAULT_KINDS = ("500", "502", "503", "429", "reset", "cut", "truncated", "success_false", "html", "empty",
               "slow", "drift")
RETRY_AFTER_FORMS = ("seconds", "zero", "date", "missing")
# How the API's JSON can change under a client: a field it adds, numbers sent as numeric text, and a
# known number field that starts carrying words (history "queued_time", messages "created_at").
SCHEMA_CHANGES = ("new_field", "number_as_text", "text_in_number")
HTML_ERROR = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def parse_faults(spec: str | None) -> dict[str, float]:
    """`"500=0.02,reset=0.01"` (or `"all=0.02"`) to {kind: probability}."""
    faults = _shares(spec, FAULT_KINDS, "fault")
    if sum(v for k, v in faults.items() if k != "drift") > 1:
        raise ValueError("fault probabilities add up to more than 1")
    return faults


def parse_gaps(spec: str | None) -> dict[str, float]:
    """`"purged=0.01,short=0.01"` to {kind: share of finished conversations}."""
    return _shares(spec, GAP_KINDS, "gap")


def _shares(spec: str | None, kinds: tuple[str, ...], what: str) -> dict[str, float]:
    shares: dict[str, float] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        kind, _, rate = part.partition("=")
        kind = kind.strip()
        if kind != "all" and kind not in kinds:
            raise ValueError(f"unknown {what} {kind!r}: choose from {', '.join(kinds)} or all")
        try:
            value = float(rate)
        except ValueError:
            raise ValueError(f"{what} {kind!r} needs a probability, e.g. {kind}=0.02") from None
        shares.update({k: value for k in (kinds if kind == "all" else (kind,))})
    return shares


@dataclass
class Stats:
    """What the sandbox saw; served at /_sandbox/stats for tests and benchmarks."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_endpoint: dict = field(default_factory=dict)
    by_path: dict = field(default_factory=dict)  # requests per path below the API root (not served: it can be long)
    faults: dict = field(default_factory=dict)
    unauthorized: int = 0
    max_per_second: int = 0  # most requests that arrived within any one-second window
    by_account: dict = field(default_factory=dict)  # account number -> {requests, max_per_second}
    _recent: deque = field(default_factory=deque, repr=False)
    _recent_by_account: dict = field(default_factory=dict, repr=False)

    def arrived(self) -> None:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_per_second = max(self.max_per_second, _count_last_second(self._recent))

    def account_arrived(self, account: int) -> None:
        """A request with a valid token, counted for its account."""
        figures = self.by_account.setdefault(str(account), {"requests": 0, "max_per_second": 0})
        figures["requests"] += 1
        recent = self._recent_by_account.setdefault(account, deque())
        figures["max_per_second"] = max(figures["max_per_second"], _count_last_second(recent))

    def as_dict(self) -> dict:
        return {"requests": self.requests, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                "max_per_second": self.max_per_second, "by_endpoint": dict(self.by_endpoint),
                "faults": dict(self.faults), "unauthorized": self.unauthorized,
                "by_account": {k: dict(v) for k, v in self.by_account.items()}}


def _count_last_second(recent: deque) -> int:
    """Records an arrival now and returns how many arrived within the last second."""
    now = time.monotonic()
    recent.append(now)
    while recent[0] <= now - 1.0:
        recent.popleft()
    return len(recent)


class SandboxApp:
    """ASGI app. `faults` maps a kind of FAULT_KINDS to the probability that a request suffers it."""

    def __init__(self, world: World, token: str, *, latency: float = 0.0, jitter: float = 0.0,
                 faults: dict[str, float] | None = None, max_in_flight: int | None = None,
                 retry_after: float = 1.0, slow_seconds: float = 3.0, drift: int = 7, fault_seed: int = 1,
                 schema_changes: tuple[str, ...] = (), more_accounts: dict[str, World] | None = None,
                 dialects: frozenset[str] = frozenset(), gaps: dict[str, float] | None = None,
                 page_cap: int | None = None, fleet: Callable[[str], World | None] | None = None):
        """`world` is served to `token`; `more_accounts` maps further tokens to worlds of their own, and
        `fleet` gives any other token its world (or None: refused), made on its first request;
        `dialects` (see dialects.py) changes how the document is read; `gaps` (see views.py) loses some
        conversations for good; `page_cap` caps every page below what `limit` asks."""
        self.dialects = frozenset(dialects)
        self.views = Views(world, self.dialects, gaps, page_cap)
        self.token = token
        self.more_accounts = {t: Views(w, self.dialects, gaps, page_cap) for t, w in (more_accounts or {}).items()}
        self._fleet, self._gaps, self._page_cap = fleet, gaps, page_cap
        self.latency, self.jitter = latency, jitter
        self.faults = dict(faults or {})
        self.max_in_flight = max_in_flight
        self.retry_after, self.slow_seconds, self.drift = retry_after, slow_seconds, drift
        self._rng = random.Random(fault_seed)
        self._queued: deque[str] = deque()
        self._shifts: dict[str, int] = {}
        self.stats = Stats()
        unknown = set(schema_changes) - set(SCHEMA_CHANGES)
        if unknown:
            raise ValueError(f"unknown schema changes {sorted(unknown)}: choose from {', '.join(SCHEMA_CHANGES)}")
        self.schema_changes = tuple(schema_changes)

    def _views(self, token: str | None) -> Views | None:
        if token == self.token:
            return self.views
        if token not in self.more_accounts and token and self._fleet is not None:
            world = self._fleet(token)
            if world is not None:
                self.more_accounts[token] = Views(world, self.dialects, self._gaps, self._page_cap)
        return self.more_accounts.get(token)

    def queue_faults(self, *kinds: str) -> None:
        """The next requests get these faults, one each, in order (then the random ones resume)."""
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        self._queued.extend(kinds)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        if path == "/_sandbox/stats":
            body = self.stats.as_dict()
            if query.get("reset"):
                self.stats = Stats(in_flight=self.stats.in_flight)
            return await _send_json(send, 200, body)
        self.stats.arrived()
        try:
            await self._serve(path, query, send)
        finally:
            self.stats.in_flight -= 1

    async def _serve(self, path: str, query: dict, send) -> None:
        endpoint = _endpoint(path)
        self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
        below = path[len(PREFIX):]
        self.stats.by_path[below] = self.stats.by_path.get(below, 0) + 1
        if self.max_in_flight and self.stats.in_flight > self.max_in_flight:
            self._count("concurrency_429")
            return await _send_json(send, 429, _error(429, "Too many concurrent requests"),
                                    {"Retry-After": _seconds(self.retry_after)})
        if self.latency or self.jitter:
            await asyncio.sleep(self.latency + random.uniform(0, self.jitter))
        views = self._views(query.get("token"))
        if views is None:
            self.stats.unauthorized += 1
            status = 200 if "auth_in_body" in self.dialects else 401
            return await _send_json(send, status, _error(401, "Invalid or missing token"))
        self.stats.account_arrived(views.world.account)
        fault = self._draw_fault(query)
        if fault and await self._inject(fault, send):
            return
        drift = self._drift(endpoint, query, fault)
        try:
            if endpoint == "messages":
                body = self._body(views, endpoint, path, query, drift)
            else:  # a page of thousands of records takes 15-35 ms to build: not on the loop, which would
                # hold every other answer that long, past the latency the sandbox promises
                body = await asyncio.to_thread(self._body, views, endpoint, path, query, drift)
        except ApiProblem as problem:
            status = 200 if "errors_in_body" in self.dialects else problem.status
            return await _send_json(send, status, _error(problem.status, str(problem)))
        if fault == "cut":
            return await _send_cut(send, body)
        if fault == "truncated":
            body = body[: max(1, len(body) // 2)]
        await _send_raw(send, 200, body)

    def _body(self, views: Views, endpoint: str, path: str, query: dict, drift: int) -> bytes:
        """The JSON of a good answer; reads the world and the settings only, so it is safe in any thread."""
        data = self._answer(views, endpoint, path, query, drift)
        if self.schema_changes and endpoint != "reports":
            data = [_changed(record, self.schema_changes, endpoint) for record in data]
        body = {"status": 200, "success": True, "data": data}
        if "escaped_json" in self.dialects:
            return json.dumps(body, separators=(",", ":")).encode()
        if endpoint != "messages":  # pages of thousands of records: msgspec writes them 5x faster, compact
            return msgspec.json.encode(body)
        return json.dumps(body, ensure_ascii=False).encode()  # spaced, as the client must cut `raw_json` from

    @staticmethod
    def _answer(views: Views, endpoint: str, path: str, query: dict, drift: int) -> list:
        if endpoint == "reports":
            return views.report(query)
        if endpoint in ("history", "history/expanded"):
            return views.history(query, expanded=endpoint != "history", shift=drift)
        if endpoint == "messages":
            return views.messages(path[len(PREFIX) + len("history/"): -len("/messages")])
        if endpoint == "ongoing":
            return views.ongoing(query, shift=drift)
        raise ApiProblem(404, f"Unknown path {path}")

    def _drift(self, endpoint: str, query: dict, fault: str | None) -> int:
        """Records inserted ahead of a paging walk shift every later page of it, cumulatively; a
        request for page 1 starts a new walk. Drift can thus repeat records, never hide one. A walk is
        known by its endpoint and query: history and history_expanded of a day walk side by side."""
        walk = endpoint + "?" + "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k not in ("page", "token"))
        page = query.get("page", "1")
        if not page.isdigit() or int(page) < 2:
            self._shifts.pop(walk, None)
            return 0
        if fault == "drift" or (self.faults.get("drift") and self._rng.random() < self.faults["drift"]):
            self._count("drift")
            self._shifts[walk] = self._shifts.get(walk, 0) + self.drift
        return self._shifts.get(walk, 0)

    def _draw_fault(self, query: dict) -> str | None:
        if self._queued and self._queued[0] == "drift" and not query.get("page", "1") > "1":
            return None  # a queued drift waits for a request of page 2 or later
        if self._queued:
            kind = self._queued.popleft()
            if kind != "drift":
                self._count(kind)
            return kind
        roll = self._rng.random()
        for kind, probability in self.faults.items():
            if kind == "drift":
                continue
            if roll < probability:
                self._count(kind)
                return kind
            roll -= probability
        return None

    async def _inject(self, fault: str, send) -> bool:
        """Sends a fault's answer; False for faults applied to a real answer (cut, truncated, slow)."""
        if fault in ("500", "502", "503"):
            await _send_json(send, int(fault), _error(int(fault), "Internal server error"))
        elif fault == "429":
            form = self._rng.choice(RETRY_AFTER_FORMS)
            headers = {"seconds": {"Retry-After": _seconds(self.retry_after)}, "zero": {"Retry-After": "0"},
                       "date": {"Retry-After": formatdate(time.time() + self.retry_after, usegmt=True)},
                       "missing": {}}[form]
            await _send_json(send, 429, _error(429, "Rate limit exceeded"), headers)
        elif fault == "reset":
            _abort(send)
        elif fault == "success_false":
            await _send_json(send, 200, {"status": 500, "success": False, "error": "Temporary failure, try again"})
        elif fault == "html":
            await _send_raw(send, 502, HTML_ERROR, "text/html")
        elif fault == "empty":
            await _send_raw(send, 200, b"")
        elif fault == "slow":
            await asyncio.sleep(self.slow_seconds)
            return False
        else:
            return False
        return True

    def _count(self, kind: str) -> None:
        self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1


def _changed(record: dict, changes: tuple[str, ...], endpoint: str) -> dict:
    """A copy of an API record with the schema changes applied (the world's own records stay intact)."""
    record = dict(record)
    if "new_field" in changes:
        record["satisfaction"] = {"score": 5, "comment": "atendimento ótimo"}
    if "number_as_text" in changes:
        record.update({k: str(v) for k, v in record.items() if isinstance(v, int) and not isinstance(v, bool)})
    if "text_in_number" in changes:
        record["created_at" if endpoint == "messages" else "queued_time"] = "n/a"
    return record


def _endpoint(path: str) -> str:
    if not path.startswith(PREFIX):
        return "other"
    rest = path[len(PREFIX):].rstrip("/")
    if rest.startswith("history/") and rest.endswith("/messages"):
        return "messages"
    return rest


def _error(status: int, message: str) -> dict:
    return {"error": message, "status": status, "success": False}


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def _send_json(send, status: int, obj, headers: dict | None = None) -> None:
    await _send_raw(send, status, json.dumps(obj, ensure_ascii=False).encode(), headers=headers)


async def _send_raw(send, status: int, body: bytes, content_type: str = "application/json",
                    headers: dict | None = None) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_cut(send, body: bytes) -> None:
    """Announces the whole body, sends half of it, then drops the connection."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    _abort(send)


def _abort(send) -> None:
    """Drops the TCP connection. ASGI has no verb for it; uvicorn's `send` is bound to its cycle,
    which holds the transport."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: connection dropped")
    transport.abort()
