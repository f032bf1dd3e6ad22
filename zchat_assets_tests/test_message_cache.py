"""The message cache: ended conversations are fetched once, ongoing ones again, interrupted runs resume."""

import threading

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets.day_messages import DayMessages, versions
from zchat_assets.lake import Lake, LakeError
from zchat_assets.message_cache import MessageCache
from zchat_assets.privacy import Privacy
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import (DAY, NOW, TOKEN, account_defs, daily_assets, fast_api, make_world, materialize_some,
                       materialized, only)
from .truth import message_ids, protocols

FETCH = only("history_expanded", "messages")
HOUR = 3600


def fetch(server, lake_path, day, assets=FETCH, **api) -> dg.ExecuteInProcessResult:
    resources = {"zchat_api": fast_api(server.url, **api), "zchat_lake": ZchatLake(uri=str(lake_path))}
    return materialize_some(assets, resources=resources, partition_key=day, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)


def message_requests(app) -> int:
    return app.stats.by_endpoint.get("messages", 0)


def unfinished(lake, day) -> int:
    return lake.read("history_expanded", day, columns=["end_time"]).column("end_time").null_count


def test_a_finished_day_fetched_again_reads_the_cache_and_writes_the_same_output(tmp_path):
    app = SandboxApp(make_world(), TOKEN)
    with SandboxServer(app) as server:
        assert fetch(server, tmp_path, DAY).success
        lake = Lake(str(tmp_path))
        first, first_requests = lake.read("messages", DAY), message_requests(app)
        result = fetch(server, tmp_path, DAY)
        second_requests = message_requests(app) - first_requests
    assert result.success
    assert first_requests == len(protocols(app.views.world, DAY))
    assert second_requests == unfinished(lake, DAY) and first_requests >= 10 * max(second_requests, 1)
    assert lake.read("messages", DAY).equals(first)
    metadata = materialized(result, "messages")[0].metadata
    assert metadata["protocols_from_cache"].value == first_requests - second_requests


def test_a_conversation_still_ongoing_at_the_first_run_is_fetched_again(tmp_path):
    clock = [NOW]
    world = make_world()
    world._now = lambda: clock[0]
    app = SandboxApp(world, TOKEN)
    today = "2026-11-20"  # NOW is noon there: the day is half over, many conversations are open
    with SandboxServer(app) as server:
        assert fetch(server, tmp_path, today).success
        lake = Lake(str(tmp_path))
        open_then = unfinished(lake, today)
        seen_then = len(lake.read("history_expanded", today))
        before = message_requests(app)
        clock[0] = NOW + 36 * HOUR  # every conversation of that day has ended, more were created
        assert fetch(server, tmp_path, today).success
        second = message_requests(app) - before
    assert open_then > 0
    everything = protocols(world, today)
    assert second == open_then + (len(everything) - seen_then)
    stored = lake.read("messages", today).column("message_id").to_pylist()
    assert sorted(stored) == sorted(message_ids(world, today))


def test_a_run_that_dies_part_way_resumes_without_fetching_again_what_it_stored(tmp_path):
    small_batches = only("history_expanded", "messages", assets=daily_assets(account_defs(flush_messages=100)))
    app = SandboxApp(make_world(), TOKEN)
    with SandboxServer(app) as server:
        assert fetch(server, tmp_path, DAY).success
        lake = Lake(str(tmp_path))
        lake_before = lake.read("messages", DAY)
        # Start again on a fresh lake, and take the API down for good once 60% of the messages came.
        fresh = tmp_path / "fresh"
        start = message_requests(app)
        total = len(protocols(app.views.world, DAY))
        resources_lake = Lake(str(fresh))
        watcher = threading.Thread(target=_break_at, args=(app, start + int(0.6 * total)), daemon=True)
        watcher.start()
        broken = fetch(server, fresh, DAY, small_batches, max_retries=1)
        watcher.join()
        assert not broken.success
        assert not resources_lake.exists("messages", DAY)  # nothing half-written
        expanded = resources_lake.read("history_expanded", DAY, columns=["protocol_id", "messages", "end_time"])
        stored = len(MessageCache(resources_lake, DAY, Privacy()).usable(versions(expanded)))
        assert stored >= 0.3 * total
        app.faults.clear()
        before = message_requests(app)
        assert fetch(server, fresh, DAY).success
        resumed = message_requests(app) - before
    assert resumed == total - stored
    assert sorted(resources_lake.read("messages", DAY).column("message_id").to_pylist()) == \
        sorted(lake_before.column("message_id").to_pylist())


def _break_at(app, requests: int) -> None:
    while message_requests(app) < requests:
        threading.Event().wait(0.001)
    app.faults["500"] = 1.0


@pytest.fixture
def lake(tmp_path):
    return Lake(str(tmp_path))


def _messages(protocol: str, n: int) -> pa.Table:
    from zchat_assets.schemas import messages_table

    return messages_table([(protocol, [{"id": f"{protocol}-{i}", "created_at": "2026-11-18T12:00:00Z"}
                                       for i in range(n)])])


E1, E2 = "2026-11-18T15:00:00+00:00", "2026-11-18T16:00:00+00:00"


def test_the_newest_chunk_wins_and_end_times_must_match(lake):
    cache = MessageCache(lake, DAY, Privacy())
    cache.add(pa.concat_tables([_messages("1", 2), _messages("2", 1)]), {"1": [E1, 2], "2": [E1, 1], "3": [E1, 0]})
    cache.add(_messages("2", 3), {"2": [E2, 3]})
    usable = cache.usable({"1": E1, "2": E2, "3": E1, "4": E1})
    assert sorted(usable) == ["1", "2", "3"] and cache.stored("2", usable["2"]) == 3
    chunks = cache.by_chunk(usable)
    rows = pa.concat_tables(group for chunk, ps in chunks.items() for group in cache.read(chunk, ps))
    assert sorted(rows.column("message_id").to_pylist()) == ["1-0", "1-1", "2-0", "2-1", "2-2"]
    # an end time that changed (the conversation was reopened), or a conversation not ended
    assert cache.usable({"1": E2, "2": None}) == {}


def test_prune_deletes_only_chunks_that_nothing_uses(lake):
    cache = MessageCache(lake, DAY, Privacy())
    cache.add(_messages("1", 1), {"1": [E1, 1]})
    cache.add(_messages("1", 2), {"1": [E2, 2]})
    cache.add(_messages("2", 1), {"2": [E1, 1]})
    assert cache.prune({"1": E2, "2": E1}) == 1
    assert len(lake.files("_cache/messages", DAY)) == 2
    assert sorted(cache.usable({"1": E2, "2": E1})) == ["1", "2"]


def test_a_merged_chunk_is_read_a_row_group_at_a_time_and_only_for_the_protocols_asked(lake):
    """A compacted day is one chunk of the whole day: it is never read whole beside the day being written."""
    cache = MessageCache(lake, DAY, Privacy())
    for protocol in "123":
        cache.add(_messages(protocol, 2), {protocol: [E1, 2]})
    assert cache.compact({"1": E1, "2": E1, "3": E1}) == 3
    (chunk,) = lake.files("_cache/messages", DAY)
    groups = list(cache.read(chunk, {"1", "3"}))
    assert len(groups) == 3 and [g.num_rows for g in groups] == [2, 0, 2]
    assert pa.concat_tables(groups).column("message_id").to_pylist() == ["1-0", "1-1", "3-0", "3-1"]
    assert all(g.schema.metadata is None for g in groups)  # the chunk's footer stays in the cache


def test_a_day_whose_cache_read_fails_leaves_no_staging_and_the_published_day(lake, monkeypatch):
    expanded = pa.table({"protocol_id": ["1"], "messages": [2], "end_time": pa.array([NOW], pa.timestamp("us", tz="UTC"))})
    with DayMessages(lake, DAY, Privacy()) as day:
        assert day.take(expanded) == ["1"]
        day.add("1", [{"id": "1-0", "created_at": "2026-11-18T12:00:00Z"}, {"id": "1-1", "created_at": "2026-11-18T12:01:00Z"}])
        assert day.from_cache() == []
    published = lake.read("messages", DAY)

    def broken(self, chunk, protocols):
        yield from ()
        raise OSError("the disk went away")

    monkeypatch.setattr(MessageCache, "read", broken)
    with pytest.raises(LakeError, match="the disk went away"):
        with DayMessages(lake, DAY, Privacy()) as day:
            assert day.take(expanded) == []  # the cache has it
            day.from_cache()
    assert lake.read("messages", DAY).equals(published)
    assert lake.fs.find(f"{lake.root}/_staging") == []
