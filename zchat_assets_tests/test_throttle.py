"""Politeness on its own, without HTTP: the rate limiter's spacing, and the in-flight limit's turns (first come,
first served, whatever is cancelled or freed meanwhile). Over HTTP, with 429s: `test_requester.py`."""

import asyncio
import time

from zchat_assets.api.throttle import AdaptiveLimit, RateLimiter


def test_rate_limit_spaces_every_start_of_many_requests():
    limiter = RateLimiter(100)

    async def requests():
        for _ in range(10):
            await limiter.acquire()

    async def all_of_them():
        await asyncio.gather(*(requests() for _ in range(8)))

    started = time.monotonic()
    asyncio.run(all_of_them())
    assert time.monotonic() - started >= 79 * 0.01  # 80 starts, each 10 ms after the one before


async def holding(limit: AdaptiveLimit, name: str, order: list[str], release: asyncio.Event) -> None:
    async with limit:
        order.append(name)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_freed_slot_goes_to_the_first_waiting_not_to_the_request_that_frees_it():
    """A fan-out's worker frees its slot and asks for one again at once, without letting the loop run: it
    must queue behind the request already waiting (a retry, back from its wait), not take the slot back."""
    async def scenario():
        limit, order = AdaptiveLimit(1), []
        await limit.__aenter__()
        waiting = asyncio.create_task(holding(limit, "waiting", order, asyncio.Event()))
        await settle()

        async def next_request():
            await limit.__aexit__(None, None, None)
            await limit.__aenter__()
            order.append("next")

        worker = asyncio.create_task(next_request())
        await settle()
        assert order == ["waiting"] and limit.in_flight == 1
        for task in (waiting, worker):
            task.cancel()
        await asyncio.gather(waiting, worker, return_exceptions=True)
        assert limit.in_flight == 0

    asyncio.run(scenario())


def test_a_waiting_request_cancelled_leaves_no_slot_taken_and_no_one_stuck():
    async def scenario():
        limit, order, release = AdaptiveLimit(1), [], asyncio.Event()
        holder = asyncio.create_task(holding(limit, "holder", order, release))
        await settle()
        gone = asyncio.create_task(holding(limit, "gone", order, asyncio.Event()))
        after = asyncio.create_task(holding(limit, "after", order, release))
        await settle()
        gone.cancel()
        await settle()
        release.set()
        await asyncio.gather(holder, after, return_exceptions=True)
        assert order == ["holder", "after"] and limit.in_flight == 0

    asyncio.run(scenario())


def test_a_request_cancelled_as_its_turn_comes_passes_the_slot_on():
    async def scenario():
        limit, order = AdaptiveLimit(1), []
        await limit.__aenter__()
        unlucky = asyncio.create_task(holding(limit, "unlucky", order, asyncio.Event()))
        after = asyncio.create_task(holding(limit, "after", order, asyncio.Event()))
        await settle()
        await limit.__aexit__(None, None, None)  # the slot is handed to "unlucky"...
        unlucky.cancel()  # ...which is cancelled before it runs again
        await asyncio.gather(unlucky, return_exceptions=True)
        await settle()
        assert order == ["after"] and limit.in_flight == 1
        after.cancel()
        await asyncio.gather(after, return_exceptions=True)
        assert limit.in_flight == 0

    asyncio.run(scenario())


def test_a_limit_raised_again_lets_the_waiting_in_at_once():
    async def scenario():
        limit, order, release = AdaptiveLimit(2, probe_every=1), [], asyncio.Event()
        limit.limit = 1  # as after a limit met (`throttled`)
        holder = asyncio.create_task(holding(limit, "holder", order, release))
        await settle()
        waiting = asyncio.create_task(holding(limit, "waiting", order, release))
        await settle()
        assert order == ["holder"]
        await limit.succeeded()  # a good answer: the limit creeps back up by one
        await settle()
        assert order == ["holder", "waiting"] and limit.in_flight == 2
        release.set()
        await asyncio.gather(holder, waiting)
        assert limit.in_flight == 0

    asyncio.run(scenario())
