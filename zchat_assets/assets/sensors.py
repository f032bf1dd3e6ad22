"""The ongoing sensor: snapshots the ongoing interactions and refreshes the days of those that ended.

Each tick writes the poll to the `ongoing` dataset and compares it with the previous snapshot, read
back from the lake, so the cursor holds a path and a few days, never the queue itself. Days whose
interactions left the ongoing set are refreshed at most once per REFRESH_DEBOUNCE_SECONDS.
"""

import json
from datetime import datetime, timezone

from dagster import (AssetKey, AssetMaterialization, DefaultSensorStatus, RunRequest, SensorEvaluationContext,
                     SensorResult, SkipReason, sensor)

from ..api import ZchatError
from ..lake import LakeError
from ..resources import ZchatApi, ZchatLake
from .jobs import refresh_job
from .ongoing import KEY, queue_figures, snapshot_table
from .partitions import daily_partitions, local_day

POLL_SECONDS = 60
REFRESH_DEBOUNCE_SECONDS = 600


def load_cursor(raw: str | None) -> dict:
    cursor = json.loads(raw) if raw else {}
    return {"last": cursor.get("last"), "pending": cursor.get("pending", {}), "requested": cursor.get("requested", {})}


def ended_days(previous: dict[str, datetime], current: set[str]) -> set[str]:
    """Local days (partitions) of the protocols seen last poll and gone now."""
    return {local_day(created) for protocol, created in previous.items() if protocol not in current}


@sensor(name="ongoing_sensor", job=refresh_job, minimum_interval_seconds=POLL_SECONDS,
        default_status=DefaultSensorStatus.STOPPED,
        description="Polls the ongoing endpoint every minute, stores each poll in zchat/ongoing with queue figures, "
                    "and refreshes the day of interactions that have ended.")
def ongoing_sensor(context: SensorEvaluationContext, zchat_api: ZchatApi, zchat_lake: ZchatLake):
    cursor = load_cursor(context.cursor)
    polled_at = datetime.now(timezone.utc)
    try:
        lake = zchat_lake.open()
        with zchat_api.open_client(context.log) as client:
            records = [r for page in client.ongoing_pages() for r in page]
        table = lake.privacy.apply(snapshot_table(records, polled_at))
        path = lake.add_file("ongoing", local_day(polled_at), f"poll-{polled_at:%Y%m%dT%H%M%S.%fZ}.parquet", table)
        previous = {}
        if cursor["last"]:
            old = lake.read_file(cursor["last"], columns=["protocol_id", "created_at"])
            previous = dict(zip(old.column("protocol_id").to_pylist(), old.column("created_at").to_pylist()))
    except (ZchatError, LakeError, OSError) as exc:
        return SkipReason(f"Ongoing poll skipped, cursor kept: {exc}")

    now = polled_at.timestamp()
    valid = set(daily_partitions.get_partition_keys(current_time=polled_at)[-31:])
    for day in ended_days(previous, set(table.column("protocol_id").to_pylist())):
        if day in valid:
            cursor["pending"].setdefault(day, now)
    requests = []
    for day in sorted(cursor["pending"]):
        if now - cursor["requested"].get(day, 0) >= REFRESH_DEBOUNCE_SECONDS:
            requests.append(RunRequest(run_key=f"refresh-{day}-{int(now)}", partition_key=day))
            cursor["requested"][day] = now
            del cursor["pending"][day]
    cursor["requested"] = {d: t for d, t in cursor["requested"].items() if now - t < REFRESH_DEBOUNCE_SECONDS}
    cursor["last"] = path
    event = AssetMaterialization(AssetKey(KEY), metadata={
        **queue_figures(table), "dagster/row_count": table.num_rows, "dagster/uri": lake.uri(f"{lake.root}/{path}"),
        "refreshes_requested": len(requests)})
    return SensorResult(run_requests=requests, asset_events=[event], cursor=json.dumps(cursor))
