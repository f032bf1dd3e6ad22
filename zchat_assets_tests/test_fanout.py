"""The fan-out: every item once, at most `workers` at a time, memory bounded, errors passed or raised."""

import threading
import time

import pytest

from zchat_assets.api.fanout import fan_out


class Gone(Exception):
    pass


def test_every_item_once_and_never_more_than_the_workers_at_once():
    busy, most, lock = 0, 0, threading.Lock()

    def fetch(item):
        nonlocal busy, most
        with lock:
            busy += 1
            most = max(most, busy)
        time.sleep(0.002)
        with lock:
            busy -= 1
        return item * 2

    got = dict(fan_out(fetch, range(200), workers=8))
    assert got == {i: 2 * i for i in range(200)} and most <= 8


def test_an_exception_of_a_passed_kind_is_a_result_and_the_others_go_on():
    def fetch(item):
        if item % 10 == 0:
            raise Gone(item)
        return item

    got = dict(fan_out(fetch, range(50), workers=4, passed=(Gone,)))
    assert len(got) == 50 and all(isinstance(got[i], Gone) for i in range(0, 50, 10)) and got[7] == 7


def test_any_other_exception_stops_the_workers_and_is_raised():
    started = []

    def fetch(item):
        started.append(item)
        if item == 5:
            raise ValueError("boom")
        time.sleep(0.001)
        return item

    with pytest.raises(ValueError, match="boom"):
        list(fan_out(fetch, range(10_000), workers=4))
    time.sleep(0.05)
    assert len(started) < 100  # the workers stopped taking items


def test_a_slow_consumer_holds_the_workers_back():
    """Results wait in a queue of twice the workers: a day's answers never pile up in memory."""
    taken = []
    results = fan_out(lambda item: taken.append(item) or item, iter(range(1_000)), workers=4)
    next(results)
    time.sleep(0.1)
    assert len(taken) <= 1 + 2 * 4 + 4  # the one consumed, a full queue, one in each worker's hands
    results.close()  # closing early lets every worker return
    time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name.startswith("zchat-worker")]


def test_fewer_items_than_workers_start_only_what_is_needed():
    before = threading.active_count()
    seen = []
    for _ in fan_out(lambda item: seen.append(threading.active_count()), ["a", "b"], workers=64):
        pass
    assert max(seen) <= before + 2
