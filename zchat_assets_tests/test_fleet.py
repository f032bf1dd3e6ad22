"""A fleet: many accounts behind ten assets, each account exactly its own data, failures and days its own."""

import json
import os
import threading
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pytest

from zchat_assets import open_days
from zchat_assets.assets import build_account_defs, build_fleet_defs, history, messages
from zchat_assets.assets.partitions import OutsideThePartitions
from zchat_assets.fleets import fleet_from_yaml
from zchat_assets.lake import Lake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World
from zchat_assets.settings import SettingsError, named

from .conftest import DAY, NOW, START, daily_assets, materialize_some, only
from .truth import assert_lake_matches, interactions

TOKENS = {"one": "fleet-token-one-5d1c-SECRET", "two": "fleet-token-two-8e2a-SECRET"}
SALES, SUPPORT = ["12"], ["11", "13", "14", "15"]  # departments: acme and globex share a token, split by department
FETCHED = ("history", "history_expanded", "messages", "conversations")


@pytest.fixture
def two_sandboxes():
    """Two APIs, each serving one token a world of its own."""
    worlds = {name: World(seed=40 + n, scale=60, now=lambda: NOW, account=n + 1) for n, name in enumerate(TOKENS)}
    with SandboxServer(SandboxApp(worlds["one"], TOKENS["one"], retry_after=0.05)) as one, \
            SandboxServer(SandboxApp(worlds["two"], TOKENS["two"], retry_after=0.05)) as two:
        yield {"one": one, "two": two}, worlds


def fleet(lake: str, servers: dict, **overrides) -> dict:
    """A fleet's attributes as its defs.yaml would write them: acme and globex share token one (and so its
    budget), split by department; initech has an API of its own."""
    return {"name": "bpo", "lake_uri": lake, "start_date": START, "base_url": servers["one"].url,
            "backoff_seconds": 0.01, "min_retry_after": 0.01, **overrides,
            "accounts": [{"name": "acme", "token_env": "ONE_TOKEN", "filters": {"departments": SALES}},
                         {"name": "globex", "token_env": "ONE_TOKEN", "filters": {"departments": SUPPORT}},
                         {"name": "initech", "token_env": "TWO_TOKEN", "base_url": servers["two"].url}]}


def fleet_assets(attributes: dict, environ: dict) -> list[dg.AssetsDefinition]:
    defs = build_fleet_defs(fleet_from_yaml(attributes, "zchat_assets/defs/bpo/defs.yaml", Path(".")), environ)
    return daily_assets(defs)


@pytest.fixture
def tokens(monkeypatch):
    for name, token in TOKENS.items():
        monkeypatch.setenv(f"{name.upper()}_TOKEN", token)


def materialize(assets, keys: list[str], instance=None) -> dg.ExecuteInProcessResult:
    first, last = keys[0], keys[-1]
    return materialize_some(assets, instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False,
                            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
                            if first != last else None, partition_key=first if first == last else None)


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()


def test_three_accounts_on_two_apis_each_get_exactly_their_own_data(two_sandboxes, tokens, tmp_path):
    servers, worlds = two_sandboxes
    assets = fleet_assets(fleet(str(tmp_path), servers), dict(os.environ))
    assert {k.to_user_string() for a in assets for k in a.keys} >= {f"zchat/bpo/{d}" for d in FETCHED}
    for account in ("acme", "globex", "initech"):
        result = materialize(assets, [f"{account}|{DAY}"])
        assert result.success and all(c.passed for c in result.get_asset_check_evaluations()), account
    assert_lake_matches(Lake(str(tmp_path), account="initech"), worlds["two"], DAY)
    for account, departments in (("acme", SALES), ("globex", SUPPORT)):
        lake = Lake(str(tmp_path), account=account)
        wanted = sorted(str(ix.protocol) for ix in interactions(worlds["one"], DAY) if ix.department.id in departments)
        assert sorted(lake.read("history", DAY).column("protocol_id").to_pylist()) == wanted != []
        assert sorted(lake.read("conversations", DAY).column("protocol_id").to_pylist()) == wanted
        messages = lake.read("messages", DAY)
        assert set(messages.column("protocol_id").to_pylist()) <= set(wanted)
        assert messages.num_rows == sum(lake.read("conversations", DAY).column("message_count").to_pylist()) > 0
    # One glob reads the fleet with an `account` column; no row of one account is in another.
    table = ds.dataset(tmp_path / "history", format="parquet", partitioning="hive").to_table()
    seen = {}
    for protocol, account in zip(table["protocol_id"].to_pylist(), table["account"].to_pylist()):
        seen.setdefault(protocol, set()).add(account)
    assert {a for accounts in seen.values() for a in accounts} == {"acme", "globex", "initech"}
    assert all(len(accounts) == 1 for accounts in seen.values())
    assert servers["two"].app.stats.as_dict()["by_account"].keys() == {"2"}


def test_a_wrong_token_fails_that_accounts_partitions_only(two_sandboxes, tokens, tmp_path, monkeypatch):
    servers, worlds = two_sandboxes
    monkeypatch.setenv("TWO_TOKEN", "revoked-token")
    assets = fleet_assets(fleet(str(tmp_path), servers), dict(os.environ))
    instance = dg.DagsterInstance.ephemeral()
    # One run over globex and initech (the range is their rectangle): initech's token is refused.
    result = materialize(only("history", "history_expanded", assets=assets), [f"globex|{DAY}", f"initech|{DAY}"],
                         instance)
    assert not result.success
    failure = step_failure(result)
    assert "check the variable named by token_env in zchat_assets/defs/bpo/defs.yaml, account initech" in failure
    assert "revoked-token" not in failure
    history = dg.AssetKey(["zchat", "bpo", "history"])
    done = instance.get_materialized_partitions(history)
    assert done == {f"globex|{DAY}"}
    assert Lake(str(tmp_path), account="globex").exists("history", DAY)
    assert not Lake(str(tmp_path), account="initech").exists("history", DAY)


def test_days_before_an_accounts_start_are_not_its_days(two_sandboxes, tokens, tmp_path):
    servers, _ = two_sandboxes
    attributes = fleet(str(tmp_path), servers)
    attributes["accounts"][2]["start_date"] = "2026-11-19"
    assets = fleet_assets(attributes, dict(os.environ))
    with pytest.raises(OutsideThePartitions, match="2026-11-18 is not one of account initech's days in fleet bpo, "
                                                   "which run from 2026-11-19"):
        materialize(assets, [f"initech|{DAY}"])
    with pytest.raises(OutsideThePartitions, match="nobody\\|2026-11-18 is not one of fleet bpo's partitions"):
        materialize(assets, [f"nobody|{DAY}"])
    # In a run of several days or accounts, a day before its account's start fails alone, in the same sentence,
    # with nothing fetched for it; the run's other days are written.
    result = materialize(only_history(assets), ["acme|2026-11-18", "initech|2026-11-19"])  # the rectangle
    assert not result.success and "is not one of account initech's days" in step_failure(result)
    lake = {name: Lake(str(tmp_path), account=name) for name in ("acme", "initech")}
    assert lake["acme"].exists("history", "2026-11-18") and lake["acme"].exists("history", "2026-11-19")
    assert lake["initech"].exists("history", "2026-11-19") and not lake["initech"].exists("history", "2026-11-18")


def test_an_account_that_fails_half_way_holds_up_none_of_the_others(two_sandboxes, tokens, tmp_path, monkeypatch):
    """The expanded history stops at acme's first day, on an error no day can get past: acme's messages fail at
    once, rather than after the expanded history has done every other account of the fleet."""
    servers, _ = two_sandboxes
    assets = fleet_assets(fleet(str(tmp_path), servers), dict(os.environ))
    messages_at_globex, waited = threading.Event(), []
    mark, made = open_days.mark, messages.DayMessages

    def failing_mark(lake, day, unfinished):
        if lake.account == "acme":
            raise RuntimeError("the disk went away")
        waited.append(messages_at_globex.wait(15))  # globex's expanded days wait for globex's messages to begin
        mark(lake, day, unfinished)

    class Watched(made):
        def __init__(self, lake, *args, **kwargs):
            if lake.account == "globex":
                messages_at_globex.set()
            super().__init__(lake, *args, **kwargs)

    monkeypatch.setattr(open_days, "mark", failing_mark)
    monkeypatch.setattr(messages, "DayMessages", Watched)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(only("history_expanded", "messages", assets=assets), ["acme|2026-11-17", f"globex|{DAY}"],
                         instance)
    assert waited == [True, True]
    assert not result.success and "the disk went away" in step_failure(result)
    for dataset in ("history_expanded", "messages"):
        done = instance.get_materialized_partitions(dg.AssetKey(["zchat", "bpo", dataset]))
        assert done == {"globex|2026-11-17", f"globex|{DAY}"}, dataset


def test_a_history_that_fails_half_way_at_an_account_does_not_hold_up_the_other(two_sandboxes, tokens, tmp_path,
                                                                                 monkeypatch):
    """The two histories tell each other what they listed, day by day. The history stops at acme's first day:
    the expanded history's next day of acme hears so at once, where before the two waited on each other for
    good (the history at globex for the expanded history, the expanded history at acme for the history)."""
    servers, _ = two_sandboxes
    assets = fleet_assets(fleet(str(tmp_path), servers), dict(os.environ))
    convert, failed = history.to_table, []

    def failing(page, name, **kwargs):
        if name == "history" and not failed:  # acme's first day: the step's first page of the history
            failed.append(name)
            raise RuntimeError("the disk went away")
        return convert(page, name, **kwargs)

    monkeypatch.setattr(history, "to_table", failing)
    instance, results = dg.DagsterInstance.ephemeral(), []
    run = threading.Thread(target=lambda: results.append(materialize(
        only("history", "history_expanded", assets=assets), ["acme|2026-11-17", f"globex|{DAY}"], instance)),
        daemon=True)
    run.start()
    run.join(120)
    assert results, "the two histories waited on each other"
    assert not results[0].success and "the disk went away" in step_failure(results[0])
    globex = {"globex|2026-11-17", f"globex|{DAY}"}
    assert instance.get_materialized_partitions(dg.AssetKey(["zchat", "bpo", "history"])) == globex
    assert instance.get_materialized_partitions(dg.AssetKey(["zchat", "bpo", "history_expanded"])) == \
        globex | {"acme|2026-11-17", f"acme|{DAY}"}


def only_history(assets):
    return only("history", assets=assets)


def test_a_fleet_and_a_named_account_share_a_lake(two_sandboxes, tokens, tmp_path, monkeypatch):
    servers, worlds = two_sandboxes
    monkeypatch.setenv("HOOLI_TOKEN", TOKENS["two"])
    named_defs = build_account_defs(named({"name": "hooli", "token_env": "HOOLI_TOKEN", "base_url": servers["two"].url,
                                           "lake_uri": str(tmp_path), "start_date": START}), {"HOOLI_TOKEN": "x"})
    assets = fleet_assets(fleet(str(tmp_path), servers), dict(os.environ))
    assert materialize(only_history(assets), [f"initech|{DAY}"]).success
    assert materialize_some(only_history(daily_assets(named_defs)), resources=named_defs.resources,
                            partition_key=DAY).success
    table = ds.dataset(tmp_path / "history", format="parquet", partitioning="hive").to_table()
    assert set(table["account"].to_pylist()) == {"initech", "hooli"}
    for account in ("initech", "hooli"):
        assert Lake(str(tmp_path), account=account).read("history", DAY).num_rows == len(interactions(worlds["two"], DAY))


@pytest.mark.parametrize("change,error", [
    ({"accounts": [{"name": "acme", "token_env": "A", "timezone": "America/Manaus"}]},
     "zchat_assets/defs/bpo/defs.yaml, account acme: timezone is the same for every account of a fleet"),
    ({"accounts": [{"name": "acme", "token_env": "A"}, {"name": "acme", "token_env": "B"}]},
     "account acme is listed twice"),
    ({"accounts": [{"token_env": "A"}]}, "accounts[0]: each account of accounts needs a name"),
    ({"accounts": []}, "accounts must be a list of at least one account"),
    ({"accounts": [{"name": "acme", "token_env": "A", "rate_limit": -1}]},
     "zchat_assets/defs/bpo/defs.yaml, account acme: rate_limit '-1' is not valid"),
    ({"accounts": [{"name": "acme", "token_env": "A", "time_zone": "UTC"}]}, "did you mean timezone?"),
    ({"name": "BPO!"}, "name is the fleet's name, lower-case letters"),
    ({"accounts_file": "missing.yaml"}, "a fleet lists its accounts in accounts (a list) or in accounts_file"),
])
def test_a_bad_fleet_is_one_sentence_naming_the_file_and_the_account(change, error):
    attributes = {"name": "bpo", "start_date": START, "accounts": [{"name": "acme", "token_env": "A"}], **change}
    with pytest.raises(SettingsError) as raised:
        fleet_from_yaml(attributes, "zchat_assets/defs/bpo/defs.yaml", Path("."))
    assert error in str(raised.value)


def test_accounts_file_lists_the_accounts_next_to_the_defs_yaml(tmp_path):
    (tmp_path / "accounts.yaml").write_text("".join(f"- {{name: a{n:03d}, token_env: A{n:03d}_TOKEN}}\n"
                                                    for n in range(250)))
    settings = fleet_from_yaml({"name": "bpo", "start_date": START, "rate_limit": 20, "accounts_file": "accounts.yaml"},
                               "defs/bpo/defs.yaml", tmp_path)
    assert len(settings.accounts) == 250 and settings.account("a007").rate_limit == 20
    assert settings.account("a007").token_env == "A007_TOKEN"
    with pytest.raises(SettingsError, match="accounts_file nothere.yaml cannot be read"):
        fleet_from_yaml({"name": "bpo", "accounts_file": "nothere.yaml"}, "defs/bpo/defs.yaml", tmp_path)


def fleet_defs(attributes: dict, environ: dict) -> dg.Definitions:
    return build_fleet_defs(fleet_from_yaml(attributes, "zchat_assets/defs/bpo/defs.yaml", Path(".")), environ)


def test_one_sensor_polls_the_fleets_accounts_and_one_failure_is_its_own_line(two_sandboxes, tokens, tmp_path,
                                                                              monkeypatch):
    servers, worlds = two_sandboxes
    monkeypatch.setenv("TWO_TOKEN", "revoked-token")
    defs = fleet_defs(fleet(str(tmp_path), servers), dict(os.environ))
    (sensor,) = [s for s in defs.get_repository_def().sensor_defs if s.name == "bpo_ongoing_sensor"]
    instance = dg.DagsterInstance.ephemeral()
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    assert sorted(e.partition for e in result.asset_events) == ["acme", "globex"]  # initech's token is refused
    assert {e.asset_key.to_user_string() for e in result.asset_events} == {"zchat/bpo/ongoing"}
    cursor = json.loads(result.cursor)
    assert set(cursor["accounts"]) == {"acme", "globex"}
    for account in ("acme", "globex"):
        assert Lake(str(tmp_path), account=account).days("ongoing")
    assert "revoked-token" not in result.cursor


def test_the_nightly_and_the_lookback_run_each_account_on_its_own_with_its_tag(two_sandboxes, tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    servers, _ = two_sandboxes
    attributes = fleet(str(tmp_path), servers)
    attributes["accounts"][2]["start_date"] = "2026-11-18"  # initech's first day is within the look-back
    repo = fleet_defs(attributes, {}).get_repository_def()

    def requests(schedule: str, hour: int, minute: int) -> list:
        when = datetime(2026, 11, 20, hour, minute, tzinfo=ZoneInfo("America/Sao_Paulo"))
        return repo.get_schedule_def(schedule).evaluate_tick(
            dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo)).run_requests

    nightly = requests("bpo_daily_schedule", 1, 0)
    assert [(r.partition_key, r.tags["zchat/account"]) for r in nightly] == [
        ("acme|2026-11-19", "acme"), ("globex|2026-11-19", "globex"), ("initech|2026-11-19", "initech")]
    lookback = requests("bpo_lookback_schedule", 4, 30)
    spans = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"],
              r.tags["zchat/account"]) for r in lookback]
    assert spans == [("acme|2026-11-16", "acme|2026-11-18", "acme"), ("globex|2026-11-16", "globex|2026-11-18", "globex"),
                     ("initech|2026-11-18", "initech|2026-11-18", "initech")]


def test_a_backfill_of_a_fleet_runs_in_chunks_of_one_accounts_days():
    attributes = {"name": "bpo", "start_date": START, "accounts": [{"name": n, "token_env": "T"} for n in ("a", "b")]}
    (asset, *_) = daily_assets(fleet_defs(attributes, {}))
    assert asset.backfill_policy == dg.BackfillPolicy.multi_run(7)
    partitions = asset.partitions_def
    keys = [k for k in partitions.get_partition_keys() if "2026-11-01" <= k.split("|")[1] <= "2026-11-20"]
    ranges = partitions.subset_with_partition_keys(keys).get_partition_key_ranges(partitions)
    # Dagster cuts each range in runs of at most 7 partitions, so no run holds two accounts' days.
    assert sorted((r.start, r.end) for r in ranges) == [("a|2026-11-01", "a|2026-11-20"),
                                                        ("b|2026-11-01", "b|2026-11-20")]


@pytest.mark.slow
def test_a_fleet_of_a_thousand_through_dg_and_the_dagster_cli(tmp_path):
    """`dg check defs` and `dg list defs` with a fleet of 1,000 accounts; one account's day launched with
    `dg launch --partition 'a0007|D'`, exact."""
    from argparse import Namespace

    from zchat_assets.cli import _fleet_worlds

    from .projects import fleet_project
    from .test_accounts import BIN, run, succeeded
    from .truth import message_ids, protocols

    worlds = _fleet_worlds(Namespace(fleet_prefix="tok-", seed=7, scale=40, timezone="America/Sao_Paulo",
                                     regulars=0, typing=0.0))
    with SandboxServer(SandboxApp(World(scale=1), "unused", fleet=worlds)) as server:
        project = fleet_project(tmp_path / "project", 1000, server.url, tmp_path / "lake", START)
        succeeded(run([str(BIN / "dg"), "check", "defs"], project))
        listed = succeeded(run([str(BIN / "dg"), "list", "defs", "--json"], project))
        assets = json.loads(listed.stdout[listed.stdout.index("{"):])["assets"]
        assert sorted(a["asset_key"] for a in assets) == sorted(f"zchat/bpo/{d}" for d in (
            "report_by_period", "report_by_agent", "report_by_department", "report_by_channel", "report_by_tag",
            "history", "history_expanded", "messages", "conversations", "ongoing"))
        launched = run([str(BIN / "dg"), "launch", "--assets", ",".join(f"zchat/bpo/{d}" for d in FETCHED),
                        "--partition", f"a0007|{DAY}"], project, A0007_TOKEN="tok-7")
        succeeded(launched)
        world = server.app.more_accounts["tok-7"].world
        gaps = succeeded(run([str(BIN / "zchat-assets"), "gaps", "--account", "a0007"], project, A0007_TOKEN="tok-7"))
        assert gaps.stdout.strip().startswith("No gaps recorded in")  # the fleet's account, found by its name
    lake = Lake(str(tmp_path / "lake"), account="a0007")
    assert sorted(lake.read("history", DAY).column("protocol_id").to_pylist()) == sorted(protocols(world, DAY))
    assert sorted(lake.read("messages", DAY).column("message_id").to_pylist(), key=str) == \
        sorted(message_ids(world, DAY), key=str)
    assert "tok-7" not in launched.stdout + launched.stderr


def test_the_scaffolded_fleet_loads():
    import yaml

    from zchat_assets.component import scaffold_fleet_yaml

    document = yaml.safe_load(scaffold_fleet_yaml("bpo"))
    assert document["type"] == "zchat_assets.ZchatFleet"
    fleet = fleet_from_yaml(document["attributes"], "defs/fleets/bpo/defs.yaml", Path("."))
    assert fleet.name == "bpo" and [a.name for a in fleet.accounts] == ["acme"]
