"""How every daily asset runs: one `produce(day)` per partition of the run, then the right events.

A run may cover one day (a schedule, a click) or a range (a backfill), of one account or, in a fleet,
of several.
Dagster records a ranged run's `MaterializeResult` once for every day of the range, and downstream
steps need that result; so for ranges the asset yields a short text-only result first and then one
`AssetMaterialization` per day with that day's own figures, which makes each day's latest event the
right one and keeps the plots free of summary points. If a day fails, the days already written
are still recorded before the error propagates.

`api_days` is the same for assets that call the API: it opens each account's lake (probed before any
request) and client, and adds each day's request figures to that day's metadata.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetKey,
                     AssetMaterialization, Failure, MaterializeResult)

from ..api import ApiUnavailableError, BadRequestError, GoneError, ZchatClient
from ..schemas import SchemaError
from ..lake import STAGING, STALE_STAGING_SECONDS, DayRejected, Lake, LakeError
from .. import message_cache, provenance, retention, settled
from ..changes import Changes
from ..quality import Check
from .account import Member, Shape
from .metadata import ApiMeter
from .partitions import Day


# What one day can fail with while the other days of a range still can succeed: an outage that outlasted the
# retries, a value of another type, a refused request, a failed write, a stale or missing input (Failure).
# A rejected token, a wrong URL or an unwritable lake fail every day of the account alike: they stop the
# account's days at once (the run's, when it is the only account of the run).
DAY_FAULTS = (ApiUnavailableError, BadRequestError, GoneError, SchemaError, LakeError, FileNotFoundError, Failure)


@dataclass
class DayOutcome:
    metadata: dict
    checks: dict[str, Check] = field(default_factory=dict)
    changes: Changes | None = None  # what the published day changed against the version it replaced


# Datasets of one step run side by side (`interactions.py`): each opens the account's lake, which may claim
# it and sweeps it, one at a time.
_OPENING = threading.Lock()


def api_days(context: AssetExecutionContext, shape: Shape, key: AssetKey,
             produce: Callable[[Member, Day, ZchatClient, Lake], DayOutcome],
             done_with: Callable[[Member], None] | None = None) -> Iterator:
    """`run_days` for assets that call the API: each account's lake (probed before any request) and client
    are opened once for its days, and each day's request figures join its metadata. `done_with(member)` is
    told when the asset is done with an account's days, whether they succeeded or not."""

    @contextmanager
    def session(member: Member):
        try:
            with _OPENING:
                lake = member.lake(context)
                housekeeping(context, member, lake)
            with member.open_client(context) as client:
                meter = ApiMeter(client)
                lake.provenance = stamp(context, key, lake, meter.requests)

                def metered(day: Day) -> DayOutcome:
                    meter.start()
                    outcome = late_changes(key, member, lake, day, produce(member, day, client, lake))
                    outcome.metadata.update(meter.figures())
                    return outcome

                yield metered
        finally:
            if done_with is not None:
                done_with(member)

    yield from run_days(context, shape, key, session)


def lake_days(context: AssetExecutionContext, shape: Shape, key: AssetKey,
              produce: Callable[[Member, Day, Lake], DayOutcome]):
    """`run_days` for assets built from the lake alone."""

    @contextmanager
    def session(member: Member):
        lake = member.lake(context)
        lake.provenance = stamp(context, key, lake)
        yield lambda day: late_changes(key, member, lake, day, produce(member, day, lake))

    yield from run_days(context, shape, key, session)


def late_changes_spec(key: AssetKey) -> AssetCheckSpec:
    return AssetCheckSpec(settled.CHECK, asset=key, description=settled.CHECK_DESCRIPTION)


def late_changes(key: AssetKey, member: Member, lake: Lake, day: Day, outcome: DayOutcome) -> DayOutcome:
    """A published day's late-change figures and its `late_changes` check (settled.py)."""
    figures, check = settled.record(lake, key.path[-1], day.key, outcome.changes,
                                    settled.age_days(day.key, member.settings.timezone), member.settings.lookback_days)
    outcome.metadata.update(figures)
    outcome.checks[settled.CHECK] = check
    return outcome


def stamp(context: AssetExecutionContext, key: AssetKey, lake: Lake, requests=None):
    """The provenance every file of the asset carries: its run, the asset's code version, the lake's origin."""
    code_version = context.assets_def.code_versions_by_key.get(key)
    return provenance.stamp(context.run.run_id, code_version, lake.origin, requests)


def housekeeping(context: AssetExecutionContext, member: Member, lake: Lake) -> None:
    """Staging files of killed runs, and message-cache chunks past the account's retention, by age; and the
    days older than the lake's own `retention_days`, from everything the account keeps by day."""
    staged = lake.sweep(STAGING, STALE_STAGING_SECONDS)
    cached = message_cache.expire(lake, member.settings.cache_retention_days)
    if staged or cached:
        context.log.info(f"Housekeeping: deleted {staged} stale staging file(s) and {cached} message-cache chunk(s).")
    kept_from, removed = retention.expire(lake, member.settings)
    if removed:
        context.log.info(f"Retention: removed the days before {kept_from} ({member.settings.setting('retention_days')}"
                         f" {member.settings.retention_days}) of account {member.name or '(unnamed)'}: "
                         + ", ".join(f"{area} {days} day(s)" for area, days in removed.items()) + ".")


def run_days(context: AssetExecutionContext, shape: Shape, asset: AssetKey, session) -> Iterator:
    """Every day of the run for one asset, account by account: `session(member)` opens what an account's days need and
    gives the function that produces one day. What stops an account (a rejected token, a wrong URL, an
    unwritable lake) stops the run when it is the run's only account; in a run of several accounts it fails
    that account's days and the others go on."""
    work, refused = shape.work(context)
    several = sum(len(days) for _, days in work) + len(refused) > 1
    done: list[tuple[str, DayOutcome]] = []  # by partition key
    rejected: list[tuple[str, DayRejected]] = []
    failed: list[tuple[str, Exception]] = list(refused)
    label = asset.to_user_string()
    for key, problem in refused:
        context.log.error(f"{label} {key}: {problem}")
    try:
        for member, days in work:
            settled: set[str] = set()  # the account's days done, rejected or failed so far
            try:
                with session(member) as produce:
                    for day in days:
                        key = member.partition(day.key)
                        started = time.monotonic()
                        try:
                            outcome = produce(day)
                        except DayRejected as rejection:  # not published; the other days of the run go on
                            context.log.error(str(rejection))
                            rejected.append((key, rejection))
                            settled.add(key)
                            continue
                        except DAY_FAULTS as exc:  # this day's trouble (an outage past the retries, a bad value)
                            if not several:
                                raise
                            context.log.error(f"{label} {key} failed: {exc}")
                            failed.append((key, exc))
                            settled.add(key)
                            continue
                        outcome.metadata["seconds"] = round(time.monotonic() - started, 3)
                        done.append((key, outcome))
                        settled.add(key)
            except Exception as exc:
                if len(work) == 1:
                    raise
                # This account's trouble only (its token, its lake): its days fail, the other accounts go on.
                left = [member.partition(d.key) for d in days if member.partition(d.key) not in settled]
                context.log.error(f"{label}: account {member.name} failed ({exc}); {len(left)} of its day(s) are "
                                  "not published, the other accounts go on.")
                failed.extend((key, exc) for key in left)
    except Exception:  # what no day can get past (a rejected token, a wrong URL): the days done stay recorded
        if several:
            for key, outcome in done:
                context.log_event(AssetMaterialization(asset, partition=key, metadata=outcome.metadata))
        raise
    audited = [*done, *((key, DayOutcome({}, r.checks)) for key, r in rejected)]
    missing = rejected or failed
    if not several and done:
        yield MaterializeResult(asset_key=asset, metadata=done[0][1].metadata)
    elif several and done and not missing:
        # Dagster records this result once for every day of the range, before each day's own event (so not
        # when a day is missing: it would show as materialized); it holds text only, so that it never adds a
        # point to the per-day plots.
        yield MaterializeResult(asset_key=asset, metadata={"run": f"{len(done)} days, {done[0][0]} to {done[-1][0]}; "
                                                 "each day's own figures follow in its next event"})
    # Checks before the per-day events: Dagster compares a check's data version with the latest event.
    yield from _check_results(asset, audited)
    if several:
        for key, outcome in done:
            yield AssetMaterialization(asset, partition=key, metadata=outcome.metadata)
    if missing:
        first = str(rejected[0][1]) if rejected else f"{failed[0][0]} failed: {failed[0][1]}"
        others = len(rejected) + len(failed) - 1
        more = f" ({others} more day(s) not published: see the log)" if others else ""
        metadata = {"rejected_days": ", ".join(key for key, _ in rejected),
                    "failed_days": ", ".join(key for key, _ in failed)}
        if rejected:
            metadata["quarantine"] = rejected[0][1].quarantine
        raise Failure(description=first.rstrip(".") + more + ".", metadata=metadata)


def _check_results(asset: AssetKey, done: list[tuple[str, DayOutcome]]) -> Iterator[AssetCheckResult]:
    """One result per check over the run's days; a failure is an error if it kept a day unpublished."""
    names = {name for _, outcome in done for name in outcome.checks}
    for name in sorted(names):
        checked = [(key, o.checks[name]) for key, o in done if name in o.checks]  # a rejected day has no late_changes
        failed = [(key, check.detail) for key, check in checked if not check.passed]
        blocked = any(check.blocks for _, check in checked)
        metadata = {"days_checked": len(checked), "days_failed": len(failed)}
        if failed:
            metadata["failures"] = "\n".join(f"{key}: {detail}" for key, detail in failed[:20])
        yield AssetCheckResult(asset_key=asset, check_name=name, passed=not failed, metadata=metadata,
                               severity=AssetCheckSeverity.ERROR if blocked else AssetCheckSeverity.WARN)
