"""The interactions of a day, in one step: the history, the expanded history and their messages.

One `multi_asset` holds the three, and any of them can be materialized alone. Selected together, they
run side by side: both histories are walked at once, and the messages of each page of the expanded
history are fetched as soon as the page is written (relay.py), so that a day takes about as long as
its messages alone. Each dataset is still audited, published and recorded as its own asset, day by day;
the messages of a day are published only after its expanded history is.
"""

import ctypes
import threading
import time
from collections.abc import Callable, Iterator

from dagster import AssetExecutionContext, AssetsDefinition, multi_asset

from .account import Shape
from .days import api_days
from .history import history_day, history_spec
from .messages import messages_day, messages_spec
from .relay import EVERY, Listing, Relays, wait_awake

HELD = ("history", "history_expanded", "messages")  # the datasets of the step
STOP_SECONDS = 30  # an interrupted dataset waits for at most one answer (a page, a batch of messages)


def interactions_asset(account: Shape) -> AssetsDefinition | None:
    datasets = [d for d in HELD if account.has(d)]
    if not datasets:
        return None
    specs, checks = zip(*(messages_spec(account) if d == "messages" else history_spec(account, d) for d in datasets))

    @multi_asset(name="__".join(account.key("interactions").path), specs=list(specs),
                 check_specs=[c for some in checks for c in some], can_subset=True, **account.step_args())
    def interactions(context: AssetExecutionContext):
        selected = {d for d in datasets if account.key(d) in context.selected_asset_keys}
        # What one dataset of a day tells another of this step (relay.py), when both run.
        to_messages = Relays() if {"history_expanded", "messages"} <= selected else None
        both = {"history", "history_expanded"} <= selected
        listing = {d: Listing() if both else None for d in ("history", "history_expanded")}
        produce = {"history": history_day(context, account, "history", mine=listing["history"],
                                          theirs=listing["history_expanded"]),
                   "history_expanded": history_day(context, account, "history_expanded", tells=to_messages,
                                                   mine=listing["history_expanded"], theirs=listing["history"]),
                   "messages": messages_day(context, to_messages)}
        tells = {"history": [listing["history"]], "history_expanded": [to_messages, listing["history_expanded"]]}
        runs = [telling(lambda done, d=d: api_days(context, account, account.key(d), produce[d], done_with=done), d,
                        tells.get(d, [])) for d in datasets if d in selected]
        if len(runs) == 1:
            yield from runs[0]()
        else:
            yield from side_by_side(runs, context.log)

    return interactions


def telling(run: Callable[[Callable], Iterator], dataset: str, tells: list) -> Callable[[], Iterator]:
    """`run(done_with)`, where the days it did not settle fail for those waiting on them (`tells`: Relays,
    Listings): an account's, once `done_with(member)` says it is done with the account (which failed half-way,
    say), so that the others do not wait for every other account of a fleet; then every account's."""
    tells = [t for t in tells if t is not None]

    def close(account=EVERY) -> None:
        for told in tells:
            told.close(f"{dataset} {{day}} was not published in this run", account)

    def closing() -> Iterator:
        try:
            yield from run(lambda member: close(member.name))
        finally:
            close()

    return closing


def side_by_side(runs: list[Callable[[], Iterator]], log) -> Iterator:
    """Runs each generator in a thread of its own, then yields their events in order; raises the first
    error among them (in that order) once every event is out, so that what was published is recorded,
    and logs the others. Dagster stops a run by interrupting this thread: the others are stopped alike."""
    events: list[list] = [[] for _ in runs]
    errors: list[BaseException | None] = [None] * len(runs)
    done = [threading.Event() for _ in runs]  # not Thread.join: an interrupted one marks a live thread dead

    def collect(i: int) -> None:
        run = runs[i]()
        try:
            for event in run:
                events[i].append(event)
        except BaseException as exc:
            errors[i] = exc
        finally:
            run.close()  # an interrupt between two events still unwinds the run
            done[i].set()

    threads = [threading.Thread(target=collect, args=(i,), name=f"zchat-dataset-{i}", daemon=True)
               for i in range(len(runs))]
    for thread in threads:
        thread.start()
    try:
        for finished in done:
            wait_awake(finished)
    except BaseException as interrupt:
        stop(threads, done, type(interrupt))
        raise
    for some in events:
        yield from some
    first, *others = [error for error in errors if error is not None] or [None]
    for error in others:
        log.error(str(error))
    if first is not None:
        raise first


def stop(threads: list[threading.Thread], done: list[threading.Event], kind: type[BaseException]) -> None:
    """Raises `kind` in every thread still running, as the interpreter raises an interrupt in the main one, and
    gives them STOP_SECONDS to unwind: staged days removed, messages fetched so far written to the cache."""
    for thread, finished in zip(threads, done):
        if not finished.is_set():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(kind))
    deadline = time.monotonic() + STOP_SECONDS
    for finished in done:
        finished.wait(max(deadline - time.monotonic(), 0))
