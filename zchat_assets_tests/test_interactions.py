"""The interactions step: history, expanded history and messages side by side, each still its own asset;
and the relays by which one dataset of a day tells another."""

import _thread
import logging
import signal
import threading
import time

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets.assets.interactions import side_by_side
from zchat_assets.assets.messages import Pages
from zchat_assets.assets.relay import Relay, Relays
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer
from zchat_assets.sandbox.views import ApiProblem

from .conftest import DAY, TOKEN, fast_api, make_world, materialize_some, only
from .truth import message_ids, protocols

FETCH = ("history", "history_expanded", "messages")


def run(server, lake_path, *datasets: str, instance=None, **api) -> dg.ExecuteInProcessResult:
    resources = {"zchat_api": fast_api(server.url, **api), "zchat_lake": ZchatLake(uri=str(lake_path))}
    return materialize_some(only(*(datasets or FETCH)), resources=resources, partition_key=DAY,
                            instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)


def assert_day_matches(lake: Lake, world, datasets=FETCH) -> None:
    """The day's interactions and messages, exactly as the sandbox's world has them."""
    for dataset in ("history", "history_expanded"):
        if dataset in datasets:
            assert sorted(lake.read(dataset, DAY).column("protocol_id").to_pylist()) == sorted(protocols(world, DAY))
    if "messages" in datasets:
        assert sorted(lake.read("messages", DAY).column("message_id").to_pylist(), key=str) == \
            sorted(message_ids(world, DAY), key=str)


def step_failure(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()


def test_messages_are_fetched_while_the_expanded_history_is_still_read(tmp_path):
    """Each expanded page's conversations are asked for as soon as it is written, and the day is exact."""
    app = SandboxApp(make_world(), TOKEN)
    history, messages, seen = app.views.history, app.views.messages, {}

    def slow_pages(q, *, expanded, shift=0):
        if expanded:
            time.sleep(0.2)
            seen["last page"] = time.monotonic()
        return history(q, expanded=expanded, shift=shift)

    def timed(protocol):
        seen.setdefault("first messages", time.monotonic())
        return messages(protocol)

    app.views.history, app.views.messages = slow_pages, timed
    with SandboxServer(app) as server:
        result = run(server, tmp_path, page_size=30)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    assert seen["first messages"] < seen["last page"] - 0.2  # pages of 30 out of 120: more than one page ahead
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == set(FETCH)
    assert_day_matches(Lake(str(tmp_path)), app.views.world)


def test_an_expanded_day_that_fails_keeps_its_messages_unpublished_and_the_history_goes_on(tmp_path):
    """The expanded history's second page fails past the retries: the messages of its first page, fetched
    meanwhile, wait in the cache and are not published, as after an upstream failure. The history is."""
    app = SandboxApp(make_world(), TOKEN)
    history = app.views.history

    def broken(q, *, expanded, shift=0):
        if expanded and q.get("page") == "2":
            raise ApiProblem(503, "Service unavailable")
        return history(q, expanded=expanded, shift=shift)

    app.views.history = broken
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(app) as server:
        result = run(server, tmp_path, page_size=30, max_retries=1, instance=instance)
        fetched = app.stats.by_endpoint.get("messages", 0)
        lake = Lake(str(tmp_path))
        published = {d for d in FETCH if lake.exists(d, DAY)}
        app.views.history = history
        again = run(server, tmp_path, "history_expanded", "messages", page_size=30)
        fetched_again = app.stats.by_endpoint["messages"] - fetched
    assert not result.success and "history/expanded?page=2 still failed after 2 attempts" in step_failure(result)
    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.ERROR]
    assert f"messages {DAY} was not published: history_expanded {DAY} was not published (" in "\n".join(logged)
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {"history"}
    assert published == {"history"} and 0 < fetched <= 30 and again.success
    assert fetched_again < len(protocols(app.views.world, DAY))  # the first page's ended ones came from the cache
    assert_day_matches(lake, app.views.world)


@pytest.mark.parametrize("hidden_from", ["history", "history_expanded"])
def test_a_record_hidden_from_either_history_is_asked_again_in_the_same_run(tmp_path, hidden_from):
    """Records deleted ahead of a walk hide as many others; run together, each history asks again for what
    the other's walk listed, so both days are whole and every check passes the first time."""
    app = SandboxApp(make_world(), TOKEN)
    history, walks = app.views.history, []

    def deleted_ahead(q, *, expanded, shift=0):
        mine = expanded == (hidden_from == "history_expanded")
        if mine and q.get("page") == "1":
            walks.append(q)
        hidden = -3 if mine and len(walks) == 1 and q.get("page") == "2" else 0
        return history(q, expanded=expanded, shift=shift + hidden)

    app.views.history = deleted_ahead
    with SandboxServer(app) as server:
        result = run(server, tmp_path, "history", "history_expanded", page_size=30)
    assert result.success and len(walks) == 2
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert_day_matches(Lake(str(tmp_path)), app.views.world, ("history", "history_expanded"))


@pytest.mark.parametrize("datasets", [("messages",), ("history", "messages")])
def test_messages_without_the_expanded_history_are_fetched_for_the_lakes(tmp_path, datasets):
    app = SandboxApp(make_world(), TOKEN)
    with SandboxServer(app) as server:
        assert run(server, tmp_path, "history_expanded").success
        pages = app.stats.by_endpoint.get("history/expanded", 0)
        result = run(server, tmp_path, *datasets)
        assert app.stats.by_endpoint.get("history/expanded", 0) == pages
    assert result.success
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == set(datasets)
    assert_day_matches(Lake(str(tmp_path)), app.views.world, datasets)


def test_a_relay_hands_pages_in_order_then_the_days_fate():
    relay = Relay()
    relay.put(pa.table({"protocol_id": ["1"], "messages": [2], "end_time": [None], "other": ["dropped"]}))
    relay.walked()
    (page,) = list(relay.pages())
    assert page.column_names == ["protocol_id", "messages", "end_time"]
    relay.settle(protocols={"1"})
    relay.settle("too late")  # the first word stands
    assert relay.published() == {"1"}


def test_a_relay_not_published_fails_those_waiting_and_ends_their_pages():
    relay, waited = Relay(), []

    def wait():
        with pytest.raises(dg.Failure, match="history_expanded 2026-11-18 was not published"):
            relay.published()
        waited.append(list(relay.pages()))

    waiting = threading.Thread(target=wait)
    waiting.start()
    relay.settle("history_expanded 2026-11-18 was not published (the API went away)")
    waiting.join(5)
    assert waited == [[]]


class Day:
    """What `Pages` asks of a day of messages, kept: the protocols to fetch of each page, the version named."""

    def __init__(self):
        self.named = []

    def take(self, page):
        return page.column("protocol_id").to_pylist()

    def fetched_for(self, expanded):
        self.named.append(expanded.num_rows)


@pytest.mark.parametrize("closed", [False, True])
def test_pages_name_the_expanded_days_version_once_published_unless_the_step_is_done(closed):
    """Named while the last messages come; a step that failed meanwhile does not want it worked out."""
    relay, day = Relay(), Day()
    pages = Pages(relay, day, lambda: pa.table({"protocol_id": ["1", "2"]}))
    relay.put(pa.table({"protocol_id": ["1", "2"], "messages": [3, 4], "end_time": pa.array([None, None], pa.timestamp("us"))}))
    relay.walked()
    if closed:
        pages.close()
    relay.settle(protocols={"1", "2"})
    pages.published()
    assert day.named == ([] if closed else [2])


def test_pages_of_a_walk_that_failed_do_not_wait_for_the_day():
    relay = Relay()

    class Broken(Day):
        def take(self, page):
            raise RuntimeError("the cache could not be read")

    pages = Pages(relay, Broken(), lambda: pa.table({}))
    relay.put(pa.table({"protocol_id": ["1"], "messages": [3], "end_time": pa.array([None], pa.timestamp("us"))}))
    with pytest.raises(RuntimeError, match="the cache could not be read"):
        pages.published()  # the expanded day never settles here: the error comes at once


def test_relays_closed_fail_every_day_not_settled_even_one_asked_for_later():
    relays = Relays()
    relays.get("acme", "2026-11-17").settle(protocols={"7"})
    waiting = relays.get("acme", "2026-11-18")
    relays.close("history {day} was not published in this run")
    assert relays.get("acme", "2026-11-17").published() == {"7"}
    for relay in (waiting, relays.get("acme", "2026-11-19")):
        with pytest.raises(dg.Failure, match="history 2026-11-1[89] of account acme was not published in this run"):
            relay.published()


@pytest.fixture
def interpreters_interrupts():
    """SIGINT raising KeyboardInterrupt, as in a run worker: a test run started in the background by a
    shell ignores SIGINT from its start (POSIX), and Python keeps that."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("interrupt", [
    lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT),
    _thread.interrupt_main,  # the interrupt without the signal: a wait that began just before it is not woken
], ids=["signal", "flag only"])
def test_an_interrupted_step_stops_every_dataset_and_each_unwinds(interrupt, interpreters_interrupts):
    """Dagster stops a run by interrupting its main thread: the datasets' threads stop the same way, and each
    unwinds (its staged day removed, its fetched messages cached) before the step ends."""
    unwound, started = [], time.monotonic()

    def endless(name):
        def run():
            try:
                while time.monotonic() - started < 10:  # not stopped: the test fails rather than hangs
                    time.sleep(0.01)
                    yield name
            finally:
                unwound.append(name)
        return run

    threading.Timer(0.3, interrupt).start()
    with pytest.raises(KeyboardInterrupt):
        list(side_by_side([endless("history"), endless("messages")], logging.getLogger("test")))
    assert sorted(unwound) == ["history", "messages"] and time.monotonic() - started < 5
