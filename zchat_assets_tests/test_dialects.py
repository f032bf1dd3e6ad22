"""The pipeline against every reading of the vendor's document that the sandbox speaks: each day exact."""

import json
from datetime import datetime, timezone

import dagster as dg
import pytest

from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import DIALECTS, SandboxApp, SandboxServer
from zchat_assets.sandbox.views import Views

from .conftest import ALL, DAY, DEFS, TOKEN, fast_api, make_world
from .truth import assert_lake_matches, interactions

ONGOING_SENSOR = DEFS.get_repository_def().get_sensor_def("ongoing_sensor")
SPOKEN = [d for d in DIALECTS if d != "auth_in_body"] + ["all"]


def run(server, lake_uri, token=TOKEN) -> dg.ExecuteInProcessResult:
    resources = {"zchat_api": fast_api(server.url, token=token), "zchat_lake": ZchatLake(uri=lake_uri)}
    return dg.materialize(ALL, resources=resources, partition_key=DAY, instance=dg.DagsterInstance.ephemeral(),
                          raise_on_error=False)


@pytest.mark.parametrize("dialect", SPOKEN)
def test_every_dataset_is_exact_in_each_dialect(dialect, tmp_path):
    dialects = frozenset(DIALECTS) - {"auth_in_body"} if dialect == "all" else frozenset({dialect})
    world = make_world()
    with SandboxServer(SandboxApp(world, TOKEN, dialects=dialects)) as server:
        first, again = run(server, str(tmp_path)), run(server, str(tmp_path))
    assert first.success and again.success, [e.message for e in first.all_events if e.is_failure]
    lake = Lake(str(tmp_path))
    assert_lake_matches(lake, world, DAY, dialects)
    expanded = lake.read("history_expanded", DAY)
    truth = {str(ix.protocol): ix for ix in interactions(world, DAY)}
    rows = expanded.to_pylist()
    # Nested or flat, naive or not: the same names and instants land in the same columns.
    assert all(r["created_at"] == datetime.fromtimestamp(truth[r["protocol_id"]].created, timezone.utc) for r in rows)
    assert all(r["agent_name"] == (truth[r["protocol_id"]].agent.name if truth[r["protocol_id"]].agent else None)
               for r in rows if r["current_state"] != "NOT_ANSWER")
    assert all(r["customer_main_identifier"] == truth[r["protocol_id"]].customer_fields["main_identifier"] for r in rows)
    assert all(r["extra_json"] is None for r in rows)
    # Finished conversations were all taken from the message cache the second time.
    cached = next(e for e in again.get_asset_materialization_events() if e.asset_key.path[-1] == "messages")
    finished = sum(1 for r in rows if r["end_time"] is not None)
    assert cached.materialization.metadata["protocols_from_cache"].value == finished


def test_fractional_averages_are_kept_exactly(tmp_path):
    world = make_world()
    with SandboxServer(SandboxApp(world, TOKEN, dialects=frozenset({"fractional_averages"}))) as server:
        assert run(server, str(tmp_path)).success
    total = [r for r in Lake(str(tmp_path)).read("report_by_period", DAY).to_pylist() if r["is_total"]][0]
    sent = Views(world, frozenset({"fractional_averages"})).report(
        {"data_type": "period", "from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59", "timezone": "-0300"})[-1]
    assert total["tma"] == sent["tma"] and sent["tma"] != round(sent["tma"])


def test_the_queue_is_counted_however_the_api_spells_it(tmp_path):
    world = make_world(scale=400)
    counts = {}
    for dialects in (frozenset(), frozenset({"not_answer"})):
        with SandboxServer(SandboxApp(world, TOKEN, dialects=dialects)) as server:
            context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), definitions=DEFS, resources={
                "zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path / str(len(counts))))})
            (event,) = ONGOING_SENSOR.evaluate_tick(context).asset_events
        counts[dialects] = event.metadata["state_not_answered"].value
    assert counts[frozenset({"not_answer"})] == counts[frozenset()] > 0


def test_an_auth_error_in_a_200_body_fails_each_dataset_in_one_request(tmp_path):
    app = SandboxApp(make_world(), TOKEN, dialects=frozenset({"auth_in_body"}))
    with SandboxServer(app) as server:
        result = run(server, str(tmp_path), token="revoked")
        requests = dict(app.stats.by_endpoint)
    failures = [e for e in result.all_events if e.is_step_failure]
    assert not result.success and failures
    assert all("check ZCHAT_API_TOKEN" in e.step_failure_data.error.to_string() for e in failures)
    # One request per dataset, no retries; the messages wait for the expanded history and ask for nothing.
    assert requests == {"reports": 5, "history": 1, "history/expanded": 1}


@pytest.mark.parametrize("dialect", ["lower_content", "escaped_json"])
def test_the_other_message_shape_lands_in_the_same_columns(dialect, tmp_path):
    """Lower-case author types and `content`/`content_type`, or JSON with escapes: the same text, kinds,
    authors and per-author counts as the default shape, and the customer's name hashed under `hash` all
    the same, in the columns and in raw_json (read as JSON: an escaped name is the same name)."""
    tables = {}
    for name, dialects in {"plain": frozenset(), "other": frozenset({dialect})}.items():
        world = make_world()
        with SandboxServer(SandboxApp(world, TOKEN, dialects=dialects)) as server:
            resources = {"zchat_api": fast_api(server.url),
                         "zchat_lake": ZchatLake(uri=str(tmp_path / name), personal_data="hash",
                                                 personal_data_key="a-secret-of-16-chars+")}
            assert dg.materialize(ALL, resources=resources, partition_key=DAY,
                                  instance=dg.DagsterInstance.ephemeral()).success
        lake = Lake(str(tmp_path / name))
        tables[name] = (lake.read("messages", DAY).sort_by("message_id"), lake.read("conversations", DAY))
    (plain, plain_conversations), (other, other_conversations) = tables["plain"], tables["other"]
    for column in ("message_id", "author_type", "author_name", "author_id", "type", "text"):
        assert other.column(column).to_pylist() == plain.column(column).to_pylist(), column
    assert set(other.column("author_type").to_pylist()) <= {"CUSTOMER", "AGENT", "BOT", "SYSTEM"}
    assert other.column("text").null_count < len(other) and other.column("type").null_count == 0
    for column in ("customer_message_count", "agent_message_count", "bot_message_count", "system_message_count"):
        assert other_conversations.column(column).to_pylist() == plain_conversations.column(column).to_pylist()
    assert sum(other_conversations.column("customer_message_count").to_pylist()) > 0
    day = interactions(make_world(), DAY)
    names = {ix.customer_fields["main_identifier"] for ix in day} - {ix.agent.name for ix in day if ix.agent}
    assert not names & set(other.column("author_name").to_pylist())
    raws = [json.dumps(json.loads(raw), ensure_ascii=False) for raw in other.column("raw_json").to_pylist()]
    assert not any(name in raw for raw in raws for name in names)
