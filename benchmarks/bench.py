"""The speed, memory and politeness benchmark: every scenario against a sandbox in its own process.

    python benchmarks/bench.py                    # every scenario, about 15 minutes on 2 cores
    python benchmarks/bench.py --only day --only cache   # some groups (day, cache, busy, backfill, politeness, …)
    python benchmarks/bench.py --only dlt --dlt-python /path/to/venv/bin/python   # against dlt's rest_api

Each scenario starts a sandbox (`zchat-assets sandbox`) and times what users run: the whole
`dagster asset materialize` process, start-up included. CPU comes from the kernel's accounting of that
process (`wait4`), the sandbox's from /proc, peak RSS from the process itself (peak.py); "fetch s" is the
span of the run's steps, from Dagster's own step records; requests are what the sandbox counted. Ratios
are taken within the same run. Two groups differ: `--only client` times the API client alone, in this
process, without Dagster or the lake; `--only conversion` times a page of each history and a batch of
messages on their way to Arrow, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow.dataset as ds

TOKEN = "bench-token-0123456789"
BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
DAY = (date.today() - timedelta(days=3)).isoformat()  # long finished in the sandbox's clock
FETCH = "zchat/history,zchat/history_expanded,zchat/messages"
DLT_PYTHON = sys.executable  # --dlt-python
EVERY_DAILY_ASSET = ",".join(f"zchat/report_by_{g}" for g in ("period", "agent", "department", "channel", "tag")) \
    + "," + FETCH + ",zchat/conversations"


@dataclass
class Row:
    scenario: str
    wall: float
    requests: int
    cpu: float
    rss_mb: float | None  # None: not a process of its own
    bound: float | None = None  # seconds the requests need at least, given latency and concurrency
    fetch: float | None = None
    baseline_wall: float | None = None
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        timed = self.fetch if self.fetch is not None else self.wall
        return [self.scenario, f"{self.wall:.1f}", "" if self.fetch is None else f"{self.fetch:.1f}",
                f"{self.requests:,}", f"{1000 * self.cpu / self.requests:.2f}" if self.requests else "",
                "" if self.rss_mb is None else f"{self.rss_mb:.0f}",
                "" if self.bound is None else f"{timed / self.bound:.2f}",
                "" if self.baseline_wall is None else f"{self.wall / self.baseline_wall:.2f}", "; ".join(self.notes)]


class Sandbox:
    """`zchat-assets sandbox` in a child process, warmed up for DAY."""

    def __init__(self, scale: int, latency: float = 0.0, *extra: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.latency = latency
        self._process = subprocess.Popen(
            [sys.executable, "-m", "zchat_assets.cli", "sandbox", "--port", str(self.port), "--scale", str(scale),
             "--latency", str(latency), *extra],
            env={**os.environ, "ZCHAT_API_TOKEN": TOKEN}, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.stats()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.1)
        self.warm(DAY)
        self.stats(reset=True)

    def warm(self, day, token: str = TOKEN) -> None:
        """Makes the sandbox generate a day (of the token's world) before anything is timed."""
        self.get(f"/api/ms/external/history?token={token}&from={day}%2000:00:00&to={day}%2023:59:59"
                 "&timezone=-0300&limit=1")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=120) as response:
            return json.loads(response.read())

    def stats(self, reset: bool = False) -> dict:
        return self.get("/_sandbox/stats" + ("?reset=1" if reset else ""))

    def cpu(self) -> float | None:
        """CPU seconds the sandbox has used: it shares the machine's cores with the run."""
        return cpu_seconds(self._process.pid)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self._process.terminate()
        self._process.wait()


def proc_stat(pid: int) -> list[str] | None:
    """A process's fields in Linux's /proc/PID/stat after its name (state, parent, …, user and system CPU
    ticks at 11 and 12); None elsewhere, or once it has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds a process has used, where /proc tells."""
    fields = proc_stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Workspace:
    """A Dagster home and a lake in a temporary folder."""

    def __init__(self, sandbox: Sandbox, concurrency: int, **env: str):
        self.dir = Path(tempfile.mkdtemp(prefix="zchat-bench-"))
        (self.dir / "home").mkdir()
        (self.dir / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.lake = self.dir / "lake"
        self.env = {**os.environ, "DAGSTER_HOME": str(self.dir / "home"), "ZCHAT_API_TOKEN": TOKEN,
                    "ZCHAT_BASE_URL": sandbox.url, "ZCHAT_LAKE_URI": str(self.lake),
                    "ZCHAT_CONCURRENCY": str(concurrency), "ZCHAT_START_DATE": "2025-01-01", **env}

    def materialize(self, select: str = FETCH, partition: str = DAY, *, kill_when=None) -> tuple[float, float, float]:
        flag = "--partition-range" if "..." in partition else "--partition"
        return run([str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions",
                    "--select", select, flag, partition], self.env, kill_when)

    def steps(self) -> tuple[float, float, float]:
        """From Dagster's records of the latest run: the span of its steps, and the wall and CPU seconds
        the assets report for their days (their own work, without Dagster's). The datasets of one step run
        side by side and a day's CPU is the whole process's, so a step counts its longest dataset."""
        from dagster import DagsterEventType, DagsterInstance

        with DagsterInstance.from_config(str(self.dir / "home")) as instance:
            run_id = instance.get_runs(limit=1)[0].run_id
            stats = instance.get_run_step_stats(run_id)
            span = max(s.end_time for s in stats) - min(s.start_time for s in stats)
            records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        by_step: dict[str, dict] = {}  # step -> asset -> [seconds, CPU seconds] over its days
        for record in records:
            event = record.event_log_entry.dagster_event
            days = event.event_specific_data.materialization.metadata
            if "seconds" in days:
                totals = by_step.setdefault(record.event_log_entry.step_key, {}).setdefault(event.asset_key, [0, 0])
                totals[0] += days["seconds"].value
                totals[1] += days["cpu_seconds"].value if "cpu_seconds" in days else 0
        longest = [max(assets.values()) for assets in by_step.values()]
        return span, sum(t[0] for t in longest), sum(t[1] for t in longest)

    def latest(self, asset: str, count: int) -> list[dict]:
        """The metadata of the asset's latest `count` materializations, as plain values, newest first."""
        from dagster import AssetKey, DagsterInstance

        with DagsterInstance.from_config(str(self.dir / "home")) as instance:
            records = instance.fetch_materializations(AssetKey.from_user_string(asset), limit=count).records
            return [{k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records]

    def messages(self):
        return ds.dataset(self.lake / "messages", partitioning="hive").to_table()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def run(command: list[str], env: dict, kill_when=None, cwd: Path | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB) of a child Python program (a console script, or a Python
    and its arguments); `kill_when()` true SIGKILLs it, and its peak is then unknown (nan). The peak is the
    child's own (peak.py): the kernel's figure for a child would start from this process's size."""
    python, program = (command[0], command[1:]) if Path(command[0]).name.startswith("python") \
        else (sys.executable, command)
    with tempfile.TemporaryFile() as log, tempfile.TemporaryDirectory() as scratch:
        peak = Path(scratch) / "peak"
        started = time.monotonic()
        child = subprocess.Popen([python, str(HERE / "peak.py"), str(peak), *program], env=env,
                                 stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, cwd=cwd)
        if kill_when is not None:
            while not kill_when():
                if os.wait4(child.pid, os.WNOHANG)[0]:
                    raise RuntimeError(f"{command[1:4]} ended before the moment it was to be killed")
                time.sleep(0.05)
            os.killpg(child.pid, signal.SIGKILL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        if status and kill_when is None:
            log.seek(0)
            raise RuntimeError(f"{command[1:4]} failed:\n{log.read().decode()[-3000:]}")
        rss = int(peak.read_text()) / 1024 if peak.exists() else float("nan")
    return wall, usage.ru_utime + usage.ru_stime, rss


def fetch_day(label: str, scale: int, latency: float, concurrency: int, baseline: bool = False) -> list[Row]:
    rows = []
    with Sandbox(scale, latency) as sandbox:
        space = Workspace(sandbox, concurrency)
        before = sandbox.cpu()
        wall, cpu, rss = space.materialize()
        after = sandbox.cpu()
        counted = sandbox.stats(reset=True)
        requests = counted["requests"]
        span, _, inside_cpu = space.steps()
        row = Row(label, wall, requests, cpu, rss, fetch=span,
                  notes=[f"assets' own CPU {1000 * inside_cpu / requests:.2f} ms/req"])
        if after is not None:
            row.notes.append(f"the sandbox's {1000 * (after - before) / requests:.2f} ms/req")
        if latency:
            row.bound = requests * latency / concurrency
            messages = space.latest("zchat/messages", 1)[0]  # the day's own figures
            own, own_bound = messages["seconds"], counted["by_endpoint"]["messages"] * latency / concurrency
            row.notes.append(f"whole process {wall / row.bound:.2f} x bound; messages {own:.1f} s, "
                             f"{own / own_bound:.2f} x their bound, {messages['cpu_seconds'] / own:.2f} CPU-s a "
                             "second (the process's, every thread)")
        rows.append(row)
        if baseline:
            out = space.dir / "sequential"
            out.mkdir()
            b_wall, b_cpu, b_rss = run([sys.executable, str(HERE / "sequential.py"), sandbox.url, DAY, "-0300",
                                        str(out)], {**os.environ, "ZCHAT_API_TOKEN": TOKEN})
            b_requests = sandbox.stats(reset=True)["requests"]
            row.baseline_wall = b_wall
            rows.append(Row(f"{label}, sequential requests + pandas", b_wall, b_requests, b_cpu, b_rss,
                            baseline_wall=b_wall))
        space.close()
    return rows


def against_dlt(scale: int, latency: float, concurrency: int, python: str) -> list[Row]:
    """The busy day through the assets, then through dlt's `rest_api` source with as many workers
    (dlt_rest_api.py), on the same sandbox: wall, CPU and memory of each whole process, and both row counts."""
    label = f"{scale:,}/day, {latency * 1000:.0f} ms, dlt rest_api, {concurrency} workers"
    if subprocess.run([python, "-c", "import dlt"], capture_output=True).returncode:
        return [Row(label, 0, 0, 0, 0, notes=[f"not run: {python} has no dlt (pip install 'dlt[parquet]' in some "
                                                  "environment, then --dlt-python its python)"])]
    with Sandbox(scale, latency) as sandbox:
        space = Workspace(sandbox, concurrency)
        wall, cpu, rss = space.materialize()
        requests = sandbox.stats(reset=True)["requests"]
        ours = Row(f"{scale:,}/day, {latency * 1000:.0f} ms, C={concurrency}, this project", wall, requests, cpu, rss,
                   bound=requests * latency / concurrency, fetch=space.steps()[0])
        out = space.dir / "dlt"
        out.mkdir()
        d_wall, d_cpu, d_rss = run([python, str(HERE / "dlt_rest_api.py"), sandbox.url, DAY, str(concurrency),
                                    str(out)], {**os.environ, "ZCHAT_API_TOKEN": TOKEN})
        d_requests = sandbox.stats(reset=True)["requests"]
        messages, theirs = space.messages().num_rows, ds.dataset(out / "lake" / "zchat" / "messages").count_rows()
        ours.notes = [f"{wall / d_wall:.2f} x dlt's wall", f"{messages:,} messages"]
        dlt = Row(label, d_wall, d_requests, d_cpu, d_rss, bound=d_requests * latency / concurrency,
                  notes=[f"{theirs:,} messages" + ("" if theirs == messages else " (not the same count!)")])
        space.close()
    return [ours, dlt]


def cache_and_resume(scale: int, latency: float, concurrency: int) -> list[Row]:
    with Sandbox(scale, latency) as sandbox:
        space = Workspace(sandbox, concurrency)
        wall, cpu, rss = space.materialize()
        first = sandbox.stats(reset=True)["requests"]
        before = space.messages()
        wall2, cpu2, rss2 = space.materialize()
        second = sandbox.stats(reset=True)["requests"]
        identical = space.messages().equals(before)
        rows = [Row(f"{scale:,}/day again (finished day, cache)", wall2, second, cpu2, rss2,
                    notes=[f"first run {first:,} requests, {first / max(second, 1):.0f}x fewer",
                           f"output identical: {identical}"])]
        space.close()

        space = Workspace(sandbox, concurrency)
        space.materialize("zchat/history_expanded")
        sandbox.stats(reset=True)
        target = int(0.8 * scale)
        space.materialize("zchat/messages",
                          kill_when=lambda: sandbox.stats()["by_endpoint"].get("messages", 0) >= target)
        killed_at = sandbox.stats(reset=True)["by_endpoint"].get("messages", 0)
        wall3, cpu3, rss3 = space.materialize("zchat/messages")
        resumed = sandbox.stats(reset=True)["requests"]
        table = space.messages().sort_by("message_id")
        columns = ["message_id", "raw_json"]
        same = table.select(columns).equals(before.sort_by("message_id").select(columns))
        rows.append(Row(f"{scale:,}/day resumed after SIGKILL at {100 * killed_at / scale:.0f}%", wall3, resumed,
                        cpu3, rss3, notes=[f"re-fetched {resumed - (scale - killed_at):+,} beyond the remainder",
                                           f"output same as uninterrupted: {same}"]))
        space.close()
    return rows


def backfill(days: int, scale: int, latency: float, concurrency: int) -> list[Row]:
    last = date.fromisoformat(DAY)
    first = last - timedelta(days=days - 1)
    with Sandbox(scale, latency) as sandbox:
        for offset in range(days):
            sandbox.warm(first + timedelta(days=offset))
        sandbox.stats(reset=True)
        space = Workspace(sandbox, concurrency)
        wall, cpu, rss = space.materialize(EVERY_DAILY_ASSET, f"{first}...{last}")
        requests = sandbox.stats(reset=True)["requests"]
        _, inside, _ = space.steps()
        overhead = (wall - inside) / wall
        row = Row(f"{days}-day backfill, {scale}/day, every asset, one run", wall, requests, cpu, rss,
                  notes=[f"Dagster overhead {100 * overhead:.0f}% ({wall - inside:.1f}s of {wall:.1f}s)"])
        space.close()
    return [row]


def politeness(scale: int, latency: float) -> list[Row]:
    rows = []
    with Sandbox(scale, latency) as sandbox:
        space = Workspace(sandbox, 32, ZCHAT_RATE_LIMIT="100")
        wall, cpu, rss = space.materialize()
        stats = sandbox.stats(reset=True)
        row = Row(f"{scale:,}/day, C=32 with ZCHAT_RATE_LIMIT=100", wall, stats["requests"], cpu, rss,
                  bound=stats["requests"] / 100, fetch=space.steps()[0],
                  notes=[f"sandbox saw at most {stats['max_in_flight']} in flight, "
                         f"{stats['max_per_second']} in a second"])
        rows.append(row)
        space.close()
    with Sandbox(scale, latency, "--max-in-flight", "8", "--retry-after", "1") as sandbox:
        space = Workspace(sandbox, 32)
        wall, cpu, rss = space.materialize()
        stats = sandbox.stats(reset=True)
        refused = stats["faults"].get("concurrency_429", 0)
        rows.append(Row(f"{scale:,}/day, C=32 against a limit of 8 answered with 429", wall, stats["requests"], cpu,
                        rss, fetch=space.steps()[0],
                        notes=[f"{refused:,} answered 429 ({100 * refused / stats['requests']:.1f}%)",
                               f"messages complete: {space.messages().num_rows:,} rows"]))
        space.close()
    return rows


def busy_api(scale: int, latency: float) -> list[Row]:
    """The messages of one day when a few answers are 429 or never come, against the same day fault-free."""
    rows, clean = [], None
    cases = (("fault-free", ()),
             ("1% of answers 429 (Retry-After 1 s)", ("--faults", "429=0.01", "--retry-after", "1")),
             ("0.3% of answers slower than the 60 s read timeout", ("--faults", "slow=0.003", "--slow-seconds", "90")))
    for label, options in cases:
        with Sandbox(scale, latency, *options) as sandbox:
            space = Workspace(sandbox, 8)
            space.materialize("zchat/history_expanded")
            sandbox.stats(reset=True)
            wall, cpu, rss = space.materialize("zchat/messages")
            fetch = space.steps()[0]
            stats = sandbox.stats(reset=True)
            clean = clean or fetch
            faults = ", ".join(f"{n} {kind}" for kind, n in stats["faults"].items()) or "none"
            rows.append(Row(f"{scale:,}/day messages, {latency * 1000:.0f} ms, C=8, {label}", wall, stats["requests"],
                            cpu, rss, fetch=fetch, notes=[f"{fetch / clean:.2f} x the fault-free fetch",
                                                          f"faults: {faults}"]))
            space.close()
    return rows


def tidy_cache(scale: int, latency: float) -> list[Row]:
    """The message cache's files for one day, fetched without a limit and at ZCHAT_RATE_LIMIT=13: the chunks the
    run wrote (each batch one, so what the day kept before compaction) and the files the day keeps."""
    rows = []
    with Sandbox(scale, latency) as sandbox:
        for label, env in (("no rate limit", {}), ("ZCHAT_RATE_LIMIT=13", {"ZCHAT_RATE_LIMIT": "13"})):
            space = Workspace(sandbox, 8, **env)
            wall, cpu, rss = space.materialize()
            requests = sandbox.stats(reset=True)["requests"]
            written = space.latest("zchat/messages", 1)[0]["cache_chunks_written"]
            kept = len(list((space.lake / "_cache" / "messages" / f"date={DAY}").glob("*.parquet")))
            rows.append(Row(f"{scale:,}/day, {latency * 1000:.0f} ms, C=8, {label}: message-cache files", wall, requests,
                            cpu, rss, fetch=space.steps()[0],
                            notes=[f"{written} chunk(s) written, the day's files before compaction; {kept} kept"]))
            space.close()
    return rows


def late_changes(scale: int, concurrency: int) -> list[Row]:
    """A day fetched twice: the second run compares every dataset with the version it replaces before publishing."""
    select = FETCH + ",zchat/conversations"
    with Sandbox(scale) as sandbox:
        space = Workspace(sandbox, concurrency)
        space.materialize(select)
        sandbox.stats(reset=True)
        wall, cpu, rss = space.materialize(select)
        requests = sandbox.stats(reset=True)["requests"]
        compared = {name: space.latest(f"zchat/{name}", 1)[0] for name in ("history_expanded", "messages", "conversations")}
        spent = sum(m["changes_seconds"] for m in compared.values())
        rows = [Row(f"{scale:,}/day again, late changes compared", wall, requests, cpu, rss,
                    notes=[", ".join(f"{name} {m['changes_seconds']:.2f} s for {m['dagster/row_count']:,} rows x 2 "
                                     f"versions" for name, m in compared.items()),
                           f"{100 * spent / wall:.0f}% of the run"])]
        space.close()
    return rows


def masking_cost(scale: int, typing: float, repeats: int = 2) -> list[Row]:
    """The messages of one day with personal_data_text keep and mask, on a world whose customers type their
    phone, CPF or e-mail into a share of their messages (the best of `repeats` runs each, taken in turns, each
    in a lake of its own so that no cache is read); and mask() alone on the day's texts."""
    from zchat_assets.masking import mask

    best: dict[str, tuple] = {}
    with Sandbox(scale, 0.0, "--typing", str(typing)) as sandbox:
        for _ in range(repeats):
            for text in ("keep", "mask"):
                space = Workspace(sandbox, 8, ZCHAT_PERSONAL_DATA_TEXT=text)
                space.materialize("zchat/history_expanded")
                sandbox.stats(reset=True)
                wall, cpu, rss = space.materialize("zchat/messages")
                measured = (wall, cpu, rss, sandbox.stats(reset=True)["requests"], space.steps()[2])
                best[text] = min(best.get(text, measured), measured, key=lambda m: m[4])
                if text == "keep":
                    texts = [t for t in space.messages().column("text").to_pylist() if t]
                space.close()
    started = time.process_time()
    masked = sum(mask(t) != t for t in texts)
    seconds = time.process_time() - started
    rows = [Row(f"{scale:,}/day messages, 0 ms, C=8, {typing:.0%} typed, personal_data_text={text}", wall, requests,
                cpu, rss, notes=[f"assets' own CPU {inside:.2f} s, whole process {cpu:.1f} s"])
            for text, (wall, cpu, rss, requests, inside) in best.items()]
    (k_wall, k_cpu, _, _, k_inside), (m_wall, m_cpu, _, _, m_inside) = best["keep"], best["mask"]
    rows[-1].notes += [f"against keep: assets' CPU {m_inside - k_inside:+.2f} s ({m_inside / k_inside:.2f} x), "
                       f"whole process {m_cpu - k_cpu:+.1f} s CPU and {m_wall - k_wall:+.1f} s wall",
                       f"mask() alone {len(texts) / seconds:,.0f} texts/s ({sum(map(len, texts)) / seconds / 1e6:.1f} "
                       f"MB/s), {masked:,} of {len(texts):,} texts masked"]
    return rows


def erase_cost(days: int, scale: int) -> list[Row]:
    """`zchat-assets erase --phone` on a lake of `days` days of every asset (a world with returning customers
    who type their identifiers), dry run then for real; and one day's history and messages materialized again
    before and after, which then pass through the recorded erasure."""
    from zchat_assets.sandbox import World

    last = date.fromisoformat(DAY)
    first = last - timedelta(days=days - 1)
    phones = World(seed=7, scale=scale, regulars=3).regulars[0][1]["channel_phone"]
    phone = phones[0] if isinstance(phones, list) else phones
    with Sandbox(scale, 0.0, "--regulars", "3", "--typing", "0.2") as sandbox:
        space = Workspace(sandbox, 16, ZCHAT_PERSONAL_DATA_KEY="bench-erasure-secret-0123456789")
        space.materialize(EVERY_DAILY_ASSET, f"{first}...{last}")
        before, _, _ = space.materialize(FETCH)
        erase = [str(BIN / "zchat-assets"), "erase", "--phone", phone]
        dry = run([*erase, "--dry-run"], space.env, cwd=space.dir)
        wall, cpu, rss = run(erase, space.env, cwd=space.dir)
        after, _, _ = space.materialize(FETCH)
        changed = sum(json.loads(p.read_text())["rows"].get("history", 0) for p in (space.lake / "_erasure").glob("*.json"))
        space.close()
    return [Row(f"erase --phone, a {days}-day lake of {scale}/day", wall, 0, cpu, rss,
                notes=[f"--dry-run {dry[0]:.1f} s", f"{changed} interactions blanked",
                       f"one day's histories and messages again: {before:.1f} s before the erasure, {after:.1f} s "
                       "after (applying it)"])]


def client_alone(scale: int, latency: float, concurrency: int) -> list[Row]:
    """`ZchatClient.messages_many` over a day's protocols in this process, without Dagster or the lake: the
    client's own CPU a request (HTTP, JSON, retries' bookkeeping, the fan-out), from the process's rusage."""
    import resource

    from zchat_assets.api import ClientSettings, ZchatClient

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with Sandbox(scale, latency) as sandbox:
        with ZchatClient(TOKEN, ClientSettings(base_url=sandbox.url, concurrency=concurrency)) as client:
            window = (f"{DAY} 00:00:00", f"{DAY} 23:59:59", "-0300")
            ids = [str(r["id"]) for page in client.history_pages(*window) for r in page]
            sandbox.stats(reset=True)
            started, spent = time.monotonic(), cpu()
            messages = sum(len(items) for _, items in client.messages_many(ids))
            wall, spent = time.monotonic() - started, cpu() - spent
        requests = sandbox.stats(reset=True)["requests"]
    return [Row(f"{scale:,} messages requests, {latency * 1000:.0f} ms, C={concurrency}, the client alone", wall,
                requests, spent, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                bound=requests * latency / concurrency, notes=[f"{messages:,} messages"])]


def conversion(scale: int, times: int = 9) -> list[Row]:
    """What an answer costs the run's interpreter, each part timed alone in this process (the median of
    `times`): a page of each history decoded and converted to Arrow, and a batch of messages as the run
    converts them. While the histories are walked, this holds the interpreter's lock that the messages'
    event loop needs to take each answer."""
    import statistics
    from urllib.parse import urlencode

    from zchat_assets.api import ClientSettings, ZchatClient
    from zchat_assets.api.policy import decode
    from zchat_assets.api.vendor import API_PREFIX
    from zchat_assets.day_messages import FLUSH_MESSAGES
    from zchat_assets.schemas import messages_table, to_table

    def median_seconds(work) -> float:
        spent = []
        for _ in range(times):
            started = time.perf_counter()
            work()
            spent.append(time.perf_counter() - started)
        return statistics.median(spent)

    rows = []
    window = {"from": f"{DAY} 00:00:00", "to": f"{DAY} 23:59:59", "timezone": "-0300", "limit": 2500, "page": 1}
    with Sandbox(scale) as sandbox:
        for endpoint, dataset in (("history/expanded", "history_expanded"), ("history", "history")):
            query = urlencode({**window, "token": TOKEN})
            with urllib.request.urlopen(f"{sandbox.url}{API_PREFIX}/{endpoint}?{query}", timeout=120) as answer:
                body = answer.read()
            records = decode(body)["data"]
            decoding = median_seconds(lambda: decode(body))
            converting = median_seconds(lambda: to_table(records, dataset))
            rows.append(Row(f"a page of {len(records):,} {dataset} records ({len(body) / 1e6:.1f} MB), timed alone",
                            decoding + converting, 0, 0, None,
                            notes=[f"JSON {1000 * decoding:.1f} ms, to Arrow {1000 * converting:.1f} ms"]))
        with ZchatClient(TOKEN, ClientSettings(base_url=sandbox.url, concurrency=8)) as client:
            batch, count = [], 0
            for protocol, messages in client.messages_many([str(r["id"]) for r in records]):
                if isinstance(messages, Exception):  # a conversation purged at the vendor: none here
                    continue
                batch.append((protocol, messages))
                count += len(messages)
                if count >= FLUSH_MESSAGES:  # the run converts its messages in batches of this many
                    break
        converting = median_seconds(lambda: messages_table(batch))
        rows.append(Row(f"a batch of {count:,} messages of {len(batch):,} conversations, timed alone", converting,
                        0, 0, None, notes=[f"to Arrow {1000 * converting:.1f} ms"]))
    return rows


def memory_by_step(scale: int) -> list[Row]:
    """Peak RSS of one process per asset, the same day, in turn: a report (one request: the process's own
    footprint, Dagster and the project loaded), history_expanded, then messages (reading the first's day):
    which step sets the run's peak."""
    rows = []
    with Sandbox(scale, 0.0) as sandbox:
        space = Workspace(sandbox, 64)
        for asset in ("report_by_period", "history_expanded", "messages"):
            wall, cpu, rss = space.materialize(f"zchat/{asset}")
            requests = sandbox.stats(reset=True)["requests"]
            rows.append(Row(f"{scale:,}/day, {asset} alone", wall, requests, cpu, rss))
        space.close()
    return rows


GROUPS = {
    "day": lambda: [*fetch_day("2,000/day, 50 ms, C=8", 2000, 0.05, 8),
                    *fetch_day("2,000/day, 50 ms, C=32", 2000, 0.05, 32),
                    *fetch_day("2,000/day, 0 ms, C=8", 2000, 0.0, 8, baseline=True)],
    "cache": lambda: cache_and_resume(2000, 0.05, 8),
    "busy": lambda: [*fetch_day("20,000/day, 50 ms, C=64", 20000, 0.05, 64),
                     *fetch_day("20,000/day, 50 ms, C=128", 20000, 0.05, 128),
                     *fetch_day("20,000/day, 0 ms, C=8", 20000, 0.0, 8, baseline=True),
                     *fetch_day("50,000/day, 0 ms, C=16", 50000, 0.0, 16)],
    "client": lambda: [*client_alone(8000, 0.05, 64), *client_alone(20000, 0.05, 128)],
    "dlt": lambda: against_dlt(20000, 0.05, 64, DLT_PYTHON),
    "memory": lambda: [*memory_by_step(20000), *memory_by_step(50000)],
    "conversion": lambda: conversion(20000),
    "backfill": lambda: backfill(30, 300, 0.05, 16),
    "politeness": lambda: politeness(2000, 0.05),
    "faults": lambda: busy_api(2000, 0.05),
    "mask": lambda: masking_cost(2000, 0.2),
    "tidy": lambda: tidy_cache(400, 0.05),
    "changes": lambda: late_changes(20000, 16),
    "erase": lambda: erase_cost(30, 300),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(GROUPS), help="run only these groups")
    parser.add_argument("--dlt-python", default=sys.executable,
                        help="a Python with dlt installed, for the dlt group (dlt is not a dependency)")
    args = parser.parse_args()
    global DLT_PYTHON
    DLT_PYTHON = args.dlt_python
    head = ["scenario", "wall s", "fetch s", "requests", "CPU ms/req", "peak RSS MB", "vs bound", "vs sequential",
            "notes"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head), flush=True)
    for name, scenarios in GROUPS.items():
        if args.only and name not in args.only:
            continue
        for row in scenarios():
            print("| " + " | ".join(row.cells()) + " |", flush=True)
    print(f"\nDay {DAY}; {os.cpu_count()} CPUs; vs bound = fetch s / (requests x latency / C), or / (requests / rate); "
          "vs sequential = wall / the sequential script's wall on the same sandbox.")


if __name__ == "__main__":
    main()
