"""Data-quality checks of one day, as pure functions of what was fetched or written.

Assets turn each `Check` into a Dagster asset check result; the rules live here so they can be read
and tested without Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .api.vendor import REPORT_ADDITIVE


@dataclass(frozen=True)
class Check:
    """A check's verdict on one day. A failed check of severity "error" keeps the day from being
    published; a failed "warn" is reported and the day published all the same."""

    passed: bool
    detail: str = ""
    severity: str = "error"

    @property
    def blocks(self) -> bool:
        return not self.passed and self.severity == "error"


def unique_ids(ids: pa.ChunkedArray | pa.Array, what: str) -> Check:
    """No id appears twice (that blocks the day); rows without an id are kept and flagged (a warning)."""
    nulls = ids.null_count
    duplicates = len(ids) - nulls - pc.count_distinct(ids).as_py()
    return Check(not nulls and not duplicates, f"{nulls} null and {duplicates} duplicate {what}",
                 "error" if duplicates else "warn")


def report_total(table: pa.Table, multi_label: bool) -> Check:
    """The `Total` line equals the sum of the other lines for every additive counter.

    By tag, one interaction with two tags counts in both lines, so there the sum may exceed the
    total, but no line may exceed it."""
    is_total = table.column("is_total")
    totals, lines = table.filter(is_total), table.filter(pc.invert(is_total))
    if totals.num_rows != 1:
        return Check(False, f"expected one Total line, found {totals.num_rows}", "warn")
    wrong = []
    for name in REPORT_ADDITIVE:
        total = totals.column(name)[0].as_py() or 0
        values = [v or 0 for v in lines.column(name).to_pylist()]
        ok = (sum(values) >= total and all(v <= total for v in values)) if multi_label else sum(values) == total
        if not ok:
            wrong.append(f"{name}: Total {total}, lines add up to {sum(values)}")
    return Check(not wrong, "; ".join(wrong), "warn")


def messages_complete(expected: dict[str, int | None], fetched: dict[str, int], gaps=frozenset()) -> Check:
    """Every protocol fetched, and no finished interaction with FEWER messages than the expanded record's
    counter (messages are missing), except the day's permanent `gaps` (their own check warns about them).
    MORE is reported, not an error: the counter is "messages exchanged between agent and client", so bot
    and system messages may not be in it."""
    missing = [p for p in expected if p not in fetched and p not in gaps]
    finished = [(p, n) for p, n in expected.items() if n is not None and p in fetched and p not in gaps]
    short = [f"{p} ({fetched[p]} < {n})" for p, n in finished if fetched[p] < n]
    extra = sum(1 for p, n in finished if fetched[p] > n)
    more = f"{extra} finished with more messages than the counter (bot or system messages)" if extra else ""
    if missing or short:
        return Check(False, f"{len(missing)} protocols not fetched {missing[:5]}; {len(short)} finished with fewer "
                            f"messages than the counter {short[:5]}" + (f"; {more}" if more else ""))
    return Check(True, more)


def message_gaps(gaps: dict) -> Check:
    """Conversations lost for good at the vendor (see gaps.py): published without them, and named here."""
    listed = "; ".join(f"{protocol} ({gap})" for protocol, gap in sorted(gaps.items())[:10])
    more = f"; and {len(gaps) - 10} more" if len(gaps) > 10 else ""
    return Check(not gaps, f"{len(gaps)} conversation(s) lost at the vendor: {listed}{more}" if gaps else "", "warn")
