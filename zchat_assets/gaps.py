"""Conversations lost for good at the vendor: recorded per protocol, never retried as an outage.

A protocol whose `/messages` the API says is not there (HTTP 404, in the status or in the body), or a
finished conversation that stays short of its `messages` counter when asked again minutes later, is a
fact about that protocol, not something a retry fixes now. It must not keep its day out of the lake:
the day is published with every other message, a warning check names the gaps, and they are written to
`<lake>/_gaps/messages/[account=<name>/]date=D/gaps.json`, which `zchat-assets gaps` lists. Gaps are
never cached, so every later run of the day (the look-back) asks for them again, in case they come back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .lake import Lake

FOLDER = "_gaps/messages"
FILE = "gaps.json"


@dataclass(frozen=True)
class Gap:
    kind: str  # "purged" (the API says the conversation is not there) or "short" (fewer messages than its counter)
    detail: str  # what the API answered, or how many messages came against the counter

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def record(lake: Lake, day: str, gaps: dict[str, Gap], fetched_at: str) -> None:
    """Writes the day's gaps as found by the run that published it (none: the record is removed)."""
    path = f"{lake.relative(FOLDER, day)}/{FILE}"
    if not gaps:
        lake.discard(path)
        return
    lake.put_json(path, {"day": day, "fetched_at": fetched_at,
                         "gaps": {protocol: asdict(gap) for protocol, gap in sorted(gaps.items())}})


def forget(lake: Lake, day: str, protocols: set[str]) -> None:
    """Removes protocols from the day's record (their interactions were erased with `--delete`)."""
    path = f"{lake.relative(FOLDER, day)}/{FILE}"
    found = lake.read_json(path)
    if found and set(found.get("gaps", {})) & protocols:
        kept = {p: Gap(**g) for p, g in found["gaps"].items() if p not in protocols}
        record(lake, day, kept, found.get("fetched_at"))


def recorded(lake: Lake, day: str) -> dict[str, Gap]:
    """The gaps the last published run of the day found."""
    found = lake.read_json(f"{lake.relative(FOLDER, day)}/{FILE}") or {}
    return {protocol: Gap(**gap) for protocol, gap in found.get("gaps", {}).items()}


def days(lake: Lake) -> list[str]:
    """The days that have gaps on record."""
    return lake.days(FOLDER)
