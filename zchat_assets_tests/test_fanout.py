"""The fan-out: every item once, at most `workers` at a time, memory bounded, errors passed or raised."""

import asyncio
import threading
import time

import pytest

from zchat_assets.api.fanout import Feed, fan_out

from .conftest import eventually


class Gone(Exception):
    pass


@pytest.fixture
def loop():
    """An event loop in a thread of its own, as a client runs one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def test_every_item_once_and_never_more_than_the_workers_at_once(loop):
    busy = most = 0

    async def fetch(item):
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await asyncio.sleep(0.002)
        busy -= 1
        return item * 2

    got = dict(fan_out(fetch, range(500), 8, loop))
    assert got == {i: 2 * i for i in range(500)} and most == 8


def test_an_exception_of_a_passed_kind_is_a_result_and_the_others_go_on(loop):
    async def fetch(item):
        if item % 10 == 0:
            raise Gone(item)
        return item

    got = dict(fan_out(fetch, range(50), 4, loop, passed=(Gone,)))
    assert len(got) == 50 and all(isinstance(got[i], Gone) for i in range(0, 50, 10)) and got[7] == 7


def test_any_other_exception_stops_the_workers_and_is_raised(loop):
    started = []

    async def fetch(item):
        started.append(item)
        if item == 5:
            raise ValueError("boom")
        await asyncio.sleep(0.001)
        return item

    with pytest.raises(ValueError, match="boom"):
        list(fan_out(fetch, range(10_000), 4, loop))
    time.sleep(0.05)
    assert len(started) < 100  # the workers stopped taking items


def test_a_slow_consumer_holds_the_workers_back(loop):
    """Results wait in a queue of twice the workers: a day's answers never pile up in memory."""
    taken = []

    async def fetch(item):
        taken.append(item)
        await asyncio.sleep(0)
        return item

    results = fan_out(fetch, iter(range(1_000)), 4, loop)
    next(results)
    time.sleep(0.1)
    assert len(taken) <= 1 + 2 * 4 + 4  # the one consumed, a full queue, one in each worker's hands
    results.close()  # closing early cancels the workers
    eventually(lambda: not [t for t in asyncio.all_tasks(loop) if not t.done()])
    assert len(taken) <= 1 + 2 * 4 + 4


def test_nothing_to_fetch_starts_nothing(loop):
    assert list(fan_out(lambda item: item, [], 64, loop)) == []


def test_a_feed_filled_while_the_requests_run_gives_every_item_once_and_never_stalls_the_loop(loop):
    """Items put from another thread while the workers wait: those in flight go on answering meanwhile."""
    feed, answered, while_empty = Feed(), [], []

    async def fetch(item):
        await asyncio.sleep(0.01 if item == 0 else 0)
        answered.append(item)
        return item

    def fill():
        feed.put([0])
        time.sleep(0.2)  # the feed is empty while 0 is in flight: 0 still answers
        while_empty.extend(answered)
        for start in range(1, 100, 33):
            feed.put(range(start, start + 33))
            time.sleep(0.01)
        feed.close()

    filler = threading.Thread(target=fill)
    filler.start()
    got = dict(fan_out(fetch, feed, 4, loop))
    filler.join()
    assert while_empty == [0] and got == {i: i for i in range(100)}


def test_a_closed_feed_ends_the_fan_out_and_one_closed_at_once_starts_nothing(loop):
    empty = Feed()
    empty.close()
    assert list(fan_out(lambda item: item, empty, 8, loop)) == []
    feed = Feed()
    feed.put("abc")
    feed.close()

    async def fetch(item):
        return item.upper()

    assert dict(fan_out(fetch, feed, 8, loop)) == {"a": "A", "b": "B", "c": "C"}
