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


def open_days(lake: Lake) -> list[str]:
    """The days marked as having unfinished interactions, oldest first."""
    return [day for day in lake.days(FOLDER) if lake.read_json(f"{lake.relative(FOLDER, day)}/{FILE}")]
