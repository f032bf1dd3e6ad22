"""Assets materialized through Dagster against the sandbox, compared with the sandbox's own truth."""

import json
import os
import shutil

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets.assets import build_account_defs
from zchat_assets.assets.conversations import figures, join
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, parse_faults
from zchat_assets.settings import named

from .conftest import ALL, DAILY, DAY, TOKEN, daily_assets, fast_api, make_world, materialize_some, only
from .truth import assert_lake_matches, message_ids

RANGE = {"dagster/asset_partition_range_start": "2026-11-16", "dagster/asset_partition_range_end": DAY}


def materialize(resources, instance=None, **kw) -> dg.ExecuteInProcessResult:
    return materialize_some(ALL, resources=resources, instance=instance or dg.DagsterInstance.ephemeral(),
                            raise_on_error=False, **kw)


def failed_checks(result) -> list[str]:
    return [c.asset_check_key.to_user_string() for c in result.get_asset_check_evaluations() if not c.passed]


def test_one_day_matches_the_sandbox_exactly(sandbox, resources):
    result = materialize(resources, partition_key=DAY)
    assert result.success and not failed_checks(result)
    assert len(result.get_asset_check_evaluations()) == 24
    assert_lake_matches(resources["zchat_lake"].open(), sandbox.app.views.world, DAY)


def test_every_fault_at_a_few_percent_changes_nothing(tmp_path):
    faults = parse_faults("all=0.02,drift=0.3")
    world = make_world(scale=150)
    app = SandboxApp(world, TOKEN, faults=faults, retry_after=0.02, slow_seconds=0.6, max_in_flight=6)
    with SandboxServer(app) as server:
        resources = {"zchat_api": fast_api(server.url, read_timeout=0.4, page_size=40, max_retries=8),
                     "zchat_lake": ZchatLake(uri=str(tmp_path))}
        result = materialize(resources, partition_key=DAY)
        injected = sum(app.stats.faults.values())
    assert result.success and not failed_checks(result)
    assert injected >= 5
    assert_lake_matches(resources["zchat_lake"].open(), world, DAY)


def test_a_range_runs_once_and_records_each_day_with_its_own_figures(sandbox, resources):
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(resources, instance, tags=RANGE)
    assert result.success and not failed_checks(result)
    rows = {}
    for day in ("2026-11-16", "2026-11-17", DAY):
        event = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["zchat", "history"]), asset_partitions=[day]), limit=1
        ).records[0].asset_materialization
        rows[day] = event.metadata["dagster/row_count"].value
        assert event.metadata["dagster/uri"].value.endswith(f"history/date={day}")
    assert rows == {d: 120 for d in rows}
    period = instance.get_latest_materialization_event(dg.AssetKey(["zchat", "report_by_period"]))
    assert period.asset_materialization.metadata["total_received"].value > 0


def test_rematerializing_replaces_the_day_without_duplicates(sandbox, resources):
    for _ in range(2):
        assert materialize(resources, partition_key=DAY).success
    lake = resources["zchat_lake"].open()
    assert lake.describe("messages", DAY).files == 1
    assert_lake_matches(lake, sandbox.app.views.world, DAY)


def test_persistent_failure_fails_the_day_and_keeps_the_previous_data(sandbox, resources):
    assert materialize(resources, partition_key=DAY).success
    lake = resources["zchat_lake"].open()
    before = lake.read("history_expanded", DAY)
    sandbox.app.faults = {"503": 1.0}
    result = materialize(resources, partition_key=DAY)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    shown = failure.step_failure_data.error.to_string()
    assert "still failed after" in shown and TOKEN not in shown
    assert lake.read("history_expanded", DAY).equals(before)


def test_materialization_metadata_is_complete(sandbox, resources):
    result = materialize(resources, partition_key=DAY)
    events = {e.asset_key.path[-1]: e for e in result.get_asset_materialization_events()}
    for name, event in events.items():
        metadata = event.materialization.metadata
        assert {"dagster/row_count", "dagster/column_schema", "dagster/uri", "preview"} <= set(metadata), name
        if name != "conversations":
            assert metadata["api_requests"].value >= 1, name
    assert events["messages"].materialization.metadata["api_requests"].value == 120


def test_conversation_figures():
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 18, 12, tzinfo=timezone.utc)
    items = [{"author_type": a, "created_at": t0 + timedelta(seconds=s)} for a, s in
             [("AGENT", 0), ("CUSTOMER", 10), ("BOT", 11), ("AGENT", 70), ("CUSTOMER", 100)]]
    got = figures(items)
    assert got["first_agent_reply_seconds"] == 60 and got["conversation_seconds"] == 100
    assert (got["customer_message_count"], got["agent_message_count"], got["bot_message_count"]) == (2, 2, 1)
    assert figures([])["message_count"] == 0 and figures([])["first_agent_reply_seconds"] is None
    # An agent started it: the agent's next message is no response time to the customer.
    assert figures(items, started_by_agent=True)["first_agent_reply_seconds"] is None


def test_conversations_join_in_batches_gives_each_protocol_its_own_messages():
    """Batch edges fall anywhere: inside the day's order, on a protocol with no message, on one not fetched."""
    from datetime import datetime, timedelta, timezone

    from zchat_assets.schemas import dataset_schema

    t0 = datetime(2026, 11, 18, 12, tzinfo=timezone.utc)
    expanded = pa.Table.from_pylist([{"protocol_id": p, "active": p == "b"} for p in ["c", "a", "e", "b", "d"]],
                                    dataset_schema("history_expanded"))
    said = [("a", "m2", 20, "AGENT"), ("b", "m3", 5, "AGENT"), ("a", "m1", 10, "CUSTOMER"), ("c", "m4", 1, "BOT"),
            ("b", "m5", 6, "CUSTOMER"), ("x", "m6", 0, "CUSTOMER")]  # x: not in the history; d, e: no messages
    messages = pa.Table.from_pylist([{"protocol_id": p, "message_id": m, "created_at": t0 + timedelta(seconds=s),
                                      "author_type": a} for p, m, s, a in said], dataset_schema("messages"))
    whole = join(expanded, messages)
    for batch in (1, 2, 3):
        assert join(expanded, messages, batch).equals(whole)
    lists = {r["protocol_id"]: [m["message_id"] for m in r["message_list"]] for r in whole.to_pylist()}
    assert lists == {"c": ["m4"], "a": ["m1", "m2"], "e": [], "b": ["m3", "m5"], "d": []}
    assert whole.column("protocol_id").to_pylist() == ["c", "a", "e", "b", "d"]
    assert whole.column("first_agent_reply_seconds").to_pylist() == [None, 10, None, None, None]
    assert join(expanded.slice(0, 0), messages).num_rows == 0 and join(expanded, messages.slice(0, 0)).num_rows == 5


def test_first_agent_replies_are_null_for_conversations_agents_started(sandbox, resources):
    assert materialize(resources, partition_key=DAY).success
    rows = resources["zchat_lake"].open().read("conversations", DAY).to_pylist()
    started_by_agents = [r for r in rows if r["active"]]
    assert started_by_agents and all(r["first_agent_reply_seconds"] is None for r in started_by_agents)
    assert any(r["first_agent_reply_seconds"] is not None for r in rows if not r["active"])


@pytest.mark.parametrize("name", ["report_by_period", "history", "messages", "conversations"])
def test_assets_have_keys_groups_and_descriptions(name):
    spec = next(s for a in DAILY for s in a.specs if s.key.path[-1] == name)
    assert spec.key.path[0] == "zchat" and spec.description and spec.group_name in ("reports", "history")


def test_an_unwritable_lake_fails_in_one_sentence_before_any_request(sandbox, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    resources = {"zchat_api": fast_api(sandbox.url), "zchat_lake": ZchatLake(uri=str(blocker / "lake"))}
    result = materialize(resources, partition_key=DAY)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "Cannot write to the lake" in failure.step_failure_data.error.to_string()
    assert sandbox.app.stats.requests == 0


def test_a_named_accounts_unwritable_lake_names_its_attribute_and_file(sandbox, tmp_path, monkeypatch):
    """Not ZCHAT_LAKE_URI, which a named account does not read."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("ACME_ZCHAT_TOKEN", TOKEN)
    where = "zchat_assets/defs/accounts/acme/defs.yaml"
    defs = build_account_defs(named({"name": "acme", "token_env": "ACME_ZCHAT_TOKEN", "base_url": sandbox.url,
                                     "lake_uri": str(blocker / "lake"), "start_date": "2026-10-01"}, where), os.environ)
    result = materialize_some(only("history", assets=daily_assets(defs)), resources=defs.resources, partition_key=DAY,
                              instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()
    assert f"check lake_uri in {where} and its permissions." in failure and "ZCHAT_LAKE_URI" not in failure
    assert sandbox.app.stats.requests == 0


def test_a_day_failing_a_blocking_check_is_not_published_and_is_quarantined(sandbox, resources, tmp_path):
    """Write, audit, publish: a message sent twice keeps the day out of the lake; the previous version
    stays byte for byte, the rejected data waits in quarantine until a good run."""
    assert materialize(resources, partition_key=DAY).success
    lake = resources["zchat_lake"].open()
    published = tmp_path / "lake" / "messages" / f"date={DAY}" / "part-00000.parquet"
    before = published.read_bytes()
    views = sandbox.app.views
    honest = views.messages
    views.messages = lambda protocol: honest(protocol) + honest(protocol)[-1:]  # the last message sent twice
    shutil.rmtree(tmp_path / "lake" / "_cache")  # so that every conversation is fetched again
    fetch = only("history_expanded", "messages")
    rejected = materialize_some(fetch, resources=resources, partition_key=DAY, raise_on_error=False,
                                instance=dg.DagsterInstance.ephemeral())
    assert not rejected.success and published.read_bytes() == before
    failure = next(e for e in rejected.all_events if e.is_step_failure).step_failure_data.error
    assert f"messages {DAY} was not published: message_id_unique failed" in failure.message
    quarantine = tmp_path / "lake" / "_quarantine" / "messages" / f"date={DAY}"
    findings = json.loads((quarantine / "findings.json").read_text())
    assert findings["checks"]["message_id_unique"]["passed"] is False and (quarantine / "part-00000.parquet").exists()
    check = next(c for c in rejected.get_asset_check_evaluations() if c.check_name == "message_id_unique")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR

    views.messages = honest
    assert materialize_some(fetch, resources=resources, partition_key=DAY).success
    assert not any(quarantine.iterdir())
    assert_lake_matches(lake, sandbox.app.views.world, DAY)


def test_a_warning_check_still_publishes(sandbox, resources):
    """Rows without an id are kept and flagged (a warning), not a reason to withhold the day."""
    honest = sandbox.app.views.messages
    sandbox.app.views.messages = lambda p: [{k: v for k, v in m.items() if k != "id"} if m["author"]["type"] == "SYSTEM"
                                            else m for m in honest(p)]
    fetch = only("history_expanded", "messages")
    result = materialize_some(fetch, resources=resources, partition_key=DAY, instance=dg.DagsterInstance.ephemeral())
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "message_id_unique")
    assert result.success and not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    stored = resources["zchat_lake"].open().read("messages", DAY).column("message_id")
    assert stored.null_count > 0 and len(stored) == len(message_ids(sandbox.app.views.world, DAY))
