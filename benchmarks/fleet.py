"""The fleet benchmark: the code location's load at 1, 100 and 1,000 accounts, and a fleet's nightly run.

    python benchmarks/fleet.py                 # every row, about N minutes on 2 cores
    python benchmarks/fleet.py --only load     # some groups (load, nightly)

Each row times a fresh process, as a code server, a run worker or `dg check defs` starts one, in a copy
of this project whose `zchat_assets/defs/` holds one `ZchatFleet` of that many accounts (the unnamed
account removed). CPU and peak RSS come from the kernel's accounting of that process (`wait4`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import BIN, run

ROOT = Path(__file__).resolve().parents[1]
# What a code server does at start: load the definitions and build the snapshot it hands to the webserver.
LOAD = ("import zchat_assets.definitions as d; from dagster._core.remote_representation.external_data import "
        "RepositorySnap; repo = d.defs().get_repository_def(); RepositorySnap.from_def(repo); "
        "print(len(list(repo.asset_graph.get_all_asset_keys())))")


def project(folder: Path, accounts: int, base_url: str = "http://127.0.0.1:9", lake: str | None = None) -> Path:
    """A copy of this project whose only component is a fleet `bpo` of `accounts` accounts (a0000, a0001, …),
    listed in an accounts_file; every account's token is in the variable A<nnnn>_TOKEN."""
    shutil.copytree(ROOT / "zchat_assets", folder / "zchat_assets", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "workspace.yaml", "dagster.yaml"):
        shutil.copy(ROOT / name, folder)
    shutil.rmtree(folder / "zchat_assets" / "defs" / "default")
    fleet = folder / "zchat_assets" / "defs" / "fleets" / "bpo"
    fleet.mkdir(parents=True)
    (fleet / "defs.yaml").write_text(
        "type: zchat_assets.ZchatFleet\nattributes:\n  name: bpo\n  start_date: \"2025-01-01\"\n"
        f"  base_url: {base_url}\n  lake_uri: {lake or folder / 'lake'}\n  rate_limit: 20\n"
        "  accounts_file: accounts.yaml\n")
    (fleet / "accounts.yaml").write_text("".join(f"- {{name: a{n:04d}, token_env: A{n:04d}_TOKEN}}\n"
                                                 for n in range(accounts)))
    return folder


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


GROUPS = {"load": load_rows}


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
