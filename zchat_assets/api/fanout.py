"""Many requests in flight from one step: a fixed set of worker threads over a shared iterator.

Workers take items from the iterator and hand results back through a bounded queue, so memory stays
proportional to the number of workers, not to the day, and there is no per-request future to manage.
An exception of the kinds the caller names (`passed`) is a result like any other (a purged
conversation does not stop the others); any other stops the workers and is raised to the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def fan_out(fetch: Callable[[Item], Result], items: Iterable[Item], workers: int, name: str = "zchat-worker",
            passed: tuple[type[BaseException], ...] = ()) -> Iterator[tuple[Item, Result | BaseException]]:
    """(item, fetch(item)) pairs in completion order, `workers` at a time; closing the iterator early lets
    every worker return after its current item."""
    source = iter(items)
    take = threading.Lock()
    results: queue.Queue = queue.Queue(maxsize=2 * workers)
    stop = threading.Event()
    finished = object()

    def work() -> None:
        try:
            while not stop.is_set():
                with take:
                    item = next(source, finished)
                if item is finished:
                    return
                try:
                    result = fetch(item)
                except passed as exc:
                    result = exc
                results.put((item, result))
        except Exception as exc:  # handed to the consumer, which raises it
            results.put(exc)
        finally:
            results.put(finished)

    running = min(workers, len(items)) if isinstance(items, Sized) else workers
    for n in range(running):
        threading.Thread(target=work, name=f"{name}-{n}", daemon=True).start()
    try:
        while running:
            got = results.get()
            if got is finished:
                running -= 1
            elif isinstance(got, Exception):
                raise got
            else:
                yield got
    finally:
        stop.set()
        while running:  # let every worker return rather than block on a full queue
            if results.get() is finished:
                running -= 1
