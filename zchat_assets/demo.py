"""The demo: every daily asset of one account for a few days, through Dagster, into the lake, then a summary."""

from __future__ import annotations

import os
import sys
import time

import dagster as dg

from .assets import build_account_defs
from .lake import Lake
from .settings import AccountSettings

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run(account: AccountSettings, instance: dg.DagsterInstance, first: str, last: str, scale: int) -> int:
    defs = build_account_defs(account, os.environ)
    daily = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    lake = Lake(account.lake_uri, account=account.name)
    print(f"Materializing {first} to {last} from the local sandbox ({scale} interactions a day) into "
          f"{os.path.relpath(lake.root)}; runs are recorded in {os.path.relpath(instance.root_directory)}.", flush=True)
    started = time.monotonic()
    # The account's own job, so that the UI lists the run as daily_job, as a schedule would launch it.
    result = defs.resolve_job_def("daily_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    seconds = time.monotonic() - started
    written = {key: {e.partition for e in result.get_asset_materialization_events()
                     if e.asset_key == key and e.partition} for a in daily for key in a.keys}
    print("\nWhat this run wrote:")
    print(summary(lake, written))
    checks = result.get_asset_check_evaluations()
    failed = [c.asset_check_key.to_user_string() for c in checks if not c.passed]
    print(f"\n{'Done' if result.success else 'FAILED'} in {seconds:.1f}s; {len(checks) - len(failed)}/{len(checks)} "
          f"checks passed{': failing ' + ', '.join(failed) if failed else ''}.")
    print(f"Browse the same runs and data in the Dagster UI: {own_command()} ui  (then open http://127.0.0.1:3000)")
    return 0 if result.success else 1


def own_command() -> str:
    """How the user called us, `.venv/bin/zchat-assets` as README has it, so that the hint can be pasted."""
    called = sys.argv[0]
    if os.path.basename(called) != "zchat-assets":
        return "zchat-assets"
    relative = os.path.relpath(called)
    return called if relative.startswith("..") else relative


def summary(lake: Lake, written: dict[dg.AssetKey, set[str]]) -> str:
    """Days, rows, files and megabytes of each dataset, over the days given for it."""
    rows = [("dataset", "days", "rows", "files", "MB")]
    for key, days in written.items():
        name = key.path[-1]
        parts = [lake.describe(name, day) for day in sorted(days)]
        rows.append((key.to_user_string(), str(len(parts)), f"{sum(p.rows for p in parts):,}",
                     str(sum(p.files for p in parts)), f"{sum(p.bytes for p in parts) / 1e6:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
