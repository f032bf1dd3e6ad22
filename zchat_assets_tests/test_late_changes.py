"""Late changes: what each republish of a day changed, when a day settled, and a warning when a settled day
changes, against the sandbox's interactions that end days later."""

import os
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from zchat_assets import changes, retention, settled
from zchat_assets.assets import build_account_defs, build_fleet_defs
from zchat_assets.assets.partitions import local_day
from zchat_assets.changes import KEYS, Changes
from zchat_assets.fleets import fleet_from_yaml
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer
from zchat_assets.settings import AccountSettings, named

from .conftest import (DAILY, DAY, NOW, START, TOKEN, account_defs, daily_assets, fast_api, make_world, materialize_some,
                       only)

EARLY = NOW - 36 * 3600  # DAY has just ended: nine of its interactions are still going on
LATER = NOW  # they have all ended since, with more messages
AT = "2026-12-01T10:00:00+00:00"
NOTHING, ONE_CHANGED = Changes(), Changes(changed=1, examples={"changed": ["42"]})
SETTLED = {"dataset": "history", "day": DAY, "settled_at": "2026-11-25T04:30:00+00:00", "settled_age_days": 7}

SETTLE_CASES = {
    # previous record, what the re-fetch found, the day's age, lookback_days -> settled after, the check passes
    "unchanged past the look-back settles": (None, NOTHING, 4, 3, AT, True),
    "unchanged within the look-back does not": (None, NOTHING, 3, 3, None, True),
    "a change past the look-back does not": (None, ONE_CHANGED, 9, 3, None, True),
    "a settled day stays settled": (SETTLED, NOTHING, 9, 3, SETTLED["settled_at"], True),
    "a settled day that changes warns": (SETTLED, ONE_CHANGED, 9, 3, None, False),
    "a comparison that failed changes nothing": (SETTLED, Changes(error="OSError: gone"), 9, 3,
                                                 SETTLED["settled_at"], True),
}


@pytest.mark.parametrize("previous, found, age, lookback, settled_at, passes", SETTLE_CASES.values(),
                         ids=SETTLE_CASES.keys())
def test_the_settled_rule(previous, found, age, lookback, settled_at, passes):
    record, check = settled.settle(previous, "history", DAY, found, age, lookback, AT)
    assert record["settled_at"] == settled_at and check.passed == passes and check.severity == "warn"
    if not passes:
        assert check.detail == (f"history {DAY} changed 9 days after it, though it had settled on "
                                f"{SETTLED['settled_at']}: rows 0 added; 0 removed; 1 changed (42)")


def truth(old, new, key: tuple[str, ...]) -> tuple[int, int, int]:
    """Rows added, removed and changed between two published versions, row by row in plain Python: a row
    without a full key is known by its content."""

    def keyed(table) -> dict:
        rows = defaultdict(list)
        for row in table.to_pylist():
            k = tuple(row[c] for c in key)
            rows[k if None not in k else ("content", repr(row))].append(row)
        return rows

    before, after = keyed(old), keyed(new)
    added = sum(max(len(rows) - len(before.get(k, [])), 0) for k, rows in after.items())
    removed = sum(max(len(rows) - len(after.get(k, [])), 0) for k, rows in before.items())
    changed = sum(a != b for k in before.keys() & after.keys() for a, b in zip(before[k], after[k]))
    return added, removed, changed


def figures(result, asset: str, partition: str = DAY) -> dict:
    (event,) = [e.materialization for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == asset and e.partition == partition] or [None]
    return {k: v.value for k, v in event.metadata.items()}


def late_checks(result) -> dict:
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == settled.CHECK}


@pytest.fixture
def clock():
    """A sandbox whose clock the test moves on, from EARLY."""
    now = [EARLY]
    world = make_world()
    world._now = lambda: now[0]
    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        yield server, now


def test_each_republish_records_what_changed_and_a_settled_day_that_changes_warns(clock, lake_uri):
    server, now = clock
    lake = Lake(lake_uri)
    resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=lake_uri)}
    datasets = [k.path[-1] for a in DAILY for k in a.keys]

    def run():
        result = materialize_some(DAILY, resources=resources, partition_key=DAY,
                                  instance=dg.DagsterInstance.ephemeral())
        assert result.success  # the warning never blocks a day
        return result

    first = run()
    for dataset in datasets:  # a first version is no republish: nothing to compare, nothing settled
        found = figures(first, f"zchat/{dataset}")
        assert "rows_added" not in found and found["settled"] is False and found["day_age_days"] > 3
    second = run()  # the same world: nothing new, and DAY is older than lookback_days (3)
    for dataset in datasets:
        found = figures(second, f"zchat/{dataset}")
        assert (found["rows_added"], found["rows_removed"], found["rows_changed"]) == (0, 0, 0), dataset
        assert found["settled"] is True and found["changes_seconds"] >= 0
        assert lake.read_json(settled.path(lake, dataset, DAY))["settled_at"]
    assert all(check.passed for check in late_checks(second).values())

    before = {d: lake.read(d, DAY) for d in datasets}
    now[0] = LATER  # interactions that were going on have ended, with more messages
    third = run()
    warned = late_checks(third)
    changed = set()
    for dataset in datasets:
        found = figures(third, f"zchat/{dataset}")
        expected = truth(before[dataset], lake.read(dataset, DAY), KEYS[dataset])
        assert (found["rows_added"], found["rows_removed"], found["rows_changed"]) == expected, dataset
        record = lake.read_json(settled.path(lake, dataset, DAY))
        if any(expected):
            changed.add(dataset)
            assert found["settled"] is False and record["settled_at"] is None and record["last_change"]["rows_changed"] \
                == expected[2]
            check = warned[dataset]
            assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
            failure = check.metadata["failures"].value
            assert failure.startswith(f"{DAY}: {dataset} {DAY} changed") and "though it had settled on" in failure
        else:
            assert warned[dataset].passed and record["settled_at"]
    assert {"history", "history_expanded", "messages", "conversations", "report_by_period"} <= changed
    messages = figures(third, "zchat/messages")
    assert messages["rows_added"] > 0 and "/" in messages["late_changes"]  # named protocol/message


TOKEN_ENV = "ACME_ZCHAT_TOKEN"
FETCH = ("history_expanded", "messages")


def named_assets(url: str, lake: str, lookback_days: int = 3):
    defs = build_account_defs(named({"name": "acme", "token_env": TOKEN_ENV, "base_url": url, "lake_uri": lake,
                                     "start_date": START, "backoff_seconds": 0.01, "lookback_days": lookback_days}),
                              {TOKEN_ENV: TOKEN})
    return only(*FETCH, assets=daily_assets(defs)), defs.resources, DAY


def fleet_assets(url: str, lake: str, lookback_days: int = 3):
    attributes = {"name": "bpo", "lake_uri": lake, "start_date": START, "base_url": url, "backoff_seconds": 0.01,
                  "lookback_days": lookback_days, "accounts": [{"name": "acme", "token_env": TOKEN_ENV}]}
    defs = build_fleet_defs(fleet_from_yaml(attributes, "zchat_assets/defs/bpo/defs.yaml", Path(".")), dict(os.environ))
    return only(*FETCH, assets=daily_assets(defs)), {}, f"acme|{DAY}"


@pytest.mark.parametrize("shape", [named_assets, fleet_assets], ids=["named account", "fleet"])
def test_a_named_account_and_a_fleet_settle_and_warn_per_account(shape, clock, tmp_path, monkeypatch):
    server, now = clock
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assets, resources, partition = shape(server.url, str(tmp_path))
    lake = Lake(str(tmp_path), account="acme")
    run = lambda: materialize_some(assets, resources=resources, partition_key=partition,
                                   instance=dg.DagsterInstance.ephemeral())
    run(), run()
    assert lake.read_json(settled.path(lake, "history_expanded", DAY))["settled_at"]
    assert (tmp_path / "_changes" / "history_expanded" / "account=acme" / f"date={DAY}" / "changes.json").exists()
    now[0] = LATER
    result = run()
    assert result.success
    check = late_checks(result)["history_expanded"]
    assert not check.passed and check.metadata["failures"].value.startswith(f"{partition}: history_expanded {DAY}")
    key = next(k for k in assets.selection if k.path[-1] == "history_expanded").to_user_string()
    assert figures(result, key, partition)["rows_changed"] > 0


def test_a_day_still_inside_the_look_back_does_not_settle(clock, tmp_path):
    server, now = clock
    lookback = settled.age_days(DAY, "America/Sao_Paulo")  # the day's age: not past the look-back
    assets = only("history_expanded", assets=daily_assets(account_defs(lookback_days=lookback)))
    resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
    run = lambda: materialize_some(assets, resources=resources, partition_key=DAY, instance=dg.DagsterInstance.ephemeral())
    run()
    assert figures(run(), "zchat/history_expanded")["settled"] is False
    now[0] = LATER
    result = run()
    assert figures(result, "zchat/history_expanded")["rows_changed"] > 0 and late_checks(result)["history_expanded"].passed


def test_a_comparison_that_fails_never_holds_up_the_day(clock, tmp_path, monkeypatch):
    server, now = clock
    assets = only("history_expanded")
    resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
    run = lambda: materialize_some(assets, resources=resources, partition_key=DAY, instance=dg.DagsterInstance.ephemeral())
    run()

    def broken(batch):
        raise MemoryError("no room for the hashes")

    monkeypatch.setattr(changes, "row_hashes", broken)
    now[0] = LATER
    result = run()
    found = figures(result, "zchat/history_expanded")
    assert result.success and found["late_changes_error"] == "MemoryError: no room for the hashes"
    assert "rows_changed" not in found and late_checks(result)["history_expanded"].passed
    published = Lake(str(tmp_path)).read("history_expanded", DAY, columns=["end_time"])
    assert published.column("end_time").null_count == 0  # the new version, with every interaction ended


def test_the_lake_retention_removes_a_day_s_records_with_it(tmp_path):
    lake = Lake(str(tmp_path))
    today = date.fromisoformat(local_day(datetime.now(timezone.utc), "America/Sao_Paulo"))
    old, kept = (today - timedelta(days=11)).isoformat(), (today - timedelta(days=10)).isoformat()
    for day in (old, kept):
        settled.record(lake, "history", day, NOTHING, 11, 3)
    removed = retention.expire(lake, AccountSettings(start_date=START, lake_uri=str(tmp_path), retention_days=10))[1]
    assert removed == {"_changes/history": 1}
    assert lake.read_json(settled.path(lake, "history", old)) is None
    assert lake.read_json(settled.path(lake, "history", kept))["settled_at"]
