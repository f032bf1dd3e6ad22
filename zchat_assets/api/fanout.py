"""Many requests in flight from one step: `workers` coroutines on the client's event loop, each taking the
next item of a shared iterator, and a consumer in the caller's thread.

Results wait in a queue of at most twice the workers: a worker holds its next result until the consumer
has taken one, so memory stays proportional to the workers, not to the day, whatever the consumer's
pace. An exception of the kinds the caller names (`passed`) is a result like any other (a purged
conversation does not stop the others); any other stops the workers and is raised to the caller.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sized
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def fan_out(fetch: Callable[[Item], Awaitable[Result]], items: Iterable[Item], workers: int,
            loop: asyncio.AbstractEventLoop,
            passed: tuple[type[BaseException], ...] = ()) -> Iterator[tuple[Item, Result | BaseException]]:
    """(item, await fetch(item)) pairs in completion order, `workers` at a time on `loop`; closing the
    iterator early cancels what is in flight."""
    source = iter(items)
    results: queue.SimpleQueue = queue.SimpleQueue()
    finished = object()
    running = min(workers, len(items)) if isinstance(items, Sized) else workers
    if not running:
        return

    async def work(room: asyncio.Semaphore) -> None:
        try:
            while (item := next(source, finished)) is not finished:
                try:
                    result = await fetch(item)
                except passed as exc:
                    result = exc
                await room.acquire()
                results.put((item, result))
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # handed to the consumer, which raises it
            results.put(exc)
        finally:
            results.put(finished)

    async def start() -> tuple[asyncio.Semaphore, list[asyncio.Task]]:
        room = asyncio.Semaphore(2 * workers)
        return room, [asyncio.create_task(work(room)) for _ in range(running)]

    room, tasks = asyncio.run_coroutine_threadsafe(start(), loop).result()
    try:
        while running:
            got = results.get()
            if got is finished:
                running -= 1
            elif isinstance(got, Exception):
                raise got
            else:
                loop.call_soon_threadsafe(room.release)
                yield got
    finally:
        for task in tasks:
            loop.call_soon_threadsafe(task.cancel)
        while running:  # every worker has returned when it has said so
            if results.get() is finished:
                running -= 1
