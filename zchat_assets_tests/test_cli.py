"""End to end through the command line, as a user runs it: `dagster asset materialize`, the demo."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from zchat_assets.api.errors import missing_token
from zchat_assets.assets import build_account_defs
from zchat_assets.resources import ZchatLake
from zchat_assets.lake import Lake
from zchat_assets.sandbox import SandboxApp, SandboxServer, parse_faults
from zchat_assets.settings import AccountSettings

from .conftest import DAILY, DAY, TOKEN, eventually, make_world
from .truth import assert_lake_matches, message_ids, protocols, searchable

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.slow


def token_hits(*places: Path, texts: tuple[str, ...] = ()) -> list[str]:
    """The outputs and files the token shows in."""
    hits = [f"output #{i}" for i, text in enumerate(texts) if TOKEN in text]
    for place in places:
        for path in place.rglob("*"):
            if path.is_file() and TOKEN.encode() in searchable(path.read_bytes(), path.name):
                hits.append(str(path))
    return hits


def project_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home)
    shutil.copy(ROOT / "workspace.yaml", home)
    return home


def test_a_backfill_through_the_cli_is_exact_under_faults_and_leaks_no_token(tmp_path, reliability_figures):
    """A 3-day backfill with every fault, then a run that fails for good: the token is nowhere, not in
    the output, the event log, the compute logs, run config or the lake."""
    world = make_world(scale=150)
    app = SandboxApp(world, TOKEN, faults=parse_faults("all=0.02,slow=0,drift=0.2"), retry_after=0.05)
    home = project_home(tmp_path)
    lake = tmp_path / "lake"
    days = ("2026-11-16", "2026-11-17", DAY)
    with SandboxServer(app) as server:
        env = {**os.environ, "DAGSTER_HOME": str(home), "ZCHAT_API_TOKEN": TOKEN, "ZCHAT_BASE_URL": server.url,
               "ZCHAT_LAKE_URI": str(lake), "ZCHAT_START_DATE": "2026-10-01"}
        command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "zchat_assets.definitions",
                   "--select", ",".join(k.to_user_string() for a in DAILY for k in a.keys)]
        backfill = subprocess.run([*command, "--partition-range", f"{days[0]}...{days[-1]}"],
                                  cwd=home, env=env, capture_output=True, text=True, timeout=600)
        injected = sum(app.stats.faults.values())
        app.token = "revoked"  # the next run fails at its first request, and Dagster stores the error
        failed = subprocess.run([*command, "--partition", DAY], cwd=home, env=env, capture_output=True, text=True,
                                timeout=600)
    hits = token_hits(home, lake, texts=(backfill.stdout, backfill.stderr, failed.stdout, failed.stderr))
    reliability_figures.record(faults=injected, protocols=sum(len(protocols(world, d)) for d in days),
                               messages=sum(len(message_ids(world, d)) for d in days), token_hits=len(hits))
    assert hits == []
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    assert injected > 0
    for day in days:
        assert_lake_matches(Lake(str(lake)), world, day)
    assert failed.returncode != 0 and "rejected the token (HTTP 401: Invalid or missing token)" in failed.stderr
    assert (home / "storage").exists() and list(home.rglob("*.err"))


def test_demo_runs_from_a_project_folder_and_ignores_a_real_configuration(tmp_path):
    """A `.env` and ZCHAT_* variables of a real account change nothing, and a real account's days in ./data
    stay byte for byte: the demo has its own instance and lake (.sandbox/), and leaves nothing else."""
    home = project_home(tmp_path)
    (home / ".env").write_text(f"ZCHAT_LAKE_URI={tmp_path / 'real-lake'}\nZCHAT_BASE_URL=https://zchat.zenvia.io\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZCHAT_", "DAGSTER_HOME"))}
    env.update(ZCHAT_LAKE_URI=str(tmp_path / "real-lake"), ZCHAT_BASE_URL="https://zchat.zenvia.io")
    real = ZchatLake(uri=str(home / "data"), host="zchat.zenvia.io").open()  # a real account's lake, as written
    real.write_partition("messages", "2026-11-30", pa.table({"message_id": ["real-1", "real-2"]}))
    before = {p: p.read_bytes() for p in (home / "data").rglob("*") if p.is_file()}
    earlier = home / ".sandbox" / "lake" / "messages" / "date=2020-01-01"  # an earlier demo's day: not this run's
    earlier.mkdir(parents=True)
    (earlier / "part-00000.parquet").write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "zchat_assets.cli", "demo", "--days", "1", "--scale", "40"],
                          cwd=home, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("What this run wrote:")[1]
    checks = len(build_account_defs(AccountSettings(lake_uri=str(tmp_path)), {}).resolve_job_def("daily_job")
                 .asset_layer.asset_graph.asset_check_keys)
    assert re.search(r"zchat/messages +1 +[1-9][\d,]* +1 ", table) and f"{checks}/{checks} checks passed" in done.stdout
    assert "into .sandbox/lake; runs are recorded in .sandbox." in done.stdout
    assert len(list((home / ".sandbox" / "lake" / "messages").glob("date=*/*.parquet"))) == 2
    assert {p: p.read_bytes() for p in (home / "data").rglob("*") if p.is_file()} == before
    assert not (tmp_path / "real-lake").exists()
    assert sorted(p.name for p in home.iterdir()) == [".env", ".sandbox", "dagster.yaml", "data", "workspace.yaml"]


def test_a_day_outside_the_partitions_and_a_missing_token_get_our_sentence_from_dagsters_commands(tmp_path):
    """`dg launch` with a day before the start date prints one line; `dagster asset materialize` without
    a token fails its step with the sentence naming the variable, not with Dagster's config error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZCHAT_")}
    env.update(DAGSTER_HOME=str(project_home(tmp_path)), ZCHAT_LAKE_URI=str(tmp_path / "lake"),
               ZCHAT_START_DATE="2026-01-01")
    outside = subprocess.run([str(Path(sys.executable).with_name("dg")), "launch", "--assets", "zchat/history",
                              "--partition", "2025-12-31"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert outside.returncode == 1
    assert outside.stderr.strip().splitlines()[-1].startswith(
        "Error: 2025-12-31 is not one of the partitions, which run from 2026-01-01 (the start date: ZCHAT_START_DATE")
    assert "Traceback" not in outside.stderr and "Warning" not in outside.stderr + outside.stdout
    untokened = subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "zchat_assets.definitions",
                                "--select", "zchat/history", "--partition", "2026-11-18"], cwd=env["DAGSTER_HOME"],
                               env=env, capture_output=True, text=True, timeout=300)
    assert untokened.returncode == 1 and missing_token("ZCHAT_API_TOKEN") in untokened.stderr
    assert "DagsterInvalidConfigError" not in untokened.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_sandbox_announces_its_port_refuses_a_busy_one_and_stops_on_ctrl_c_or_kill(stop):
    """Ctrl-C or kill stops it even when started as a script's background job is: with the signals
    ignored on the way in (`trap`)."""
    env = {**os.environ, "ZCHAT_API_TOKEN": TOKEN}
    sandbox = subprocess.Popen(["sh", "-c", 'trap "" INT TERM; exec "$@"', "sh", sys.executable, "-m",
                                "zchat_assets.cli", "sandbox", "--port", "0", "--scale", "5"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.match(r"Zenvia Chat sandbox on (http://127\.0\.0\.1:(\d+)) ", sandbox.stdout.readline())
        assert url and url[2] != "0"
        assert urllib.request.urlopen(f"{url[1]}/_sandbox/stats", timeout=5).status == 200
        busy = subprocess.run([sys.executable, "-m", "zchat_assets.cli", "sandbox", "--port", url[2]], env=env,
                              capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2 and busy.stdout == ""
        assert busy.stderr.strip() == (f"zchat-assets: cannot listen on 127.0.0.1:{url[2]} (Address already in use): "
                                       "pass --port with a free one (0 picks one)")
    finally:
        sandbox.send_signal(stop)
        try:
            stopped = sandbox.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            stopped = f"still running 30 s after {stop.name}"
    assert stopped == 0


def test_ui_on_a_busy_port_fails_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "zchat_assets.cli", "ui", "--port", str(port)],
                              cwd=project_home(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"port {port} is in use" in done.stderr and "Sandbox on" not in done.stdout


def test_ui_starts_quietly_and_stops_every_child_on_sigterm(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = (tmp_path / "ui.log").open("w")
    ui = subprocess.Popen([sys.executable, "-m", "zchat_assets.cli", "ui", "--port", str(port)],
                          cwd=project_home(tmp_path), stdout=output, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    children = subprocess.run(["pgrep", "-f", f"dagster.*{port}"], capture_output=True, text=True).stdout.split()
    assert children, "the UI did not start"
    ui.send_signal(signal.SIGTERM)
    assert ui.wait(timeout=60) is not None
    eventually(lambda: not subprocess.run(["pgrep", "-f", f"dagster.*{port}"], capture_output=True).stdout, 30)
    shown = (tmp_path / "ui.log").read_text()
    assert "Serving dagster-webserver" in shown and "Warning" not in shown  # no beta or supersession noise
