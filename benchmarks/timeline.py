"""The busy day's run as it goes: answers a half-second and the CPU of both processes, and Dagster's events.

    python benchmarks/timeline.py              # 20,000 interactions, 50 ms, C=64
    python benchmarks/timeline.py --concurrency 128

`bench.py` gives a run's totals; this shows where within the run its time went: how long before the first
request, how fast the answers come while the histories are walked and after, and what follows the last
answer. It polls the sandbox's counters (`/_sandbox/stats`) and both processes' CPU (Linux's /proc)
every half second while `dagster asset materialize` runs, then reads the run's events from its instance.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

from bench import FETCH, Sandbox, Workspace, cpu_seconds, proc_stat

TICK = 0.5


def materializing() -> int | None:
    """The pid of this process's `dagster asset materialize` child (peak.py running it, as bench.run starts it)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = proc_stat(int(pid))
        if b"materialize" in argv and fields is not None and int(fields[1]) == os.getpid():
            return int(pid)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with Sandbox(args.scale, args.latency) as sandbox:
        space = Workspace(sandbox, args.concurrency)
        try:
            watch(sandbox, space, args.latency, args.concurrency)
        finally:
            space.close()


def watch(sandbox: Sandbox, space: Workspace, latency: float, concurrency: int) -> None:
    """Runs the day while reading the counters every TICK, then prints them and the run's events."""
    ticks: list[tuple[float, int, float | None, float | None]] = []
    done = threading.Event()
    started = time.time()

    def poll() -> None:
        pid = None
        while not done.wait(TICK):
            pid = pid or materializing()
            ticks.append((time.time() - started, sandbox.stats()["requests"], sandbox.cpu(),
                          cpu_seconds(pid) if pid else None))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        wall, _, _ = space.materialize(FETCH)
    finally:
        done.set()
        poller.join()
    requests = sandbox.stats()["requests"]
    print(f"{requests:,} requests in {wall:.1f} s; the bound N x L / C is {requests * latency / concurrency:.1f} s; "
          f"answers a second at the bound: {concurrency / latency:,.0f}")
    print("seconds  answers/s  sandbox CPU  run's CPU")
    for (t0, n0, s0, r0), (t1, n1, s1, r1) in zip(ticks, ticks[1:]):
        if n1 == n0 and (n0 == 0 or n0 >= requests):
            continue
        share = [f"{(b - a) / (t1 - t0):.2f}" if a is not None and b is not None else "" for a, b in ((s0, s1), (r0, r1))]
        print(f"{t1:7.1f}  {(n1 - n0) / (t1 - t0):9,.0f}  {share[0]:>11}  {share[1]:>9}")
    print("Dagster's events (seconds from the start):")
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(space.dir / "home")) as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is not None and event.event_type_value in ("STEP_START", "ASSET_MATERIALIZATION", "STEP_SUCCESS",
                                                                "PIPELINE_SUCCESS", "PIPELINE_FAILURE"):
                key = event.asset_key.to_user_string() if event.asset_key else ""
                print(f"{record.timestamp - started:7.1f}  {event.event_type_value} {key}")
    print(f"{wall:7.1f}  the process ended")


if __name__ == "__main__":
    main()
