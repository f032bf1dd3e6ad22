"""The fleet benchmark: the code location's load at 1, 100 and 1,000 accounts, and a fleet's nightly run.

    python benchmarks/fleet.py                 # every row, about 8 minutes on 2 cores
    python benchmarks/fleet.py --only load     # some groups (load, budget, nightly, ui, killed)

The load rows time a fresh process, as a code server, a run worker or `dg check defs` starts one, in a
copy of this project whose `zchat_assets/defs/` holds one `ZchatFleet` of that many accounts (the unnamed
account removed). CPU and peak RSS come from the kernel's accounting of each process (`wait4`); requests
are what the sandbox counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench import BIN, DAY, TOKEN, Sandbox, Workspace, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zchat_assets.assets.automation import DAILY  # noqa: E402
from zchat_assets.lake import Lake  # noqa: E402
from zchat_assets.sandbox import World  # noqa: E402
from zchat_assets_tests.projects import fleet_project  # noqa: E402
from zchat_assets_tests.truth import message_ids, protocols  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# What a code server does at start: load the definitions and build the snapshot it hands to the webserver.
LOAD = ("import zchat_assets.definitions as d; from dagster._core.remote_representation.external_data import "
        "RepositorySnap; repo = d.defs().get_repository_def(); RepositorySnap.from_def(repo); "
        "print(len(list(repo.asset_graph.get_all_asset_keys())))")


def project(folder: Path, accounts: int, base_url: str = "http://127.0.0.1:9", rate_limit: str = "20") -> Path:
    """A copy of this project whose only component is a fleet `bpo` of that many accounts, its lake inside."""
    return fleet_project(folder, accounts, base_url, folder / "lake", rate_limit=rate_limit)


def environment(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZCHAT_")}
    return {**env, "PYTHONPATH": str(folder), "DAGSTER_HOME": str(folder)}


def load_rows() -> list[list[str]]:
    rows, first = [], None
    for accounts in (1, 100, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            folder = project(Path(tmp), accounts)
            env = environment(folder)
            load = min((run([sys.executable, "-c", LOAD], env) for _ in range(3)), key=lambda r: r[0])
            check = run([str(BIN / "dg"), "check", "defs"], {**env, "PWD": str(folder)}, cwd=folder)
        first = first or load[0]
        rows.append([f"load, {accounts:,} account(s)", f"{load[0]:.1f}", f"{load[1]:.1f}", f"{load[2]:.0f}",
                     f"{load[0] / first:.2f}", f"dg check defs {check[0]:.1f} s"])
    return rows


def budget_rows() -> list[list[str]]:
    """The unnamed account at rate_limit 20, with the local instance's pool limit (dagster.yaml: 2 slots): one
    run's messages alone, then two runs' at once; the sandbox counts the busiest second."""
    rows = []
    with Sandbox(300, 0.01) as sandbox:
        space = Workspace(sandbox, 8, ZCHAT_RATE_LIMIT="20")
        shutil.copy(ROOT / "dagster.yaml", space.dir / "home")
        days = [(date.fromisoformat(DAY) - timedelta(days=n)).isoformat() for n in range(3)]
        for day in days:
            sandbox.warm(day)
            space.materialize("zchat/history_expanded", day)
        sandbox.stats(reset=True)
        wall, cpu, rss = space.materialize("zchat/messages", DAY)
        stats = sandbox.stats(reset=True)
        (held,) = space.latest("zchat/messages", 1)
        rows.append(["one run alone at rate_limit 20", f"{wall:.1f}", f"{cpu:.1f}", f"{rss:.0f}", "",
                     f"messages step {held['api_requests'] / held['seconds']:.1f} requests/s "
                     f"({held['api_requests']} in {held['seconds']:.1f} s), held {held['api_rate_limit']} /s; "
                     f"busiest second {stats['max_per_second']}"])
        started = time.monotonic()
        together = [subprocess.Popen([str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions",
                                      "--select", "zchat/messages", "--partition", day], env=space.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for day in days[1:]]
        assert all(p.wait() == 0 for p in together)
        wall = time.monotonic() - started
        stats = sandbox.stats(reset=True)
        both = space.latest("zchat/messages", 2)
        rows.append(["two runs of one account at once, rate_limit 20", f"{wall:.1f}", "", "", "",
                     f"{stats['requests']} requests; busiest second {stats['max_per_second']}; each step held "
                     f"{', '.join(str(m['api_rate_limit']) for m in both)} /s at its lowest"])
        space.close()
    return rows


def nightly_rows(accounts: int = 100, scale: int = 300) -> list[list[str]]:
    """The fleet's nightly schedule for yesterday, one run per account as it asks, four at a time as the
    local instance's queue runs them (max_concurrent_runs: 4), each run a process of its own."""
    with tempfile.TemporaryDirectory() as tmp, Sandbox(scale, 0.0, "--fleet-prefix", "tok-") as sandbox:
        folder = project(Path(tmp), accounts, sandbox.url, rate_limit="null")
        env = environment(folder)
        env.update({f"A{n:04d}_TOKEN": f"tok-{n}" for n in range(accounts)})
        # The instance exists before the night: created by four runs at once, its tables would race.
        subprocess.run([str(BIN / "dagster"), "instance", "migrate"], env=env, cwd=folder, check=True,
                       capture_output=True)
        for n in range(accounts):
            sandbox.warm(DAY, f"tok-{n}")
        sandbox.stats(reset=True)
        select = ",".join(f"zchat/bpo/{d}" for d in DAILY)
        pending = [f"a{n:04d}|{DAY}" for n in range(accounts)]
        running, figures = {}, []
        started = time.monotonic()
        while pending or running:
            while pending and len(running) < 4:
                key = pending.pop(0)
                log = open(folder / f"{key.replace('|', '_')}.log", "wb")
                child = subprocess.Popen([str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions",
                                          "--select", select, "--partition", key], env=env, cwd=folder,
                                         stdout=subprocess.DEVNULL, stderr=log)
                running[child.pid] = key
            pid, status, usage = os.wait4(-1, 0)
            if pid in running:
                if status:
                    log = (folder / f"{running[pid].replace('|', '_')}.log").read_text()
                    raise RuntimeError(f"the run of {running[pid]} failed:\n{log[-3000:]}")
                figures.append((usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024))
                del running[pid]
        wall = time.monotonic() - started
        stats = sandbox.stats()
        exact = all(exact_account(folder / "lake", n, scale) for n in range(accounts))
    cpu = sum(c for c, _ in figures)
    return [[f"nightly of {accounts} accounts x {scale} interactions", f"{wall:.1f}", f"{cpu:.1f}",
             f"{max(r for _, r in figures):.0f}", "",
             f"{len(figures)} runs, {stats['requests']:,} requests, {cpu / len(figures):.1f} CPU s a run; "
             f"every account exact: {exact}"]]


def exact_account(lake: Path, number: int, scale: int) -> bool:
    """The account's day in the lake holds exactly the interactions and messages its sandbox world has."""
    world = World(seed=7 + number, scale=scale, account=1000 + number)
    account = Lake(str(lake), account=f"a{number:04d}")
    history = sorted(account.read("history", DAY).column("protocol_id").to_pylist())
    messages = sorted(account.read("messages", DAY).column("message_id").to_pylist(), key=str)
    return history == sorted(protocols(world, DAY)) and messages == sorted(message_ids(world, DAY), key=str)


PARTITIONS_QUERY = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionKeysByDimension { name partitionKeys }
  assetPartitionStatuses { ... on MultiPartitionStatuses { primaryDimensionName ranges { primaryDimStartKey
    primaryDimEndKey secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }
} } }"""


def ui_rows(days_done: int = 30) -> list[list[str]]:
    """What the UI's partition page of a fleet's asset asks the webserver (its partition keys, by dimension,
    and their statuses), with `days_done` days of every account materialized, at 100 and 1,000 accounts."""
    import json
    import urllib.request

    from dagster import AssetKey, AssetMaterialization, DagsterInstance

    rows = []
    for accounts in (100, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            folder = project(Path(tmp), accounts)
            env = environment(folder)
            subprocess.run([str(BIN / "dagster"), "instance", "migrate"], env=env, cwd=folder, check=True,
                           capture_output=True)
            key = AssetKey(["zchat", "bpo", "history"])
            last = date.fromisoformat(DAY)
            with DagsterInstance.from_config(str(folder)) as instance:
                for n in range(accounts):
                    for d in range(days_done):
                        day = (last - timedelta(days=d)).isoformat()
                        instance.report_runless_asset_event(AssetMaterialization(key, partition=f"a{n:04d}|{day}"))
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            started = time.monotonic()
            webserver = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-p", str(port)],
                                         env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            try:
                body = json.dumps({"query": PARTITIONS_QUERY, "variables": {"key": {"path": key.path}}}).encode()
                while True:
                    try:
                        request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body,
                                                         {"Content-Type": "application/json"})
                        answer = json.loads(urllib.request.urlopen(request, timeout=300).read())
                        if answer.get("data", {}).get("assetNodeOrError", {}).get("partitionKeysByDimension"):
                            break
                    except OSError:
                        pass
                    assert time.monotonic() - started < 300, "the webserver did not start"
                    time.sleep(0.5)
                ready = time.monotonic() - started
                timings = []
                for _ in range(3):
                    begun = time.monotonic()
                    answer = urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"}), timeout=300)
                    size = len(answer.read())
                    timings.append(time.monotonic() - begun)
            finally:
                os.killpg(webserver.pid, signal.SIGTERM)
                webserver.wait()
        rows.append([f"UI partition page, {accounts:,} accounts", f"{min(timings):.2f}", "", "", "",
                     f"{accounts * days_in_fleet():,} partitions an asset, {accounts * days_done:,} materialized; "
                     f"webserver answering after {ready:.0f} s; the answer {size / 1e3:.0f} kB"])
    return rows


def days_in_fleet() -> int:
    return (date.fromisoformat(DAY) - date(2025, 1, 1)).days + 3  # the project's start_date to yesterday


def graphql(port: int, query: str, variables: dict) -> dict:
    import json
    import urllib.request

    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=120).read())["data"]


LAUNCH = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
  ... on LaunchRunSuccess { run { runId } } } }"""


def killed_rows() -> list[list[str]]:
    """`dagster dev` (webserver, daemon, code server) on the local instance with the account's pool limit at 1:
    a messages run launched as the UI does, its run worker killed with SIGKILL mid-fetch, then a second run of
    the account, which waits for the dead run's slot until the code server and run monitoring give it back."""
    from dagster import DagsterInstance

    with Sandbox(300, 0.05) as sandbox, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        shutil.copy(ROOT / "dagster.yaml", home)
        env = {**os.environ, "DAGSTER_HOME": str(home), "ZCHAT_API_TOKEN": TOKEN, "ZCHAT_BASE_URL": sandbox.url,
               "ZCHAT_LAKE_URI": str(home / "lake"), "ZCHAT_START_DATE": "2025-01-01", "ZCHAT_CONCURRENCY": "2"}
        for command in (["instance", "concurrency", "set", "zchat_api", "1"],
                        ["asset", "materialize", "-m", "zchat_assets.definitions", "--select", "zchat/history_expanded",
                         "--partition", DAY]):
            subprocess.run([str(BIN / "dagster"), *command], env=env, cwd=ROOT, check=True, capture_output=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        dev = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)], env=env,
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            params = {"p": {"selector": {"repositoryLocationName": "zchat_assets", "repositoryName": "__repository__",
                                         "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["zchat", "messages"]}]},
                            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]}}}
            deadline = time.monotonic() + 180
            while True:
                try:
                    first = graphql(port, LAUNCH, params)["launchPipelineExecution"]["run"]["runId"]
                    break
                except (OSError, KeyError, TypeError):
                    assert time.monotonic() < deadline, "dagster dev did not start"
                    time.sleep(1)
            sandbox.stats(reset=True)
            while sandbox.stats()["by_endpoint"].get("messages", 0) < 30:
                assert time.monotonic() < deadline, "the run did not start fetching"
                time.sleep(0.2)
            listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
            workers = [int(line.split()[0]) for line in listing.splitlines() if "multiprocessing.spawn" in line]
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            second = graphql(port, LAUNCH, params)["launchPipelineExecution"]["run"]["runId"]
            before = sandbox.stats()["by_endpoint"].get("messages", 0)
            failed_after = fetching_after = None
            with DagsterInstance.from_config(str(home)) as instance:
                while time.monotonic() - killed < 300:
                    if failed_after is None and instance.get_run_by_id(first).status.value == "FAILURE":
                        failed_after = time.monotonic() - killed
                    if fetching_after is None and sandbox.stats()["by_endpoint"].get("messages", 0) > before + 5:
                        fetching_after = time.monotonic() - killed
                    status = instance.get_run_by_id(second).status.value
                    if status in ("SUCCESS", "FAILURE"):
                        break
                    time.sleep(0.5)
                done = time.monotonic() - killed
        finally:
            os.killpg(dev.pid, signal.SIGTERM)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
    return [["a killed run, with the daemon", f"{done:.1f}", "", "", "",
             f"{len(workers)} run worker killed; its run FAILURE after {failed_after:.1f} s; the waiting run fetching "
             f"after {fetching_after:.1f} s, {status} after {done:.1f} s"]]


GROUPS = {"load": load_rows, "budget": budget_rows, "nightly": nightly_rows, "ui": ui_rows, "killed": killed_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(GROUPS), help="run only these groups")
    args = parser.parse_args()
    head = ["scenario", "wall s", "CPU s", "peak RSS MB", "vs 1 account", "notes"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head), flush=True)
    for name, rows in GROUPS.items():
        if not args.only or name in args.only:
            for row in rows():
                print("| " + " | ".join(row) + " |", flush=True)
    print(f"\n{os.cpu_count()} CPUs; wall and CPU of a fresh process (the best of three for the load).")


if __name__ == "__main__":
    main()
