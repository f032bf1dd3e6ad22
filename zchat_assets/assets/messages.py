"""Messages of every protocol of the day: one request per protocol, fetched concurrently."""

import threading
import time

from dagster import AssetCheckSpec, AssetExecutionContext, AssetsDefinition, asset

from ..day_messages import EXPANDED_COLUMNS, DayMessages
from .account import Shape
from .days import DayOutcome, api_days, late_changes_spec
from .metadata import partition_metadata

CODE_VERSION = "2"
PROGRESS_SECONDS = 15
PREVIEW = ["protocol_id", "message_id", "created_at", "author_type", "type", "text"]


class Progress:
    """Logs done / total, requests in flight, rate and ETA every PROGRESS_SECONDS from a timer, so a
    fetch that waits on slow answers still says so, and once at the end."""

    def __init__(self, log, label: str, total: int, cached: int, in_flight):
        self.log, self.label, self.total, self._in_flight = log, label, total, in_flight
        self.done = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        log.info(f"{label}: {cached:,} protocols from the cache, {total:,} to fetch")

    def __enter__(self) -> "Progress":
        threading.Thread(target=self._tick, name="zchat-progress", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if exc[0] is None and self.total:
            self._report()

    def step(self) -> None:
        self.done += 1

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_SECONDS):
            self._report()

    def _report(self) -> None:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        rate = self.done / elapsed
        eta = f"ETA {(self.total - self.done) / rate:,.0f}s" if rate else "no answer yet"
        self.log.info(f"{self.label}: {self.done:,}/{self.total:,} protocols, {self._in_flight():,} requests in "
                      f"flight, {rate:,.0f}/s, {eta}")


def messages_asset(account: Shape) -> AssetsDefinition:
    key = account.key("messages")

    @asset(
        **account.asset_args("messages", "history"), code_version=CODE_VERSION,
        deps=[account.key("history_expanded")],
        description="Every message of every interaction of the day (history/{id}/messages, one call per protocol), "
                    "each with its original JSON. Conversations that had ended are fetched once: later runs "
                    "read them from the lake's message cache.",
        check_specs=[
            AssetCheckSpec("messages_complete", asset=key, blocking=True,
                           description="Every protocol of the day fetched; finished ones have the message count "
                                       "the expanded history gives."),
            AssetCheckSpec("message_id_unique", asset=key, blocking=True, description="No message appears twice."),
            AssetCheckSpec("message_gaps", asset=key, description="Conversations lost for good at the vendor (purged, "
                                                                  "or short of their counter when asked twice): the "
                                                                  "day is published without them, and they are asked "
                                                                  "for again by every later run of the day."),
            late_changes_spec(key),
        ],
    )
    def messages(context: AssetExecutionContext):
        def produce(member, day, client, lake) -> DayOutcome:
            privacy = member.privacy(context)
            flush, recheck = member.settings.flush_messages, member.settings.recheck_seconds
            expanded = lake.read("history_expanded", day.key, columns=EXPANDED_COLUMNS)
            with DayMessages(lake, day.key, expanded, privacy, flush_messages=flush) as day_messages, \
                    Progress(context.log, f"messages {member.partition(day.key)}", len(day_messages.to_fetch), len(day_messages.cached),
                             lambda: client.in_flight) as progress:
                for protocol_id, items in client.messages_many(day_messages.to_fetch):
                    day_messages.add(protocol_id, items)
                    progress.step()
                short = day_messages.short()
                if short:
                    context.log.warning(f"messages {member.partition(day.key)}: {len(short)} finished conversation(s) came with fewer "
                                        f"messages than their counter; asking again in {recheck:g}s")
                    time.sleep(recheck)
                    for protocol_id, items in client.messages_many(short):
                        day_messages.add(protocol_id, items)
            metadata = partition_metadata("messages", day_messages.written, day_messages.sample, PREVIEW)
            written, kept = day_messages.cache_files
            metadata.update(protocols=len(day_messages.fetched), protocols_from_cache=len(day_messages.cached),
                            gaps=len(day_messages.gaps), cache_chunks_written=written, cache_chunks=kept)
            return DayOutcome(metadata, day_messages.checks, day_messages.written.changes)

        yield from api_days(context, account, produce)

    return messages
