"""The ongoing sensor: snapshots the ongoing interactions and refreshes the days of those that ended.

Each tick reads the previous snapshot back from the lake, then writes the new poll to the `ongoing`
dataset and compares the two, so the cursor holds a path and a few days, never the queue itself. A
previous snapshot that is gone or unreadable (a retention job, a lake moved elsewhere) counts as no
previous poll, so the sensor can never get stuck on it. Days whose interactions left the ongoing set
are refreshed at most once per REFRESH_DEBOUNCE_SECONDS. Once an hour, snapshot days older than the
account's `ongoing_retention_days` are deleted.
"""

import json
import time
from datetime import datetime, timedelta, timezone

from dagster import (AssetMaterialization, DefaultSensorStatus, JobDefinition, RunRequest, SensorDefinition,
                     SensorEvaluationContext, SensorResult, SkipReason, sensor)

from .. import provenance
from ..api import ZchatError
from ..api.vendor import ONGOING_FILTERS
from ..lake import LakeError
from .account import Member, Shape
from .budget import SENSOR_SHARE
from .ongoing import queue_figures, snapshot_table
from .partitions import local_day

POLL_SECONDS = 60
POLL_BUDGET_SECONDS = 25  # of a tick, for a fleet's polls: sensor evaluations time out at 60 s
# A fleet's poll of one account gives up soon (about 20 s at worst), so that a slow or failing account never
# keeps the tick past its time limit; that account is polled again at its next turn.
QUICK = dict(max_retries=1, connect_timeout=3.0, read_timeout=5.0, backoff_max_seconds=1.0, max_throttle_waits=1)
REFRESH_DEBOUNCE_SECONDS = 600
RETENTION_EVERY_SECONDS = 3600


def load_cursor(raw: str | None) -> dict:
    cursor = json.loads(raw) if raw else {}
    return {"last": cursor.get("last"), "pending": cursor.get("pending", {}), "requested": cursor.get("requested", {}),
            "expired_at": cursor.get("expired_at", 0)}


def previous_poll(lake, path: str | None, log) -> dict[str, datetime]:
    """protocol -> created_at of the previous snapshot; {} when there is none, or it is gone or unreadable."""
    if not path:
        return {}
    try:
        old = lake.read_file(path, columns=["protocol_id", "created_at"])
    except (OSError, ValueError) as exc:  # pyarrow's errors for a broken file are ValueErrors
        log.warning(f"The previous ongoing snapshot {path} cannot be read ({exc}); comparing with nothing this time.")
        return {}
    return dict(zip(old.column("protocol_id").to_pylist(), old.column("created_at").to_pylist()))


def ended_days(previous: dict[str, datetime], current: set[str], tz_name: str) -> set[str]:
    """Local days (partitions) of the protocols seen last poll and gone now."""
    return {local_day(created, tz_name) for protocol, created in previous.items() if protocol not in current}


def poll(context: SensorEvaluationContext, shape: Shape, member: Member, cursor: dict, refreshes: bool, **client):
    """One poll of one account's ongoing interactions: the snapshot written, its event, and the refresh runs of
    the days whose interactions ended. Raises what stops the poll (the API, the lake); `cursor` is updated."""
    tz_name = shape.settings.timezone
    polled_at = datetime.now(timezone.utc)
    lake = member.lake(context)
    lake.provenance = provenance.stamp(None, None, lake.origin)  # a sensor tick: no run
    previous = previous_poll(lake, cursor["last"], context.log)
    with member.open_client(context, SENSOR_SHARE, **client) as api:
        filters = member.settings.filters.params(ONGOING_FILTERS)
        records = [r for page in api.ongoing_pages(**filters) for r in page]
    table = snapshot_table(records, polled_at, member.privacy(context))
    path = lake.add_file("ongoing", local_day(polled_at, tz_name), f"poll-{polled_at:%Y%m%dT%H%M%S.%fZ}.parquet", table)

    now = polled_at.timestamp()
    if now - cursor["expired_at"] >= RETENTION_EVERY_SECONDS:
        keep_from = local_day(polled_at - timedelta(days=member.settings.ongoing_retention_days), tz_name)
        expired = lake.expire("ongoing", keep_from)
        if expired:
            context.log.info(f"Deleted {expired} day(s) of ongoing snapshots before {keep_from} (retention).")
        cursor["expired_at"] = now
    valid = set(shape.recent_days(member, polled_at))
    for day in ended_days(previous, set(table.column("protocol_id").to_pylist()), tz_name):
        if day in valid and refreshes:
            cursor["pending"].setdefault(day, now)
    requests = []
    for day in sorted(cursor["pending"]):
        if now - cursor["requested"].get(day, 0) >= REFRESH_DEBOUNCE_SECONDS:
            key = member.partition(day)
            requests.append(RunRequest(run_key=f"refresh-{key}-{int(now)}", partition_key=key,
                                       tags=shape.run_tags(member)))
            cursor["requested"][day] = now
            del cursor["pending"][day]
    cursor["requested"] = {d: t for d, t in cursor["requested"].items() if now - t < REFRESH_DEBOUNCE_SECONDS}
    cursor["last"] = path
    event = AssetMaterialization(shape.key("ongoing"), partition=shape.ongoing_partition(member), metadata={
        **queue_figures(table), "dagster/row_count": table.num_rows, "dagster/uri": lake.uri(f"{lake.root}/{path}"),
        "refreshes_requested": len(requests)})
    return requests, event


def ongoing_sensor(shape: Shape, refresh_job: JobDefinition | None) -> SensorDefinition:
    """One sensor for an account or a fleet. A fleet's accounts are polled in turn, as many as fit in a tick's
    POLL_BUDGET_SECONDS, each within its own part of its budget; one account's failure is a line of its own in
    the tick, and the others go on."""
    refreshes = "and refreshes the day of interactions that have ended" if refresh_job else "(no dataset to refresh)"
    members = shape.members

    @sensor(name=shape.named("ongoing_sensor"), job=refresh_job, minimum_interval_seconds=POLL_SECONDS,
            default_status=DefaultSensorStatus.STOPPED, required_resource_keys=shape.resource_keys(calls_api=True),
            description=f"Polls the ongoing endpoint every minute, stores each poll in "
                        f"{shape.key('ongoing').to_user_string()} with queue figures, {refreshes}.")
    def ongoing(context: SensorEvaluationContext):
        if not shape.fleet:  # an account: the cursor is its own
            cursor = load_cursor(context.cursor)
            try:
                requests, event = poll(context, shape, members[0], cursor, refresh_job is not None)
            except (ZchatError, LakeError, OSError) as exc:
                return SkipReason(f"Ongoing poll skipped, cursor kept: {exc}")
            return SensorResult(run_requests=requests, asset_events=[event], cursor=json.dumps(cursor))
        state = json.loads(context.cursor) if context.cursor else {}
        cursors, turn = state.get("accounts", {}), state.get("turn", 0) % len(members)
        requests, events, problems = [], [], []
        started = time.monotonic()
        polled = 0
        while polled < len(members) and time.monotonic() - started < POLL_BUDGET_SECONDS:
            member = members[(turn + polled) % len(members)]
            polled += 1
            cursor = load_cursor(cursors.get(member.name))
            try:
                more, event = poll(context, shape, member, cursor, refresh_job is not None, **QUICK)
            except (ZchatError, LakeError, OSError) as exc:
                problems.append(f"{member.name}: {exc}")
                context.log.warning(f"Ongoing poll of account {member.name} skipped, its cursor kept: {exc}")
                continue
            cursors[member.name] = json.dumps(cursor)
            requests.extend(more)
            events.append(event)
        cursor = json.dumps({"accounts": cursors, "turn": (turn + polled) % len(members)})
        if not events:
            return SensorResult(skip_reason=SkipReason(f"Ongoing polls skipped ({'; '.join(problems)[:1000]})"),
                                cursor=cursor)
        return SensorResult(run_requests=requests, asset_events=events, cursor=cursor)

    return ongoing
