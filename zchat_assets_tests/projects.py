"""Copies of this project as a user's checkout would be, with the accounts or the fleet a test adds."""

import shutil
from pathlib import Path

ROOT = Path(__file__).parents[1]


def copy_project(folder: Path, unnamed: bool = True) -> Path:
    """The package and the root files a checkout has; without the unnamed account if `unnamed` is false."""
    shutil.copytree(ROOT / "zchat_assets", folder / "zchat_assets", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "workspace.yaml", "dagster.yaml"):
        shutil.copy(ROOT / name, folder)
    if not unnamed:
        shutil.rmtree(folder / "zchat_assets" / "defs" / "default")
    return folder


def fleet_project(folder: Path, accounts: int, base_url: str, lake: Path, start_date: str = "2025-01-01",
                  rate_limit: str = "null") -> Path:
    """A copy whose only component is a fleet `bpo` of `accounts` accounts (a0000, a0001, …) listed in an
    accounts_file; each account's token is in the variable A<nnnn>_TOKEN."""
    copy_project(folder, unnamed=False)
    fleet = folder / "zchat_assets" / "defs" / "fleets" / "bpo"
    fleet.mkdir(parents=True)
    (fleet / "defs.yaml").write_text(
        f"type: zchat_assets.ZchatFleet\nattributes:\n  name: bpo\n  start_date: \"{start_date}\"\n"
        f"  base_url: {base_url}\n  lake_uri: {lake}\n  rate_limit: {rate_limit}\n  accounts_file: accounts.yaml\n")
    (fleet / "accounts.yaml").write_text("".join(f"- {{name: a{n:04d}, token_env: A{n:04d}_TOKEN}}\n"
                                                 for n in range(accounts)))
    return folder
