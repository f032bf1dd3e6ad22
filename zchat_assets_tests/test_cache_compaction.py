"""The message cache stays tidy: a day keeps one or two chunk files whatever the rate its messages came at,
and compacting never loses a chunk another run of the same day added or reads."""

import json

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets.lake import Lake
from zchat_assets.message_cache import DATASET, ENDS_KEY, PRIVACY_KEY, MessageCache
from zchat_assets.privacy import Privacy
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer
from zchat_assets.schemas import messages_table

from .conftest import TOKEN, fast_api, make_world, materialize_some, materialized, only
from .truth import protocols

ENDED_DAY = "2026-11-17"  # every interaction of it has ended at the sandbox's NOW
E1, E2 = "2026-11-17T15:00:00+00:00|1", "2026-11-17T16:00:00+00:00|2"


def chunk_files(lake: Lake, day: str) -> list[str]:
    return lake.files(DATASET, day)


def test_a_rate_limited_day_keeps_one_chunk_and_a_second_run_reads_it_all(lake_uri):
    app = SandboxApp(make_world(), TOKEN)
    lake = Lake(lake_uri)
    with SandboxServer(app) as server:
        # 20 requests/s: the messages come in 2-second batches, one chunk each, as any rate limit makes them.
        resources = {"zchat_api": fast_api(server.url, rate_limit=20), "zchat_lake": ZchatLake(uri=lake_uri)}
        run = lambda: materialize_some(only("history_expanded", "messages"), resources=resources,
                                       partition_key=ENDED_DAY, instance=dg.DagsterInstance.ephemeral())
        first = run()
        fetched = app.stats.by_endpoint["messages"]
        published = lake.read("messages", ENDED_DAY)
        second = run()
        again = app.stats.by_endpoint["messages"] - fetched
    figures = materialized(first, "messages")[0].metadata
    assert fetched == len(protocols(app.views.world, ENDED_DAY))
    assert figures["cache_chunks_written"].value >= 3  # what the day kept before compaction
    assert figures["cache_chunks"].value == 1 and len(chunk_files(lake, ENDED_DAY)) == 1
    again_figures = materialized(second, "messages")[0].metadata
    assert again == 0 and again_figures["protocols_from_cache"].value == fetched
    assert lake.read("messages", ENDED_DAY).equals(published)
    assert len(chunk_files(lake, ENDED_DAY)) <= 2


def _messages(protocol: str, n: int) -> pa.Table:
    return messages_table([(protocol, [{"id": f"{protocol}-{i}", "created_at": "2026-11-17T12:00:00Z"}
                                       for i in range(n)])])


@pytest.fixture
def lake(tmp_path):
    return Lake(str(tmp_path))


def test_compacting_under_an_overlapping_run_loses_nothing(lake):
    writer = MessageCache(lake, ENDED_DAY, Privacy())
    for protocol in "123":
        writer.add(_messages(protocol, 2), {protocol: [E1, 2]})
    this_run = MessageCache(lake, ENDED_DAY, Privacy())  # lists the three chunks
    reader = MessageCache(lake, ENDED_DAY, Privacy())  # another run, about to read them
    first, second, third = chunk_files(lake, ENDED_DAY)
    lake.remove_file(second)  # another run's prune deleted it since the listing
    other = MessageCache(lake, ENDED_DAY, Privacy())
    other.add(_messages("1", 3), {"1": [E2, 3]})  # another run fetched 1 again after it changed, and 4
    other.add(_messages("4", 1), {"4": [E1, 1]})
    added = sorted(set(chunk_files(lake, ENDED_DAY)) - {first, third})

    assert this_run.compact({"1": E1, "2": E1, "3": E1}) == 2
    files = chunk_files(lake, ENDED_DAY)
    (merged,) = set(files) - set(added)
    assert set(added) <= set(files) and first not in files and third not in files
    assert merged < added[0]  # named after the newest chunk it replaced: the chunks added meanwhile stay newer
    footer = lake.file_metadata(merged)
    assert json.loads(footer[ENDS_KEY]) == {"1": [E1, 2], "3": [E1, 2]} and footer[PRIVACY_KEY] == b"keep"

    later = MessageCache(lake, ENDED_DAY, Privacy())
    usable = later.usable({"1": E2, "3": E1, "4": E1})
    assert usable == {"1": added[0], "3": merged, "4": added[1]}  # the newer version of 1 still wins
    rows = pa.concat_tables(g for chunk, ps in later.by_chunk(usable).items() for g in later.read(chunk, ps))
    assert sorted(rows.column("message_id").to_pylist()) == ["1-0", "1-1", "1-2", "3-0", "3-1", "4-0"]
    assert reader.read(first, {"1"}) is None  # a run that listed a merged chunk fetches its protocols again


def test_the_biggest_chunk_stays_when_the_others_are_smaller_together(lake):
    cache = MessageCache(lake, ENDED_DAY, Privacy())
    cache.add(_messages("1", 6), {"1": [E1, 6], "2": [E1, 0]})
    big = chunk_files(lake, ENDED_DAY)[0]
    cache.add(_messages("3", 2), {"3": [E1, 2]})
    ends = {"1": E1, "2": E1, "3": E1}
    assert cache.compact(ends) == 0  # one small chunk beside the big one: nothing to merge
    cache.add(_messages("4", 3), {"4": [E1, 3]})
    assert cache.compact({**ends, "4": E1}) == 2
    files = chunk_files(lake, ENDED_DAY)
    assert len(files) == 2 and big in files
    cache.add(_messages("5", 9), {"5": [E1, 9]})  # now the others outweigh the big one: all are merged
    assert cache.compact({**ends, "4": E1, "5": E1}) == 3 and len(chunk_files(lake, ENDED_DAY)) == 1
    again = MessageCache(lake, ENDED_DAY, Privacy())
    assert sorted(again.usable({**ends, "4": E1, "5": E1})) == ["1", "2", "3", "4", "5"]


def test_a_chunk_deleted_while_the_day_is_merged_leaves_every_chunk_as_it_was(lake, monkeypatch):
    """Chunks are merged one at a time, never the whole day in memory; one pruned by another run while they
    are read stops the merge before anything is written or deleted (the next run merges what is left)."""
    cache = MessageCache(lake, ENDED_DAY, Privacy())
    for protocol in "123":
        cache.add(_messages(protocol, 2), {protocol: [E1, 2]})
    before = chunk_files(lake, ENDED_DAY)
    read = MessageCache.read
    held = []

    def read_then_another_run_prunes(self, chunk, protocols):
        held.append(chunk)
        if len(held) == 2:
            lake.remove_file(before[2])
        return read(self, chunk, protocols)

    monkeypatch.setattr(MessageCache, "read", read_then_another_run_prunes)
    assert cache.compact({"1": E1, "2": E1, "3": E1}) == 0
    assert chunk_files(lake, ENDED_DAY) == before[:2] and held == before
    assert lake.fs.find(f"{lake.root}/_staging") == []
