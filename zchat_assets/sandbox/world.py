"""A deterministic contact centre: the data the sandbox serves, generated from (seed, scale, time zone).

Each local day holds exactly `scale` interactions, generated on demand and cached. A protocol number
encodes its day and index, so any protocol's messages can be generated alone. What the API shows
depends on `now`: interactions not yet created are invisible, unfinished ones appear in an ongoing
state with only the messages sent so far, exactly as a live account behaves.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from . import names

EPOCH_DAY = date(2000, 1, 1)
PROTOCOLS_PER_DAY = 1_000_000
PROTOCOLS_PER_ACCOUNT = 100_000 * PROTOCOLS_PER_DAY  # an account's protocols never meet another's
CHANNELS = ("PHONE", "PHONE_CONF", "WHATSAPP", "FACEBOOK", "EMAIL", "SMS", "TELEGRAM", "TEXT", "MELI_QST", "MELI_MSG")
CHANNEL_WEIGHTS = (10, 1, 45, 6, 8, 3, 3, 14, 5, 5)
VOICE = ("PHONE", "PHONE_CONF")
FINAL_STATES = ("ENDED", "DISCARDED", "MISSED", "EXPIRED", "CANCELED", "UNAVAILABLE")
FINAL_WEIGHTS = (72, 5, 5, 5, 7, 6)
ONGOING_STATES = ("NOT_ANSWERED", "RINGING", "TALKING", "POSTPONED", "PENDING")
REGULAR_SHARE = 0.2  # of the interactions, when the world has returning customers
NO_AGENT_STATES = ("CANCELED", "UNAVAILABLE")
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 3, 6, 15, 30, 40, 45, 45, 35, 40, 45, 45, 40, 35, 25, 20, 15, 10, 6, 3)
SLA_FIRST_RESPONSE = 120


@dataclass(frozen=True)
class Interaction:
    """One interaction's hidden truth; `render` turns it into what the API shows at a given time."""

    protocol: int
    created: int  # epoch seconds
    media: str
    active: bool
    final_state: str
    agent: names.Agent | None
    department: names.Department
    customer_id: str
    customer_fields: dict
    tags: tuple[names.Tag, ...]
    queued: int
    ringing: int
    first_contact: int | None
    talking: int
    postponed: int
    pending: int
    transfers: int
    message_count: int
    mood: int | None
    ended_by_agent: bool
    web: dict

    @property
    def attended(self) -> int:
        return self.created + self.queued + self.ringing

    @property
    def ended(self) -> int:
        return self.attended + self.talking + self.postponed + self.pending

    def state_at(self, now: float) -> tuple[str, int]:
        """(state, since) as seen at `now`: a phase of the timeline, or the final state."""
        if now >= self.ended:
            return self.final_state, self.ended
        marks = [(self.created, "NOT_ANSWERED"), (self.created + self.queued, "RINGING"),
                 (self.attended, "TALKING"), (self.attended + self.talking, "POSTPONED"),
                 (self.attended + self.talking + self.postponed, "PENDING")]
        state, since = "NOT_ANSWERED", self.created
        for start, name in marks:
            if now >= start:
                state, since = name, start
        return state, since

    def agent_at(self, now: float) -> names.Agent | None:
        return self.agent if self.agent and now >= self.created + self.queued else None


class World:
    """Generates and caches days; every method is safe to call from several threads."""

    def __init__(self, seed: int = 7, scale: int = 200, tz: str = "America/Sao_Paulo",
                 now: Callable[[], float] | None = None, cache_days: int = 16, account: int = 0,
                 regulars: int = 0, typing: float = 0.0):
        if not 0 <= scale < PROTOCOLS_PER_DAY:
            raise ValueError(f"scale must be from 0 to {PROTOCOLS_PER_DAY - 1} interactions per day")
        self.seed, self.scale, self.tz = seed, scale, ZoneInfo(tz)
        self.account = account  # the sandbox serves one world per token; protocols carry the account
        self.tz_name = tz
        self._now = now or (lambda: datetime.now(timezone.utc).timestamp())
        self._cache: OrderedDict[date, list[Interaction]] = OrderedDict()
        self._cache_days = cache_days
        self._lock = threading.Lock()
        # Returning customers (a pool of `regulars`, one interaction in REGULAR_SHARE is one of them) and customers
        # typing their own phone, CPF or e-mail into a message (`typing`, a share of their text messages). Both
        # draw from generators of their own, so a world without them is the same as it always was.
        pool = random.Random(f"{seed}:regulars")
        self.regulars = [names.regular(pool) for _ in range(regulars)]
        self.typing = typing

    def now(self) -> float:
        return self._now()

    # -- days and protocols ------------------------------------------------------------------------

    def day(self, local_day: date) -> list[Interaction]:
        """All interactions created on a local day, in creation order (visible or not yet)."""
        with self._lock:
            cached = self._cache.get(local_day)
            if cached is not None:
                self._cache.move_to_end(local_day)
                return cached
        generated = self._generate(local_day)
        with self._lock:
            self._cache[local_day] = generated
            while len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return generated

    def interaction(self, protocol: int) -> Interaction | None:
        account, protocol = divmod(protocol, PROTOCOLS_PER_ACCOUNT)
        ordinal, index = divmod(protocol, PROTOCOLS_PER_DAY)
        if account != self.account or index < 1 or index > self.scale or ordinal < 0:
            return None
        return self.day(EPOCH_DAY + timedelta(days=ordinal))[index - 1]

    def between(self, start: float, end: float) -> list[Interaction]:
        """Interactions created in [start, end] (epoch seconds) that exist at `now`, oldest first."""
        end = min(end, self.now())
        if end < start:
            return []
        first = datetime.fromtimestamp(start, self.tz).date()
        last = datetime.fromtimestamp(end, self.tz).date()
        found = []
        for offset in range((last - first).days + 1):
            found.extend(ix for ix in self.day(first + timedelta(days=offset)) if start <= ix.created <= end)
        return found

    def ongoing(self) -> list[Interaction]:
        now = self.now()
        recent = self.between(now - 3 * 86400, now)
        return [ix for ix in recent if ix.ended > now]

    def local_bounds(self, local_day: date) -> tuple[int, int]:
        """Epoch seconds of the day's first and last second in the account's time zone."""
        start = datetime.combine(local_day, datetime.min.time(), self.tz)
        end = datetime.combine(local_day + timedelta(days=1), datetime.min.time(), self.tz)
        return int(start.timestamp()), int(end.timestamp()) - 1

    # -- generation ---------------------------------------------------------------------------------

    def _generate(self, local_day: date) -> list[Interaction]:
        rng = random.Random(f"{self.seed}:{local_day.isoformat()}")
        day_start, day_end = self.local_bounds(local_day)
        length = day_end - day_start + 1
        hours = rng.choices(range(24), HOUR_WEIGHTS, k=self.scale)
        # Spread over the day's real length, so a 25-hour day has interactions in its last hour too.
        offsets = sorted((h * 3600 + rng.randrange(3600)) * length // 86_400 for h in hours)
        base = self.account * PROTOCOLS_PER_ACCOUNT + (local_day - EPOCH_DAY).days * PROTOCOLS_PER_DAY
        return [self._interaction(rng, base + i + 1, day_start + off) for i, off in enumerate(offsets)]

    def _interaction(self, rng: random.Random, protocol: int, created: int) -> Interaction:
        media = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        state = rng.choices(FINAL_STATES, FINAL_WEIGHTS)[0]
        active = rng.random() < (0.3 if media in VOICE else 0.1) and state not in NO_AGENT_STATES
        department = rng.choice(names.DEPARTMENTS)
        agent = None if state in NO_AGENT_STATES else rng.choice(names.AGENTS)
        queued = 0 if active else int(rng.expovariate(1 / 90))
        ringing = 0 if agent is None else rng.randint(2, 25)
        talking = postponed = pending = 0
        first_contact = None
        if state == "ENDED":
            talking = int(rng.expovariate(1 / 540)) + 30
            first_contact = min(talking, int(rng.expovariate(1 / 70)) + 3)
            if rng.random() < 0.15:
                postponed = int(rng.expovariate(1 / 5400))
            if rng.random() < 0.05:
                postponed += rng.randint(6, 20) * 3600  # waits for the customer overnight
            if rng.random() < 0.1:
                pending = int(rng.expovariate(1 / 900))
        elif state in ("DISCARDED", "MISSED", "EXPIRED"):
            talking = rng.randint(30, 1800)
        elif state == "CANCELED":
            queued = rng.randint(5, 300)
        if media in VOICE:
            count = 0
        elif state == "ENDED":
            count = rng.randint(4, 14)
        elif state in ("CANCELED", "UNAVAILABLE", "DISCARDED", "EXPIRED"):
            count = rng.randint(1, 2) + int(active)
        else:
            count = rng.randint(1, 4)
        if active and count:
            count = max(count, 2)
        tags = tuple(rng.sample(names.TAGS, rng.choices((0, 1, 2), (25, 60, 15))[0]))
        customer_id, fields = names.customer(rng, media)
        if self.regulars:
            chooser = random.Random(f"{self.seed}:r:{protocol}")
            if chooser.random() < REGULAR_SHARE:
                customer_id, fields = chooser.choice(self.regulars)
                fields = dict(fields)
        web = names.web_client(rng) if media == "TEXT" else {}
        return Interaction(
            protocol=protocol, created=created, media=media, active=active, final_state=state, agent=agent,
            department=department, customer_id=customer_id, customer_fields=fields, tags=tags,
            queued=queued, ringing=ringing, first_contact=first_contact, talking=talking,
            postponed=postponed, pending=pending, transfers=rng.choices((0, 1, 2), (85, 12, 3))[0] if agent else 0,
            message_count=count, mood=rng.randint(1, 5) if state == "ENDED" and rng.random() < 0.4 else None,
            ended_by_agent=rng.random() < 0.9, web=web,
        )

    # -- messages -------------------------------------------------------------------------------

    def messages(self, ix: Interaction) -> list[dict]:
        """The full message list of an interaction (the caller hides those after `now`)."""
        if not ix.message_count:
            return []
        rng = random.Random(f"{self.seed}:m:{ix.protocol}")
        n = ix.message_count
        window_end = max(ix.ended, ix.attended + 1)
        authors: list[str] = []
        if ix.active:
            authors.append("AGENT")
        elif ix.media in ("WHATSAPP", "TEXT") and n >= 3 and rng.random() < 0.5:
            authors.extend(["CUSTOMER", "BOT"])
        else:
            authors.append("CUSTOMER")
        replying = ix.final_state == "ENDED"
        while len(authors) < n:
            if replying and "AGENT" not in authors:
                authors.append("AGENT")
            elif replying:
                authors.append(rng.choices(("CUSTOMER", "AGENT", "SYSTEM"), (46, 46, 8))[0])
            else:
                authors.append("CUSTOMER")
        times = [ix.created]
        if len(authors) > 1 and authors[1] == "BOT":
            times.append(ix.created + 1)
        first_reply = ix.attended + (ix.first_contact or 0)
        rest = n - len(times)
        later = sorted(rng.randint(max(first_reply, times[-1] + 1), max(first_reply, times[-1] + 1, window_end))
                       for _ in range(rest))
        if rest and replying:
            later[0] = max(first_reply, times[-1] + 1)
        times.extend(later)
        out = []
        for seq, (author, at) in enumerate(zip(authors, times), start=1):
            message = names.message(rng, ix, seq, author, at)
            if self.typing and author == "CUSTOMER" and message["text"]:
                typist = random.Random(f"{self.seed}:t:{ix.protocol}:{seq}")
                if typist.random() < self.typing:
                    message["text"] = names.typed_text(typist, ix.customer_fields) or message["text"]
            out.append(message)
        return out
