"""Many requests in flight from one step: `workers` coroutines on the client's event loop, each taking the
next item of a shared iterator, and a consumer in the caller's thread.

Results wait in a queue of at most twice the workers: a worker holds its next result until the consumer
has taken one, so memory stays proportional to the workers, not to the day, whatever the consumer's
pace. An exception of the kinds the caller names (`passed`) is a result like any other (a purged
conversation does not stop the others); any other stops the workers and is raised to the caller.

The items are an iterable known in advance, or a `Feed` that another thread fills while the requests
run (the protocols of each history page as it is read).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sized
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
_END = object()


class Feed:
    """Items that arrive while a fan-out runs: `put` them from any thread, then `close`. The workers wait
    for the next item on the event loop, never blocking it (other requests are in flight)."""

    def __init__(self):
        self._items: deque = deque()
        self._closed = False
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def put(self, items: Iterable) -> None:
        with self._lock:
            self._items.extend(items)
            loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._ready.set)

    def close(self) -> None:
        """No more items: the workers end once the ones put are done."""
        with self._lock:
            self._closed = True
        self.put(())

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop

    async def take(self):
        """The next item, or _END once closed and empty."""
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    return _END
                self._ready.clear()  # a put after this sets it again
            await self._ready.wait()


def fan_out(fetch: Callable[[Item], Awaitable[Result]], items: Iterable[Item] | Feed, workers: int,
            loop: asyncio.AbstractEventLoop,
            passed: tuple[type[BaseException], ...] = ()) -> Iterator[tuple[Item, Result | BaseException]]:
    """(item, await fetch(item)) pairs in completion order, `workers` at a time on `loop`; closing the
    iterator early cancels what is in flight."""
    results: queue.SimpleQueue = queue.SimpleQueue()
    finished = _END
    running = min(workers, len(items)) if isinstance(items, Sized) else workers
    if not running:
        return
    if isinstance(items, Feed):
        items.bind(loop)
        take = items.take
    else:
        source = iter(items)

        async def take():
            return next(source, finished)

    async def work(room: asyncio.Semaphore) -> None:
        try:
            while (item := await take()) is not finished:
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
