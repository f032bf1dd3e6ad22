"""Days that still have interactions going on, so that they are fetched again until those end.

An interaction belongs to the day it was created on, but may end days later (a customer answers after a
weekend; one ended 130 hours later). The nightly look-back covers `lookback_days`; a day whose expanded
history still had unfinished interactions when last fetched is marked in
`<lake>/_open/[account=<name>/]date=D/open.json`, and the look-back schedule fetches it again too, until
none is unfinished or the day is older than `open_days_max`. The ongoing sensor stays the fast path.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .lake import Lake

FOLDER = "_open"
FILE = "open.json"


def mark(lake: Lake, day: str, unfinished: int) -> None:
    """Records whether the day, as just published, still has unfinished interactions."""
    path = f"{lake.relative(FOLDER, day)}/{FILE}"
    if unfinished:
        lake.put_json(path, {"day": day, "unfinished": unfinished,
                             "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    else:
        lake.discard(path)


def open_days_by_account(lakes: list[Lake]) -> dict[str | None, list[str]]:
    """The marked days of many accounts, by account, with one listing per lake root (a fleet's accounts
    usually share one): a marker's presence is what counts, as `mark` removes it once the day has closed."""
    wanted: dict[tuple, set] = {}
    for lake in lakes:
        wanted.setdefault((lake.fs, lake.root), set()).add(lake.account)
    found: dict[str | None, list[str]] = {}
    for (fs, root), accounts in wanted.items():
        try:
            paths = fs.find(f"{root}/{FOLDER}")
        except FileNotFoundError:
            continue
        for path in sorted(paths):
            parts = path[len(root) + len(FOLDER) + 2:].split("/")
            account = parts[0][len("account="):] if parts[0].startswith("account=") else None
            day = parts[-2][len("date="):] if len(parts) >= 2 and parts[-2].startswith("date=") else None
            if parts[-1] == FILE and day and account in accounts:
                found.setdefault(account, []).append(day)
    return found
