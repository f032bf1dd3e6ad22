"""Runs whose process is gone: marked failed, and the concurrency slots they held given back.

A run started by `dg launch` or `dagster asset materialize` runs inside that command's process. Killed
(`kill -9`, a closed laptop, a machine that rebooted), it stays STARTED in the instance for good, and keeps
its step's slot of the account's pool: the next run of the account then waits for that slot forever. With
the daemon, runs are launched through the code server, which reports a dead run as failed, and run
monitoring frees its slots (`free_slots_after_run_end_seconds` in the instance's `dagster.yaml`). Without
it, `zchat-assets recover` does the same for the runs of a local instance, which all ran on this machine:
a run is dead when the process that wrote its last event is not running any more.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.dagster_run import DagsterRun

UNFINISHED = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def process_started(pid: int) -> float | None:
    """When a process of this machine started (epoch seconds), or None when there is no such process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # someone else's process: alive
        pass
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return 0.0  # alive, start unknown (not Linux)


def last_pid(instance: DagsterInstance, run: DagsterRun) -> int | None:
    """The process that wrote the run's latest event."""
    pids = [entry.dagster_event.pid for entry in instance.all_logs(run.run_id)
            if entry.dagster_event is not None and entry.dagster_event.pid]
    return pids[-1] if pids else None


def dead(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Its process is gone, or the pid is now another process's (started after the run)."""
    record = instance.get_run_record_by_id(run.run_id)
    pid = last_pid(instance, run)
    if pid is None or record is None or not record.start_time:
        return False  # queued or starting: nothing to judge yet
    started = process_started(pid)
    return started is None or (started > 0 and started > record.start_time + 1)


def recover(instance: DagsterInstance, run_ids: list[str] | None = None, local: bool = True) -> list[str]:
    """Marks failed the dead runs (of `run_ids`, or all) and frees their slots; returns a line for each. On an
    instance that is not `local` the runs of other machines cannot be judged: `run_ids` are taken as dead."""
    runs = instance.get_runs(RunsFilter(run_ids=run_ids, statuses=UNFINISHED) if run_ids
                             else RunsFilter(statuses=UNFINISHED))
    lines = []
    for run in runs:
        if local and not dead(instance, run):
            continue
        freed = 0
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            freed = sum(1 for pool in storage.get_concurrency_keys()
                        for slot in storage.get_concurrency_info(pool).claimed_slots if slot.run_id == run.run_id)
            storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_engine_event(f"Marked failed by zchat-assets recover on "
                                     f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC: its process is gone.", run)
        instance.report_run_failed(run)
        lines.append(f"{run.run_id}  {run.job_name}  was {run.status.value}: marked failed, {freed} slot(s) freed")
    return lines
