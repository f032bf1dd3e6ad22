"""Messages of every protocol of the day: one request per protocol, fetched concurrently."""

import threading
import time
from collections.abc import Callable

import pyarrow as pa
from dagster import AssetCheckSpec, AssetExecutionContext, AssetSpec, Failure

from ..api.fanout import Feed
from ..day_messages import EXPANDED_COLUMNS, DayMessages
from .account import Shape
from .days import DayOutcome, late_changes_spec
from .metadata import partition_metadata
from .relay import Relay, Relays, wait_awake

CODE_VERSION = "2"
PROGRESS_SECONDS = 15
PREVIEW = ["protocol_id", "message_id", "created_at", "author_type", "type", "text"]


class Progress:
    """Logs done / total, requests in flight, rate and ETA every PROGRESS_SECONDS from a timer, so a
    fetch that waits on slow answers still says so, and once at the end. The total grows while the
    expanded history's pages still arrive."""

    def __init__(self, log, label: str, total: Callable[[], int], in_flight: Callable[[], int]):
        self.log, self.label, self._total, self._in_flight = log, label, total, in_flight
        self.done = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()

    def __enter__(self) -> "Progress":
        threading.Thread(target=self._tick, name="zchat-progress", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if exc[0] is None and self._total():
            self._report()

    def step(self) -> None:
        self.done += 1

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_SECONDS):
            self._report()

    def _report(self) -> None:
        elapsed, total = max(time.monotonic() - self._t0, 1e-9), self._total()
        rate = self.done / elapsed
        eta = f"ETA {(total - self.done) / rate:,.0f}s" if rate else "no answer yet"
        self.log.info(f"{self.label}: {self.done:,}/{total:,} protocols, {self._in_flight():,} requests in "
                      f"flight, {rate:,.0f}/s, {eta}")


class Pages:
    """Feeds the fan-out from a relay (relay.py): each page of the expanded history, as it arrives, gives its
    protocols to fetch. A thread of its own waits for the pages while the requests run; then for the expanded
    day to be published, and names its version for the messages (`DayMessages.fetched_for`: 0.1 s for a
    busy day, taken while the last messages come rather than after them)."""

    def __init__(self, relay: Relay, day_messages: DayMessages, read_expanded: Callable[[], pa.Table]):
        self.feed, self.error = Feed(), None
        self._relay, self._day_messages, self._read_expanded = relay, day_messages, read_expanded
        self._settled = threading.Event()  # the expanded day's fate is known, and its version named if published
        self._closed = threading.Event()  # the step is done with the day
        self._failure: Failure | None = None
        threading.Thread(target=self._fill, name="zchat-pages", daemon=True).start()

    def _fill(self) -> None:
        try:
            for page in self._relay.pages():
                self.feed.put(self._day_messages.take(page))
        except Exception as exc:  # raised in the step's thread once the fetch is over (`check`)
            self.error = exc
        finally:
            self.feed.close()
        try:
            if self.error is None:
                self._relay.published()
                if not self._closed.is_set():
                    self._day_messages.fetched_for(self._read_expanded())
        except Failure as failure:  # the expanded day was not published
            self._failure = failure
        except Exception as exc:
            self.error = exc
        finally:
            self._settled.set()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def published(self) -> None:
        """Waits for the expanded day's fate; `Failure` if it was not published."""
        wait_awake(self._settled)
        self.check()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """The step is done with the day: a version not named yet is not worked out."""
        self._closed.set()


def messages_spec(account: Shape) -> tuple[AssetSpec, list[AssetCheckSpec]]:
    key = account.key("messages")
    spec = AssetSpec(
        **account.spec_args("messages", "history"), code_version=CODE_VERSION,
        deps=[account.key("history_expanded")],
        description="Every message of every interaction of the day (history/{id}/messages, one call per protocol), "
                    "each with its original JSON. Conversations that had ended are fetched once: later runs "
                    "read them from the lake's message cache. Materialized with history_expanded, a day's "
                    "messages are fetched as its expanded history's pages arrive.",
    )
    return spec, [
        AssetCheckSpec("messages_complete", asset=key, blocking=True,
                       description="Every protocol of the day fetched; finished ones have the message count "
                                   "the expanded history gives."),
        AssetCheckSpec("message_id_unique", asset=key, blocking=True, description="No message appears twice."),
        AssetCheckSpec("message_gaps", asset=key, description="Conversations lost for good at the vendor (purged, "
                                                              "or short of their counter when asked twice): the "
                                                              "day is published without them, and they are asked "
                                                              "for again by every later run of the day."),
        late_changes_spec(key),
    ]


def messages_day(context: AssetExecutionContext, relays: Relays | None):
    """What a day of messages is: with `relays`, fetched as the expanded history of the same step is read;
    without, for the expanded history the lake has."""

    def produce(member, day, client, lake) -> DayOutcome:
        privacy = member.privacy(context)
        flush, recheck = member.settings.flush_messages, member.settings.recheck_seconds
        label = f"messages {member.partition(day.key)}"
        relay = relays.get(member.name, day.key) if relays is not None else None
        with DayMessages(lake, day.key, privacy, flush_messages=flush) as day_messages, \
                Progress(context.log, label, lambda: len(day_messages.to_fetch), lambda: client.in_flight) as progress:
            def read_expanded() -> pa.Table:
                return lake.read("history_expanded", day.key, columns=EXPANDED_COLUMNS)

            if relay is None:
                expanded = read_expanded()
                day_messages.fetched_for(expanded)
                pages, fetching = None, day_messages.take(expanded)
            else:
                pages = Pages(relay, day_messages, read_expanded)
                fetching = pages.feed
            try:
                for protocol_id, items in client.messages_many(fetching):
                    day_messages.add(protocol_id, items)
                    progress.step()
                if pages is not None:
                    pages.check()
                for protocol_id, items in client.messages_many(day_messages.from_cache()):
                    day_messages.add(protocol_id, items)
                    progress.step()
                context.log.info(f"{label}: {len(day_messages.cached):,} protocols from the cache, "
                                 f"{len(day_messages.to_fetch):,} fetched")
                short = day_messages.short()
                if short:
                    context.log.warning(f"{label}: {len(short)} finished conversation(s) came with fewer "
                                        f"messages than their counter; asking again in {recheck:g}s")
                    time.sleep(recheck)
                    for protocol_id, items in client.messages_many(short):
                        day_messages.add(protocol_id, items)
                if pages is not None:
                    try:
                        pages.published()
                    except Failure as failure:
                        raise Failure(f"{label} was not published: {failure.description}.") from None
            finally:
                if pages is not None:
                    pages.close()  # a day that failed: its version is not named
        metadata = partition_metadata("messages", day_messages.written, day_messages.sample, PREVIEW)
        written, kept = day_messages.cache_files
        metadata.update(protocols=len(day_messages.fetched), protocols_from_cache=len(day_messages.cached),
                        gaps=len(day_messages.gaps), cache_chunks_written=written, cache_chunks=kept)
        return DayOutcome(metadata, day_messages.checks, day_messages.written.changes)

    return produce
