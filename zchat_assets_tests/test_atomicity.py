"""SIGKILL in the middle of writing a partition: readers see the previous complete day, never half of
one, never leftovers; writing the day again never duplicates a row."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.dataset as ds
import pytest

from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import DAY, TOKEN, fast_api, make_world, materialize_some, only

pytestmark = pytest.mark.slow

# A run of `messages` alone that writes its day in many small batches, so that it can be caught mid-write.
WRITER = """
import os, sys
import dagster as dg
from zchat_assets.assets import build_account_defs
from zchat_assets.settings import AccountSettings
url, lake, day = sys.argv[1:4]
defs = build_account_defs(AccountSettings(base_url=url, lake_uri=lake, concurrency=2, flush_messages=30,
                                          start_date="2026-10-01"), os.environ)
(step,) = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and len(a.keys) > 1]
dg.materialize([step], selection=[k for k in step.keys if k.path[-1] == "messages"], partition_key=day,
               resources=defs.resources)
"""


def readers_see(lake_path) -> dict:
    """What a Hive-aware reader finds in the messages dataset: pyarrow datasets, pandas, and a glob
    of the day's folder as DuckDB's read_parquet('messages/*/*.parquet') would take it."""
    folder = lake_path / "messages"
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    return {"ids": sorted(table.column("message_id").to_pylist()),
            "pandas_rows": len(pd.read_parquet(folder)),
            "files": sorted(p.name for p in folder.glob("*/*"))}


def write_in_child(url, lake_path, stage_of_kill) -> None:
    child = subprocess.Popen([sys.executable, "-c", WRITER, url, str(lake_path), DAY],
                             env={**os.environ, "ZCHAT_API_TOKEN": TOKEN}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not stage_of_kill(lake_path):
        assert child.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def staging_has_parts(lake_path) -> bool:
    return any((lake_path / "_staging" / "messages").glob("date=*.parquet"))


def staging_has_many_rows(lake_path) -> bool:
    return staging_has_parts(lake_path) and len(list((lake_path / "_cache" / "messages").glob("*/*.parquet"))) >= 3


@pytest.mark.parametrize("stage_of_kill", [staging_has_parts, staging_has_many_rows])
def test_sigkill_mid_write_leaves_the_previous_complete_day(tmp_path, stage_of_kill):
    app = SandboxApp(make_world(), TOKEN, latency=0.01)
    with SandboxServer(app) as server:
        # The same origin as the child's account (the sandbox's host), which the lake would otherwise refuse.
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path), host="127.0.0.1")}
        fetch = only("history_expanded", "messages")
        assert materialize_some(fetch, resources=resources, partition_key=DAY).success
        complete = readers_see(tmp_path)

        shutil.rmtree(tmp_path / "_cache")  # so that the child fetches, and writes, the whole day again
        write_in_child(server.url, tmp_path, stage_of_kill)
        assert readers_see(tmp_path) == complete

        assert materialize_some(fetch, resources=resources, partition_key=DAY).success  # and once more, whole
    again = readers_see(tmp_path)
    assert again["ids"] == complete["ids"] and len(set(again["ids"])) == len(again["ids"])
    assert Lake(str(tmp_path)).read("messages", DAY).num_rows == len(complete["ids"])
