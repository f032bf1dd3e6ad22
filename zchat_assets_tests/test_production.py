"""The standard deployment, with real servers: an S3 lake (SeaweedFS), a Postgres instance through
deploy/dagster.yaml, several runs at once under one account budget, writers racing on one day."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from zchat_assets.lake import PART, Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import ALL, DAILY, DAY, TOKEN, fast_api, make_world, materialize_some, only
from .truth import assert_lake_matches, message_ids, protocols, searchable

ROOT = Path(__file__).parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
DAYS = ("2026-11-16", "2026-11-17", DAY)


def test_two_writers_of_one_day_on_s3_never_double_nest_or_mix(s3_lake):
    """Two writers replace the same day over and over while a reader polls it: every read is one whole
    version, and the day ends as exactly one writer's last version."""
    versions = {"a": 1_000, "b": 2_500}  # each writer's rows, all tagged with its name
    stop, first_read = threading.Event(), threading.Event()
    seen, reads, problems = set(), [0, 0], []  # reads: whole, and failed because the file was replaced

    def write(name: str) -> None:
        lake = Lake(s3_lake)
        first_read.wait(timeout=30)
        for _ in range(10):
            lake.write_partition("history", DAY, pa.table({"writer": [name] * versions[name]}))
            time.sleep(0.1)

    def read() -> None:
        lake = Lake(s3_lake)
        while not stop.is_set():
            try:
                keys = lake.fs.find(lake.folder("history"))
                table = ds.dataset(lake.folder("history"), filesystem=lake.fs, format="parquet",
                                   partitioning="hive").to_table()
            except (OSError, pa.ArrowInvalid):  # the file it was reading was replaced meanwhile: read again
                reads[1] += 1
                continue
            reads[0] += 1
            names = set(table.column("writer").to_pylist()) if table.num_rows else set()
            if keys != [f"{lake.folder('history', DAY)}/{PART}"] or len(names) != 1 or \
                    table.num_rows != versions[names.pop()]:
                problems.append((keys, table.num_rows))
            seen.add(table.num_rows)
            first_read.set()

    Lake(s3_lake).write_partition("history", DAY, pa.table({"writer": ["a"] * versions["a"]}))
    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(name,)) for name in versions]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    final = Lake(s3_lake).read("history", DAY)
    assert problems == [], reads
    assert final.num_rows in versions.values() and len(set(final.column("writer").to_pylist())) == 1
    assert seen == set(versions.values()), reads  # the reader did see both versions come and go
    assert [p for p in Lake(s3_lake).fs.find(f"{Lake(s3_lake).root}/_staging") if p.endswith(".parquet")] == []


def test_the_pipeline_on_an_s3_lake_matches_the_sandbox_and_rewrites_from_the_cache(sandbox, s3_lake, tmp_path,
                                                                                  reliability_figures):
    seconds = {}
    for where, uri in (("local", str(tmp_path)), ("S3", s3_lake)):
        resources = {"zchat_api": fast_api(sandbox.url), "zchat_lake": ZchatLake(uri=uri)}
        for attempt in ("first", "again"):
            started = time.monotonic()
            result = materialize_some(ALL, resources=resources, partition_key=DAY,
                                      instance=dg.DagsterInstance.ephemeral())
            seconds[where, attempt] = time.monotonic() - started
            assert result.success
    messages = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "messages")
    assert messages.materialization.metadata["protocols_from_cache"].value > 0
    lake = Lake(s3_lake)
    assert_lake_matches(lake, sandbox.app.views.world, DAY)
    published = [p for p in lake.fs.find(lake.root) if p.endswith(".parquet") and "/_cache/" not in p]
    assert published and all(p.endswith(PART) and "/_staging/" not in p for p in published)
    reliability_figures.notes.append(
        "lake: every daily asset for one day of 120 interactions, local {local_first:.1f}s (again {local_again:.1f}s), "
        "S3 {s3_first:.1f}s (again {s3_again:.1f}s)".format(
            local_first=seconds["local", "first"], local_again=seconds["local", "again"],
            s3_first=seconds["S3", "first"], s3_again=seconds["S3", "again"]))


def deployment_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home)
    return home


def run(command: list[str], home: Path, env: dict, **popen) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=home, env={**os.environ, "DAGSTER_HOME": str(home), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def materialize_command(select, *partition: str) -> list[str]:
    keys = ",".join(k.to_user_string() for k in getattr(select, "selection", [k for a in select for k in a.keys]))
    return [DAGSTER, "asset", "materialize", "-m", "zchat_assets.definitions", "--select", keys, *partition]


@pytest.mark.slow
def test_a_backfill_through_the_production_instance_on_postgres_and_s3(s3_server, s3_lake, postgres, tmp_path,
                                                                       reliability_figures):
    database = f"dagster_{os.getpid()}"
    logs_bucket = s3_server.bucket("compute-logs")
    world = make_world(scale=60)
    home = deployment_home(tmp_path)
    with SandboxServer(SandboxApp(world, TOKEN, retry_after=0.05)) as server:
        env = {**s3_server.env, "DAGSTER_PG_URL": postgres.create_database(database),
               "DAGSTER_COMPUTE_LOGS_BUCKET": logs_bucket.removeprefix("s3://"), "ZCHAT_API_TOKEN": TOKEN,
               "ZCHAT_BASE_URL": server.url, "ZCHAT_START_DATE": "2026-10-01"}
        unset = run(materialize_command(only("history"), "--partition", DAY), home, env).communicate(timeout=300)
        backfill = run(materialize_command(DAILY, "--partition-range", f"{DAYS[0]}...{DAYS[-1]}"), home,
                       {**env, "ZCHAT_LAKE_URI": s3_lake})
        out, err = backfill.communicate(timeout=900)
    assert backfill.returncode == 0, err[-3000:]
    assert "ZCHAT_LAKE_URI is not set: in a deployment runs would write to ./data" in unset[1]
    lake = Lake(s3_lake)
    for day in DAYS:
        assert_lake_matches(lake, world, day)
    instance_runs = postgres.dump(database)
    assert "PIPELINE_SUCCESS" in instance_runs  # the runs were recorded in Postgres (under its old event name)
    fs = s3_server.filesystem()
    logs = fs.find(logs_bucket.removeprefix("s3://"))
    assert logs, "the compute logs should be on the object store"
    stored = [searchable(fs.cat_file(path), path) for path in [*logs, *fs.find(s3_lake.removeprefix("s3://"))]]
    hits = instance_runs.count(TOKEN) + sum(blob.count(TOKEN.encode()) for blob in stored) + out.count(TOKEN) \
        + err.count(TOKEN)
    reliability_figures.notes.append(
        f"production: {len(DAYS)}-day backfill of every daily asset through deploy/dagster.yaml (Postgres, S3 lake, "
        f"S3 compute logs, {len(logs)} log objects): {sum(len(message_ids(world, d)) for d in DAYS):,} messages "
        f"exact, {hits} token hits in the Postgres dump, the buckets and the output")
    assert hits == 0
    assert [p.name for p in home.rglob("*") if p.is_file()] == ["dagster.yaml"]  # nothing kept on local disk


@pytest.mark.slow
def test_two_runs_at_once_stay_within_the_accounts_rate_limit(s3_server, s3_lake, postgres, tmp_path,
                                                              reliability_figures):
    """Two runs of the same account, in two processes, both fetching messages: the busiest second the API
    sees stays within ZCHAT_RATE_LIMIT, since each API step holds its part of it."""
    limit = 20
    world = make_world(scale=150)
    home = deployment_home(tmp_path)
    app = SandboxApp(world, TOKEN, latency=0.01)
    with SandboxServer(app) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=s3_lake, host="127.0.0.1")}
        for day in DAYS[:2]:
            assert materialize_some(only("history_expanded"), resources=resources, partition_key=day).success
        app.stats.max_per_second = 0
        env = {**s3_server.env, "DAGSTER_PG_URL": postgres.create_database(f"budget_{os.getpid()}"),
               "DAGSTER_COMPUTE_LOGS_BUCKET": "lake", "ZCHAT_API_TOKEN": TOKEN, "ZCHAT_BASE_URL": server.url,
               "ZCHAT_START_DATE": "2026-10-01", "ZCHAT_LAKE_URI": s3_lake, "ZCHAT_RATE_LIMIT": str(limit)}
        # The pool's limit is set once, as the deployment guide says: two runs that both meet a pool never
        # seen before can fail on Postgres while Dagster initializes its default limit (dagster#33552).
        assert run([DAGSTER, "instance", "concurrency", "set", "zchat_api", "2"], home, env).wait(timeout=120) == 0
        started = time.monotonic()
        runs = [run(materialize_command(only("messages"), "--partition", day), home, env) for day in DAYS[:2]]
        outputs = [r.communicate(timeout=600) for r in runs]
        took = time.monotonic() - started
        busiest = app.stats.max_per_second
    assert all(r.returncode == 0 for r in runs), [o[1][-6000:] for o in outputs]
    requests = sum(len(protocols(world, day)) for day in DAYS[:2])
    assert busiest <= limit, busiest
    reliability_figures.notes.append(f"budget: two runs at once under ZCHAT_RATE_LIMIT={limit}: busiest second "
                                     f"{busiest} requests, {requests} requests in {took:.1f}s")
    assert took >= requests / limit  # and the budget was used, not merely undershot by slow runs
    for day in DAYS[:2]:
        assert sorted(Lake(s3_lake).read("messages", day).column("message_id").to_pylist()) == \
            sorted(message_ids(world, day))
