"""The ongoing sensor evaluated tick by tick against the sandbox, its clock moved between ticks."""

import json
import time
from datetime import datetime, timezone

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets.api.errors import missing_token
from zchat_assets.assets.sensors import ended_days, load_cursor
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World

from .conftest import DEFS, NOW, TOKEN, fast_api

ONGOING_SENSOR = DEFS.get_repository_def().get_sensor_def("ongoing_sensor")


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def tick(instance, resources, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=DEFS)
    return ONGOING_SENSOR.evaluate_tick(context)


def test_ticks_snapshot_the_queue_and_refresh_days_whose_interactions_ended(tmp_path):
    clock = Clock(NOW)
    world = World(seed=5, scale=400, now=clock)
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
        first = tick(instance, resources)
        assert first.run_requests == [] and first.cursor
        (event,) = first.asset_events
        assert event.metadata["ongoing_total"].value == len(world.ongoing()) > 0
        assert "oldest_queue_wait_seconds" in event.metadata and "state_not_answered" in event.metadata

        clock.now += 6 * 3600  # most of the ongoing interactions end
        second = tick(instance, resources, first.cursor)
        days = {r.partition_key for r in second.run_requests}
        assert days and all(d < "2026-11-21" for d in days)
        assert all(r.run_key.startswith("refresh-") for r in second.run_requests)
        assert len(second.cursor) < 500

        clock.now += 60  # within the debounce window: no new runs for the same days
        third = tick(instance, resources, second.cursor)
        assert not {r.partition_key for r in third.run_requests} & days

    snapshots = sorted((tmp_path / "ongoing").rglob("*.parquet"))
    assert len(snapshots) == 3


def test_an_api_failure_skips_the_tick_and_keeps_the_cursor(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    cursor = json.dumps({"last": None, "pending": {"2026-11-19": NOW}, "requested": {}})
    resources = {"zchat_api": fast_api("http://127.0.0.1:9", max_retries=0, connect_timeout=0.3),
                 "zchat_lake": ZchatLake(uri=str(tmp_path))}
    result = tick(instance, resources, cursor)
    assert result.skip_message and "cursor kept" in result.skip_message
    assert TOKEN not in result.skip_message
    assert result.cursor in (None, cursor)


def test_a_revoked_token_skips_with_a_sentence_naming_the_variable(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(SandboxApp(World(scale=10), "another-token")) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
        result = tick(instance, resources)
    assert "ZCHAT_API_TOKEN" in result.skip_message


def test_a_missing_token_skips_with_a_sentence_saying_where_tokens_are_made(tmp_path):
    resources = {"zchat_api": fast_api("http://127.0.0.1:9", token=None), "zchat_lake": ZchatLake(uri=str(tmp_path))}
    result = tick(dg.DagsterInstance.ephemeral(), resources)
    assert missing_token("ZCHAT_API_TOKEN") in result.skip_message


@pytest.mark.slow
def test_thousands_ongoing_then_an_outage_then_a_good_tick_that_carries_on(tmp_path):
    clock = Clock(NOW)
    world = World(seed=5, scale=50_000, now=clock)
    ongoing = len(world.ongoing())  # also generates the days before the sandbox has to answer
    app = SandboxApp(world, TOKEN)
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(app) as server:
        resources = {"zchat_api": fast_api(server.url, page_size=500, max_retries=1),
                     "zchat_lake": ZchatLake(uri=str(tmp_path))}
        started = time.monotonic()
        first = tick(instance, resources)
        took = time.monotonic() - started
        (event,) = first.asset_events
        assert event.metadata["ongoing_total"].value == ongoing >= 2000
        assert took < 30 and len(first.cursor) < 2000  # well inside a sensor's time limit, a small cursor

        clock.now += 6 * 3600
        app.faults["503"] = 1.0
        down = tick(instance, resources, first.cursor)
        assert "cursor kept" in down.skip_message and down.cursor in (None, first.cursor)

        app.faults.clear()
        back = tick(instance, resources, first.cursor)
    assert back.run_requests and back.cursor != first.cursor  # what ended during the outage is refreshed


@pytest.mark.parametrize("previous,current,days", [
    ({}, set(), set()),
    ({"1": datetime(2026, 11, 18, 12, tzinfo=timezone.utc)}, {"1"}, set()),  # still ongoing
    ({"1": datetime(2026, 11, 18, 12, tzinfo=timezone.utc)}, set(), {"2026-11-18"}),
    ({"1": datetime(2026, 11, 19, 2, tzinfo=timezone.utc),  # 23:00 the day before, in São Paulo
      "2": datetime(2026, 11, 19, 4, tzinfo=timezone.utc)}, {"3"}, {"2026-11-18", "2026-11-19"}),
])
def test_the_days_to_refresh_are_those_of_interactions_that_left_the_queue(previous, current, days):
    assert ended_days(previous, current, "America/Sao_Paulo") == days


@pytest.mark.parametrize("raw,cursor", [
    (None, {"last": None, "pending": {}, "requested": {}, "expired_at": 0}),
    ('{"last": "ongoing/x.parquet"}', {"last": "ongoing/x.parquet", "pending": {}, "requested": {}, "expired_at": 0}),
])
def test_cursor(raw, cursor):
    assert load_cursor(raw) == cursor


@pytest.mark.parametrize("damage", ["deleted", "garbled"])
def test_a_lost_previous_snapshot_counts_as_none_and_the_sensor_carries_on(tmp_path, damage):
    world = World(seed=5, scale=200, now=lambda: NOW)
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
        first = tick(instance, resources)
        snapshot = tmp_path / json.loads(first.cursor)["last"]
        if damage == "deleted":
            snapshot.unlink()  # a retention job, or a lake moved elsewhere
        else:
            snapshot.write_bytes(b"not parquet")
        second = tick(instance, resources, first.cursor)
        third = tick(instance, resources, second.cursor)
    for result in (second, third):  # polled and recorded (Dagster calls a tick with no run "skipped", but not ours)
        assert "cursor kept" not in (result.skip_message or "") and result.asset_events
    assert json.loads(third.cursor)["last"] != json.loads(first.cursor)["last"]


def test_old_snapshot_days_expire(tmp_path):
    lake = ZchatLake(uri=str(tmp_path)).open()
    lake.add_file("ongoing", "2020-01-01", "poll-old.parquet", pa.table({"x": [1]}))
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(SandboxApp(World(seed=5, scale=20, now=lambda: NOW), TOKEN)) as server:
        result = tick(instance, {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))})
    assert not lake.exists("ongoing", "2020-01-01") and result.asset_events
