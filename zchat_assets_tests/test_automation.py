"""Schedules and automation conditions evaluated at chosen times in the account's time zone."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from zchat_assets.assets.automation import lookback_range
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import DEFS, TOKEN, account_defs, daily_assets, fast_api, make_world, materialize_some, only

TZ = ZoneInfo("America/Sao_Paulo")
LOOKBACK = ["2026-11-16", "2026-11-17", "2026-11-18"]  # the 3 days before yesterday, seen on the 20th
INSTANCE = dg.DagsterInstance.ephemeral()


def evaluate(name: str, when: datetime):
    schedule = DEFS.get_repository_def().get_schedule_def(name)
    return schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when,
                                                            repository_def=DEFS.get_repository_def()))


def test_daily_schedule_targets_yesterday_in_the_account_time_zone():
    # 01:00 in São Paulo on the 20th is 04:00 UTC: the day to fetch is the 19th, not the 20th.
    (request,) = evaluate("daily_schedule", datetime(2026, 11, 20, 1, 0, tzinfo=TZ)).run_requests
    assert request.partition_key == "2026-11-19"


def test_lookback_rematerializes_the_days_before_yesterday_in_one_run():
    (request,) = evaluate("lookback_schedule", datetime(2026, 11, 20, 4, 30, tzinfo=TZ)).run_requests
    assert (request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"]) == (LOOKBACK[0], LOOKBACK[-1])


@pytest.mark.parametrize("now,keys,days,span", [
    (datetime(2026, 11, 20, 4, 30), ["2026-11-17", "2026-11-18", "2026-11-19"], 3, ("2026-11-17", "2026-11-18")),
    (datetime(2026, 11, 20, 4, 30), [f"2026-11-{d:02d}" for d in range(1, 20)], 1, ("2026-11-18", "2026-11-18")),
    (datetime(2026, 11, 20, 4, 30), ["2026-11-19"], 3, None),  # only yesterday exists: nothing to look back on
    (datetime(2026, 3, 1, 4, 30), [f"2026-02-{d:02d}" for d in range(1, 29)], 2, ("2026-02-26", "2026-02-27")),
])
def test_lookback_range(now, keys, days, span):
    assert lookback_range(now, keys, days) == span


def requested(cursor, when: datetime) -> tuple[dict, object]:
    result = dg.evaluate_automation_conditions(defs=DEFS, instance=INSTANCE, cursor=cursor, evaluation_time=when)
    keys = {r.key.path[-1]: sorted(r.true_subset.expensively_compute_partition_keys())
            for r in result.results if r.true_subset.size}
    return keys, result.cursor


def test_automation_requests_yesterday_at_one_and_the_lookback_at_half_past_four():
    _, cursor = requested(None, datetime(2026, 11, 20, 0, 55, tzinfo=TZ))
    nightly, cursor = requested(cursor, datetime(2026, 11, 20, 1, 5, tzinfo=TZ))
    quiet, cursor = requested(cursor, datetime(2026, 11, 20, 4, 25, tzinfo=TZ))
    lookback, cursor = requested(cursor, datetime(2026, 11, 20, 4, 35, tzinfo=TZ))
    after, _ = requested(cursor, datetime(2026, 11, 20, 4, 40, tzinfo=TZ))
    daily = {k.path[-1] for a in DEFS.assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    assert nightly == {name: ["2026-11-19"] for name in daily}  # conversations follows its inputs eagerly
    assert lookback == {name: LOOKBACK for name in daily}
    assert quiet == after == {}


def test_assets_carry_a_code_version_and_a_freshness_policy():
    for asset in DEFS.assets:
        if isinstance(asset, dg.AssetsDefinition):
            spec = next(iter(asset.specs))
            assert spec.code_version and spec.freshness_policy is not None, spec.key


def test_an_account_builds_its_freshness_policy_once(monkeypatch):
    """Dagster checks every policy it builds against a thousand ticks of its cron: once per account, not once
    per asset, or the code location's load grows with the assets of every account."""
    built = []
    cron = dg.FreshnessPolicy.cron
    monkeypatch.setattr(dg.FreshnessPolicy, "cron", lambda *a, **k: built.append(1) or cron(*a, **k))
    assert sum(len(a.keys) for a in daily_assets(account_defs())) == 9 and len(built) == 1


def test_a_day_with_interactions_still_going_on_is_fetched_again_until_they_end(tmp_path):
    """Older than the look-back, it is fetched again by the look-back schedule, one run of its own, until
    its interactions have ended (or it is older than open_days_max)."""
    day, clock = "2026-11-10", [datetime(2026, 11, 11, 9, 0, tzinfo=TZ).timestamp()]
    world = make_world()
    world._now = lambda: clock[0]
    defs = account_defs(lake_uri=str(tmp_path))
    lookback = defs.get_repository_def().get_schedule_def("lookback_schedule")

    def fetch():
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
        assert materialize_some(only("history_expanded", assets=daily_assets(defs)), resources=resources,
                                partition_key=day, instance=INSTANCE).success

    def requested() -> list:
        when = datetime(2026, 11, 20, 4, 30, tzinfo=TZ)
        return [r.partition_key or r.tags["dagster/asset_partition_range_start"]
                for r in lookback.evaluate_tick(dg.build_schedule_context(
                    scheduled_execution_time=when, repository_def=defs.get_repository_def())).run_requests]

    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        fetch()  # the morning after: some of its conversations are still going on
        assert requested() == [LOOKBACK[0], day]
        clock[0] = datetime(2026, 11, 20, 4, 0, tzinfo=TZ).timestamp()
        fetch()  # every one has ended since
        assert requested() == [LOOKBACK[0]]
