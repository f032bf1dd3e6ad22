"""One budget per token: each API step's part follows the steps running now, in the instance's own storage."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.instance.ref import InstanceRef

from zchat_assets.assets import budget
from zchat_assets.assets.budget import PREFIX, SENSOR_SHARE, Lease, Leases
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import DAY, START, TOKEN, eventually, fast_api, make_world, materialize_some, only
from .truth import message_ids

ROOT = Path(__file__).parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
STEP = 1 - SENSOR_SHARE  # a step's part when it runs alone


@pytest.fixture
def quick(monkeypatch):
    """Heartbeats and lease lifetimes short enough for a test."""
    monkeypatch.setattr(budget, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(budget, "LEASE_SECONDS", 0.5)


class Parts:
    """What a lease was told, in order."""

    def __init__(self):
        self.told: list[float] = []

    def __call__(self, part: float) -> None:
        self.told.append(round(part, 3))


def test_a_step_alone_holds_the_budget_and_two_share_it(quick):
    instance = dg.DagsterInstance.ephemeral()
    first, second = Parts(), Parts()
    with Lease(instance, "b1", first, {}):
        assert first.told == [STEP]
        with Lease(instance, "b1", second, {}) as lease:
            assert second.told == [STEP / 2] and lease.holders == 2
            eventually(lambda: first.told[-1] == STEP / 2)
        eventually(lambda: first.told[-1] == STEP)  # the other step ended: this one has it all again
    assert Leases(instance, "b1").alive() == set()


def test_another_token_is_another_budget(quick):
    instance = dg.DagsterInstance.ephemeral()
    mine, theirs = Parts(), Parts()
    with Lease(instance, "b1", mine, {}), Lease(instance, "b2", theirs, {}):
        time.sleep(4 * budget.HEARTBEAT_SECONDS)  # several refreshes, none of which sees the other token
    assert mine.told == [STEP] and theirs.told == [STEP]


def test_a_killed_steps_lease_stops_counting_and_is_deleted(quick):
    """A step killed with `kill -9` leaves its row, which no longer changes: it counts until it has been seen
    unchanged for LEASE_SECONDS, then for nobody, whatever the clock of the machine that wrote it said."""
    instance = dg.DagsterInstance.ephemeral()
    instance.run_storage.set_cursor_values({f"{PREFIX}b1/killed": json.dumps({"beat": 7})})
    parts = Parts()
    started = time.monotonic()
    with Lease(instance, "b1", parts, {}):
        assert parts.told == [STEP / 2]
        eventually(lambda: parts.told[-1] == STEP)
        assert time.monotonic() - started >= budget.LEASE_SECONDS
    assert instance.run_storage.get_cursor_values({f"{PREFIX}b1/killed"}) == {}


def test_a_newcomer_waits_a_heartbeat_so_that_the_others_slow_down_first(quick, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    with Lease(instance, "b1", Parts(), {}):
        started = time.monotonic()
        with Lease(instance, "b1", Parts(), {}):
            assert time.monotonic() - started >= 2 * budget.HEARTBEAT_SECONDS
    # Alone: no wait (with this heartbeat a wait would be 4 s, well apart from a slow SQLite write).
    monkeypatch.setattr(budget, "HEARTBEAT_SECONDS", 2.0)
    started = time.monotonic()
    with Lease(instance, "b1", Parts(), {}):
        assert time.monotonic() - started < budget.HEARTBEAT_SECONDS


def test_a_release_that_meets_a_locked_table_is_tried_again(quick, monkeypatch):
    """Another step's heartbeat can hold SQLite's table at the moment a step releases its lease: the lease
    would then count, for nobody, until it runs out, and the next step would wait for it."""
    instance = dg.DagsterInstance.ephemeral()
    remove, failures = Leases.remove, []

    def busy_once(self, keys):
        if not failures:
            failures.append(keys)
            raise sqlalchemy.exc.OperationalError("DELETE", {}, Exception("database table is locked"))
        remove(self, keys)

    monkeypatch.setattr(Leases, "remove", busy_once)
    with Lease(instance, "b1", Parts(), {}):
        pass
    assert failures and Leases(instance, "b1").alive() == set()


def messages_run(day: str, home: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([DAGSTER, "asset", "materialize", "-m", "zchat_assets.definitions", "--select",
                             "zchat/messages", "--partition", day], cwd=home, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_one_run_alone_gets_nearly_all_of_the_budget_and_two_share_it(tmp_path):
    """Runs in processes of their own on one instance (the project's dagster.yaml, SQLite): a run alone holds
    90% of rate_limit (the sensor's part aside); two at once hold 45% each, and the API never sees more than
    the budget in a second."""
    limit, days = 20, ("2026-11-16", "2026-11-17", DAY)  # one alone, then two at once, each a day to fetch
    world = make_world(scale=200)  # ten seconds of messages at the budget: long enough for the runs to meet
    app = SandboxApp(world, TOKEN)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home)
    with SandboxServer(app) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path / "lake"), host="127.0.0.1")}
        for day in days:
            assert materialize_some(only("history_expanded"), resources=resources, partition_key=day).success
        env = {"DAGSTER_HOME": str(home), "ZCHAT_API_TOKEN": TOKEN, "ZCHAT_BASE_URL": server.url,
               "ZCHAT_START_DATE": START, "ZCHAT_LAKE_URI": str(tmp_path / "lake"), "ZCHAT_RATE_LIMIT": str(limit)}
        alone = messages_run(days[0], home, env)
        assert alone.wait(timeout=300) == 0, alone.communicate()[1][-3000:]
        app.stats.max_per_second = 0
        together = [messages_run(day, home, env) for day in days[1:]]
        outputs = [r.communicate(timeout=300) for r in together]
        busiest = app.stats.max_per_second
    assert all(r.returncode == 0 for r in together), [o[1][-3000:] for o in outputs]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        records = instance.fetch_materializations(dg.AssetKey("messages").with_prefix("zchat"), limit=10).records
        held = [r.asset_materialization.metadata["api_rate_limit"].value for r in records]
    assert sorted(held) == [limit * STEP / 2] * 2 + [limit * STEP]  # the two together at their lowest, and alone
    assert busiest <= limit, busiest
    for day in days:
        assert sorted(Lake(str(tmp_path / "lake")).read("messages", day).column("message_id").to_pylist()) == \
            sorted(message_ids(world, day))


def test_the_leases_of_one_process_reach_the_instance_one_at_a_time():
    """The interactions step's datasets each hold a lease from threads of one process: SQLite refuses a table
    another connection of the process is writing ("database table is locked")."""
    from zchat_assets.assets.budget import Leases

    instance, errors = dg.DagsterInstance.ephemeral(), []

    def beat(n: int) -> None:
        leases = Leases(instance, "budget")
        for i in range(100):
            try:
                leases.renew(f"holder-{n}", {"beat": i})
                leases.alive()
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=beat, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
