"""What a real API does to a day that no retry fixes: conversations purged at the vendor or short of their
counter for good, records without an id, messages that arrive after a conversation was cached. None of them
may keep a day out of the lake, or make it wrong."""

import shutil

import dagster as dg
import pytest

from zchat_assets import gaps
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer
from zchat_assets.sandbox.views import ApiProblem

from .conftest import DAY, TOKEN, account_defs, daily_assets, fast_api, make_world, materialize_some, materialized, only
from .truth import message_ids, protocols

FETCH = only("history_expanded", "messages", "conversations", assets=daily_assets(account_defs(recheck_seconds=0.2)))


def run(server, lake_path, assets=FETCH, **kw) -> dg.ExecuteInProcessResult:
    resources = {"zchat_api": fast_api(server.url, **kw.pop("api", {})), "zchat_lake": ZchatLake(uri=str(lake_path))}
    return materialize_some(assets, resources=resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                            **({"partition_key": DAY} | kw))


def checks(result) -> dict[str, bool]:
    return {c.asset_check_key.name: c.passed for c in result.get_asset_check_evaluations()}


def requests_for(app, protocol: str) -> int:
    return app.stats.by_path.get(f"history/{protocol}/messages", 0)


@pytest.mark.parametrize("dialects", [frozenset(), frozenset({"errors_in_body"})], ids=["http_404", "404_in_body"])
def test_a_purged_conversation_is_a_recorded_gap_and_the_day_is_published(tmp_path, dialects):
    app = SandboxApp(make_world(), TOKEN, dialects=dialects, gaps={"purged": 0.05})
    world = app.views.world
    purged = sorted(p for p in protocols(world, DAY) if app.views.gap(p) == "purged")
    assert purged
    with SandboxServer(app) as server:
        first = run(server, tmp_path)
        asked_once = {p: requests_for(app, p) for p in purged}
        again = run(server, tmp_path)
    assert first.success and again.success
    assert checks(first) | {"message_gaps": True} == {n: True for n in checks(first)}
    assert checks(first)["message_gaps"] is False  # a warning, naming them
    assert set(asked_once.values()) == {1}  # a fact about the protocol: not retried as an outage
    assert all(requests_for(app, p) == 2 for p in purged)  # asked again by the next run of the day
    lake = Lake(str(tmp_path))
    stored = lake.read("messages", DAY).column("message_id").to_pylist()
    assert sorted(stored, key=str) == sorted(message_ids(world, DAY, dialects, app.views.gaps), key=str)
    recorded = gaps.recorded(lake, DAY)
    assert sorted(recorded) == purged and {g.kind for g in recorded.values()} == {"purged"}
    how = "status 404 in the body of an HTTP 200" if dialects else "HTTP 404"
    assert recorded[purged[0]].detail == f"the API answered {how}: Interaction {purged[0]} not found"
    metadata = materialized(first, "messages")[0].metadata
    assert metadata["gaps"].value == len(purged)
    assert len(lake.read("conversations", DAY)) == len(protocols(world, DAY))


def test_a_conversation_short_of_its_counter_is_asked_again_then_recorded(tmp_path):
    app = SandboxApp(make_world(), TOKEN, gaps={"short": 0.05})
    world = app.views.world
    expanded = {p for p in protocols(world, DAY) if app.views.gap(p) == "short"}
    with SandboxServer(app) as server:
        result = run(server, tmp_path)
    assert result.success and checks(result)["messages_complete"] and not checks(result)["message_gaps"]
    recorded = gaps.recorded(Lake(str(tmp_path)), DAY)
    assert recorded and set(recorded) <= expanded and {g.kind for g in recorded.values()} == {"short"}
    assert all(requests_for(app, p) == 2 for p in recorded)
    stored = Lake(str(tmp_path)).read("messages", DAY).column("message_id").to_pylist()
    assert sorted(stored, key=str) == sorted(message_ids(world, DAY, gaps=app.views.gaps), key=str)


def test_a_gap_that_comes_back_is_cleared(tmp_path):
    app = SandboxApp(make_world(), TOKEN, gaps={"purged": 0.05})
    with SandboxServer(app) as server:
        assert run(server, tmp_path).success and gaps.recorded(Lake(str(tmp_path)), DAY)
        app.views.gaps.clear()  # the vendor restored them
        result = run(server, tmp_path)
    assert result.success and checks(result)["message_gaps"]
    assert gaps.recorded(Lake(str(tmp_path)), DAY) == {}
    stored = Lake(str(tmp_path)).read("messages", DAY).column("message_id").to_pylist()
    assert sorted(stored, key=str) == sorted(message_ids(app.views.world, DAY), key=str)


def test_a_range_with_gaps_publishes_every_day_and_its_conversations(tmp_path):
    app = SandboxApp(make_world(scale=60), TOKEN, gaps={"purged": 0.05, "short": 0.05})
    days = ("2026-11-16", "2026-11-17", DAY)
    with SandboxServer(app) as server:
        result = run(server, tmp_path, partition_key=None,
                     tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]})
    assert result.success
    lake = Lake(str(tmp_path))
    for day in days:
        assert len(lake.read("conversations", day)) == len(protocols(app.views.world, day))


def test_records_without_an_id_never_reach_the_fetch_list(tmp_path, monkeypatch):
    """Kept in the histories and flagged there; with one worker, the fan-out still fetches every other."""
    app = SandboxApp(make_world(), TOKEN)
    anonymous = protocols(app.views.world, DAY)[3]
    record = app.views._record

    def without_id(ix, now, *, expanded):
        out = record(ix, now, expanded=expanded)
        return {k: v for k, v in out.items() if k != "id"} if str(ix.protocol) == anonymous else out

    monkeypatch.setattr(app.views, "_record", without_id)
    with SandboxServer(app) as server:
        result = run(server, tmp_path, assets=only("history_expanded", "messages", assets=FETCH),
                     api={"concurrency": 1})
    assert result.success
    assert checks(result)["protocol_id_unique"] is False and checks(result)["messages_complete"]
    lake = Lake(str(tmp_path))
    assert lake.read("history_expanded", DAY).column("protocol_id").null_count == 1
    fetched = set(lake.read("messages", DAY).column("protocol_id").to_pylist())
    assert fetched == {p for p in protocols(app.views.world, DAY) if p != anonymous and app.views.messages(p)}


def test_late_messages_with_the_same_end_time_are_fetched_again(tmp_path, monkeypatch):
    """The cache follows the conversation: its counter changed, so the cached copy is not reused."""
    app = SandboxApp(make_world(), TOKEN)
    world = app.views.world
    late = next(p for p in protocols(world, DAY) if world.interaction(int(p)).message_count)
    with SandboxServer(app) as server:
        assert run(server, tmp_path).success
        messages, record = app.views.messages, app.views._record
        extra = [dict(m, id=f"{m['id']}-late{n}") for n, m in enumerate(messages(late)[-1:] * 2)]
        monkeypatch.setattr(app.views, "messages", lambda p: messages(p) + (extra if p == late else []))
        monkeypatch.setattr(app.views, "_record", lambda ix, now, *, expanded: (
            lambda out: {**out, "messages": out["messages"] + 2} if expanded and str(ix.protocol) == late else out)(
            record(ix, now, expanded=expanded)))
        before = requests_for(app, late)
        result = run(server, tmp_path)
    assert result.success and checks(result)["messages_complete"]
    assert requests_for(app, late) == before + 1
    stored = Lake(str(tmp_path)).read("messages", DAY).column("message_id").to_pylist()
    assert {m["id"] for m in extra} <= set(stored)


def test_conversations_are_built_only_from_messages_fetched_for_the_same_history(tmp_path, monkeypatch):
    """The history changed (a counter grew) and messages were not fetched again, or were rejected: the step
    says which input is stale instead of joining old messages with the new history."""
    app = SandboxApp(make_world(), TOKEN)
    changed = protocols(app.views.world, DAY)[0]
    with SandboxServer(app) as server:
        assert run(server, tmp_path).success
        record = app.views._record
        monkeypatch.setattr(app.views, "_record", lambda ix, now, *, expanded: (
            lambda out: {**out, "messages": out["messages"] + 1} if expanded and str(ix.protocol) == changed else out)(
            record(ix, now, expanded=expanded)))
        assert run(server, tmp_path, assets=only("history_expanded", assets=FETCH)).success
        stale = run(server, tmp_path, assets=only("conversations", assets=FETCH))
        assert not stale.success
        failure = next(e for e in stale.all_events if e.is_step_failure).step_failure_data.error.to_string()
        assert f"conversations {DAY} was not built: messages {DAY} was fetched for another version of " \
               f"history_expanded {DAY}" in failure
        assert run(server, tmp_path, assets=only("messages", "conversations", assets=FETCH)).success


def test_a_failing_day_of_a_range_does_not_stop_the_others(tmp_path, monkeypatch):
    app = SandboxApp(make_world(scale=40), TOKEN)
    days = ("2026-11-16", "2026-11-17", DAY)
    history = app.views.history

    def down_on_the_middle_day(q, **kw):
        if q.get("from", "").startswith(days[1]):
            raise ApiProblem(503, "Service unavailable")
        return history(q, **kw)

    monkeypatch.setattr(app.views, "history", down_on_the_middle_day)
    with SandboxServer(app) as server:
        result = run(server, tmp_path, assets=only("history_expanded", assets=FETCH), partition_key=None,
                     api={"max_retries": 1}, tags={"dagster/asset_partition_range_start": days[0],
                                                   "dagster/asset_partition_range_end": days[-1]})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()
    assert f"{days[1]} failed: GET /api/ms/external/history/expanded?page=1 still failed after 2 attempts" in failure
    lake = Lake(str(tmp_path))
    assert [lake.exists("history_expanded", d) for d in days] == [True, False, True]
    recorded = {e.partition for e in result.get_asset_materialization_events()}
    assert recorded == {days[0], days[2]}


def test_a_record_hidden_by_a_deletion_while_paging_is_asked_again(tmp_path, monkeypatch):
    """Records deleted ahead of the walk shift the later pages back, hiding as many records: the expanded
    history then lacks protocols that history listed, and asks again for them before it is published."""
    app = SandboxApp(make_world(), TOKEN)
    history, walks = app.views.history, []

    def deleted_ahead(q, *, expanded, shift=0):
        if expanded and q.get("page") == "1":
            walks.append(q)
        hidden = -3 if expanded and len(walks) == 1 and q.get("page") == "2" else 0
        return history(q, expanded=expanded, shift=shift + hidden)

    monkeypatch.setattr(app.views, "history", deleted_ahead)
    with SandboxServer(app) as server:
        result = run(server, tmp_path, assets=only("history", "history_expanded", assets=daily_assets(account_defs())),
                     api={"page_size": 30})
    assert result.success and len(walks) == 2
    assert all(c.passed for c in result.get_asset_check_evaluations())
    lake = Lake(str(tmp_path))
    everything = sorted(protocols(app.views.world, DAY))
    assert sorted(lake.read("history_expanded", DAY).column("protocol_id").to_pylist()) == everything
    assert sorted(lake.read("history", DAY).column("protocol_id").to_pylist()) == everything


def test_a_user_lists_a_days_gaps(tmp_path, monkeypatch, capsys):
    from zchat_assets.cli import main

    app = SandboxApp(make_world(), TOKEN, gaps={"purged": 0.05})
    with SandboxServer(app) as server:
        assert run(server, tmp_path).success
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZCHAT_LAKE_URI", str(tmp_path))
    assert main(["gaps", "--day", DAY]) == 0
    lines = capsys.readouterr().out.splitlines()
    purged = sorted(p for p in protocols(app.views.world, DAY) if app.views.gap(p) == "purged")
    assert lines == [f"{DAY}  {p}  purged: the API answered HTTP 404: Interaction {p} not found" for p in purged]
    assert main(["gaps", "--day", "2026-11-17"]) == 0
    assert capsys.readouterr().out.startswith("No gaps recorded in file://")


def test_a_conversation_purged_after_it_was_fetched_keeps_its_messages_in_the_lake(tmp_path):
    """A later run (the look-back, a backfill) never removes what was published before the vendor purged it."""
    app = SandboxApp(make_world(), TOKEN)
    with SandboxServer(app) as server:
        assert run(server, tmp_path).success
        lake = Lake(str(tmp_path))
        before = sorted(lake.read("messages", DAY).column("message_id").to_pylist(), key=str)
        shutil.rmtree(tmp_path / "_cache")  # as after cache_retention_days: every conversation is asked again
        app.views.gaps["purged"] = 0.05
        result = run(server, tmp_path)
    assert result.success and gaps.recorded(lake, DAY)
    assert sorted(lake.read("messages", DAY).column("message_id").to_pylist(), key=str) == before


def test_every_conversation_answering_404_is_the_api_not_purges(tmp_path):
    app = SandboxApp(make_world(), TOKEN)
    with SandboxServer(app) as server:
        assert run(server, tmp_path).success
        before = (tmp_path / "messages" / f"date={DAY}" / "part-00000.parquet").read_bytes()
        shutil.rmtree(tmp_path / "_cache")
        app.views.gaps["purged"] = 1.0
        result = run(server, tmp_path)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()
    assert "conversations asked for answered 404, which looks like the API" in failure
    assert (tmp_path / "messages" / f"date={DAY}" / "part-00000.parquet").read_bytes() == before
