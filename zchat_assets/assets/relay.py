"""What one dataset of a day tells another in the same step (interactions.py).

The expanded history hands its messages each page as it is written, so that they are fetched while the
history is still being read; the messages day is published only after the expanded day is (`published`),
and a rejected or failed expanded day fails it too, as an upstream failure fails a downstream step. The
two histories tell each other which protocols they listed (`Listing`): a record deleted while one walked
its pages hides another, which the other found.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from dagster import Failure

from ..day_messages import EXPANDED_COLUMNS

_END = object()
WAKE_SECONDS = 0.5


def wait_awake(event: threading.Event) -> None:
    """Waits for `event`, waking now and then to see an interrupt: one that lands as a wait begins does not
    end the wait itself."""
    while not event.wait(WAKE_SECONDS):
        pass


class Relay:
    """One day: pages in, in the order they were written; then whether the day was published, and its protocols."""

    def __init__(self):
        self._pages: queue.SimpleQueue = queue.SimpleQueue()
        self._settled = threading.Event()
        self._settling = threading.Lock()  # the telling side's thread, and a late `Relays.get` in another
        self._failure: str | None = None
        self._protocols: set[str] = set()

    def put(self, page: pa.Table) -> None:
        self._pages.put(page.select(EXPANDED_COLUMNS))  # what the messages need: the rest of the page is freed

    def walked(self) -> None:
        """No more pages."""
        self._pages.put(_END)

    def settle(self, failure: str | None = None, protocols: set[str] | None = None) -> None:
        """The day was published with `protocols` (no `failure`), or was not, and why; the first word stands."""
        with self._settling:
            if self._settled.is_set():
                return
            self._failure, self._protocols = failure, protocols or set()
            self._pages.put(_END)  # a walk that failed half-way said nothing more
            self._settled.set()

    def pages(self) -> Iterator[pa.Table]:
        while (page := self._pages.get()) is not _END:
            yield page

    def published(self) -> set[str]:
        """Waits for the day's fate: its protocols, or `Failure` if it was not published."""
        wait_awake(self._settled)
        if self._failure is not None:
            raise Failure(self._failure)
        return self._protocols


EVERY = object()  # `close`: the telling side is done with every account


class Relays:
    """The relays of one step's days, by account and day, made by whichever side asks first."""

    def __init__(self):
        self._relays: dict[tuple[str | None, str], Relay] = {}
        self._lock = threading.Lock()
        self._closed: dict = {}  # account, or EVERY -> the failure of the days not settled

    def get(self, account: str | None, day: str) -> Relay:
        with self._lock:
            relay = self._relays.get((account, day))
            if relay is None:
                relay = self._relays[account, day] = Relay()
                failure = self._closed.get(account, self._closed.get(EVERY))
                if failure is not None:
                    relay.settle(failure.format(day=_named(account, day)))
            return relay

    def close(self, failure: str, account=EVERY) -> None:
        """The telling side is done with `account` (by default, with every account): each of its days it did
        not settle fails with `failure` ({day}), so that the other side goes on to the next account at once."""
        with self._lock:
            self._closed[account] = failure
            relays = [(key, relay) for key, relay in self._relays.items() if account is EVERY or key[0] == account]
        for (named, day), relay in relays:
            relay.settle(failure.format(day=_named(named, day)))


@dataclass
class Listing:
    """What one history tells the other of each day: the protocols of its first walk, then of the whole day
    (after asking again for those the other's walk found)."""

    walked: Relays = field(default_factory=lambda: Relays())
    whole: Relays = field(default_factory=lambda: Relays())

    @property
    def both(self) -> tuple[Relays, Relays]:
        return self.walked, self.whole

    def close(self, failure: str, account=EVERY) -> None:
        for relays in self.both:
            relays.close(failure, account)


def _named(account: str | None, day: str) -> str:
    return f"{day} of account {account}" if account else day
