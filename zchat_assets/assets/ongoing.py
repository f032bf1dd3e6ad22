"""The `ongoing` dataset: snapshots of the interactions in progress, written by the ongoing sensor."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pyarrow as pa
from dagster import AssetSpec

from ..api.vendor import ONGOING_STATES, QUEUE_STATES
from ..privacy import Privacy
from ..schemas import to_table
from .account import Shape


def ongoing_spec(account: Shape) -> AssetSpec:
    """Unpartitioned for an account; a fleet's is partitioned by account, so each account's queue is plotted apart."""
    return AssetSpec(
        key=account.key("ongoing"), group_name=account.group("monitoring"), kinds={"api", "parquet"},
        partitions_def=account.accounts if account.fleet else None,
        description="Interactions in progress (queue, ringing, talking, pending), one file per poll of the ongoing "
                    f"endpoint by `{account.named('ongoing_sensor')}`, with the poll time in `polled_at`.",
    )


def snapshot_table(records: list[dict], polled_at: datetime, privacy: Privacy | None = None) -> pa.Table:
    table = to_table(records, "ongoing", {"polled_at": polled_at}, privacy)
    since = table.column("current_state_time").to_pylist()
    seconds = [None if s is None else max(0, int((polled_at - s).total_seconds())) for s in since]
    return table.set_column(table.schema.get_field_index("state_seconds"), "state_seconds",
                            pa.array(seconds, type=pa.int64()))


def queue_figures(table: pa.Table) -> dict:
    """Numbers the UI plots over time: interactions per state, the longest queue wait, SLA overdue. The
    queue state is counted as `state_not_answered` however the API spells it."""
    current = ["NOT_ANSWERED" if s in QUEUE_STATES else s for s in table.column("current_state").to_pylist()]
    states = Counter(current)
    waits = [s for state, s in zip(current, table.column("state_seconds").to_pylist())
             if state == "NOT_ANSWERED" and s is not None]
    agents = {a for a, status in zip(table.column("agent_id").to_pylist(), table.column("agent_status").to_pylist())
              if a and status == "ONLINE"}
    return {
        "ongoing_total": table.num_rows,
        **{f"state_{s.lower()}": states.get(s, 0) for s in sorted(set(ONGOING_STATES) | set(states))},
        "oldest_queue_wait_seconds": max(waits, default=0),
        "sla_overdue": sum(1 for v in table.column("sla_overdue").to_pylist() if v),
        "agents_online": len(agents),
    }
