"""A run killed with `kill -9` never leaves its account blocked: `zchat-assets recover` gives its slot back."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import DAY, START, TOKEN, fast_api, make_world, materialize_some, only
from .truth import message_ids

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def command(home: Path, env: dict, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(list(args), cwd=home, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)


@pytest.mark.slow
def test_a_killed_run_frees_its_accounts_slot_with_one_command(tmp_path):
    world = make_world(scale=150)
    app = SandboxApp(world, TOKEN, latency=0.05)
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home)
    env = {"DAGSTER_HOME": str(home), "ZCHAT_API_TOKEN": TOKEN, "ZCHAT_START_DATE": START, "ZCHAT_LAKE_URI": str(lake),
           "ZCHAT_CONCURRENCY": "1"}
    materialize = [str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions", "--select",
                   "zchat/messages", "--partition", DAY]
    with SandboxServer(app) as server:
        env["ZCHAT_BASE_URL"] = server.url
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(lake), host="127.0.0.1")}
        assert materialize_some(only("history_expanded"), resources=resources, partition_key=DAY).success
        limit = command(home, env, str(BIN / "dagster"), "instance", "concurrency", "set", "zchat_api", "1")
        assert limit.wait(timeout=120) == 0

        killed = command(home, env, *materialize)
        deadline = time.monotonic() + 120
        while app.stats.by_endpoint.get("messages", 0) < 20:
            assert time.monotonic() < deadline and killed.poll() is None
            time.sleep(0.1)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()

        waiting = command(home, env, *materialize)
        time.sleep(12)  # long enough to start and meet the pool: its step waits for the dead run's slot
        assert waiting.poll() is None
        before = app.stats.by_endpoint.get("messages", 0)

        recovered = subprocess.run([str(BIN / "zchat-assets"), "recover"], cwd=home, env={**os.environ, **env},
                                   capture_output=True, text=True, timeout=120)
        assert recovered.returncode == 0, recovered.stderr
        assert "marked failed, 1 slot(s) freed" in recovered.stdout
        out, err = waiting.communicate(timeout=300)
        assert waiting.returncode == 0, err[-3000:]
        assert app.stats.by_endpoint["messages"] > before
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"]
    assert sorted(Lake(str(lake)).read("messages", DAY).column("message_id").to_pylist()) == \
        sorted(message_ids(world, DAY))
    # Nothing else to recover, and a second call says so.
    again = subprocess.run([str(BIN / "zchat-assets"), "recover"], cwd=home, env={**os.environ, **env},
                           capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == "No run of this instance has lost its process."
