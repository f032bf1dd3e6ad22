"""The vendor's retention (the warning, `zchat-assets plan`) and the lake's own (`retention_days`)."""

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets import gaps, open_days, retention
from zchat_assets.assets import build_fleet_defs
from zchat_assets.assets.vendor_retention import CHECK
from zchat_assets.fleets import fleet_from_yaml
from zchat_assets.lake import Lake
from zchat_assets.plan import AccountPlan, account_report, duration, fleet_report, missing_groups
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World
from zchat_assets.settings import AccountSettings, SettingsError, named

from .conftest import DAY, START, TOKEN, account_defs, daily_assets, fast_api, make_world, materialize_some, only
from .projects import copy_project, fleet_project

D = date.fromisoformat
ALL_API = retention.API_DATASETS
TODAY = retention.today("America/Sao_Paulo")  # the clock Dagster and the check read


@pytest.mark.parametrize("day,days,lost", [
    ("2024-12-10", 730, "2026-12-10"),
    ("2024-02-29", 730, "2026-02-28"),  # a leap day: 730 days, not "the same date"
    ("2026-11-18", 1, "2026-11-19"),
])
def test_lost_on(day, days, lost):
    assert retention.lost_on(day, days) == D(lost)


@pytest.mark.parametrize("start,current,keep,days", [
    ("2026-11-01", "2026-11-04", None, ["2026-11-01", "2026-11-02", "2026-11-03"]),  # to yesterday
    ("2026-11-01", "2026-11-04", 2, ["2026-11-02", "2026-11-03"]),  # older than retention_days: not the lake's
    ("2026-11-03", "2026-11-04", 30, ["2026-11-03"]),
    ("2026-11-03", "2026-11-03", None, []),
])
def test_account_days(start, current, keep, days):
    assert retention.account_days(start, D(current), keep) == days


@pytest.mark.parametrize("published,missing", [
    ({d: {"2026-11-01", "2026-11-02"} for d in ALL_API}, {}),
    ({**{d: {"2026-11-01", "2026-11-02"} for d in ALL_API}, "messages": {"2026-11-01"}},
     {"2026-11-02": ("messages",)}),
    ({"history": {"2026-11-02"}}, {"2026-11-01": ALL_API, "2026-11-02": tuple(d for d in ALL_API if d != "history")}),
])
def test_missing_days(published, missing):
    assert retention.missing_days(["2026-11-01", "2026-11-02"], ALL_API, published) == missing


@pytest.mark.parametrize("missing,current,risky", [
    (["2024-12-10", "2025-01-05"], "2026-12-04", [("2024-12-10", "2026-12-10")]),  # the other is lost in 32 days
    (["2024-12-04"], "2026-12-04", []),  # lost today: too late to warn
    (["2025-01-03", "2024-12-05"], "2026-12-04", [("2024-12-05", "2026-12-05"), ("2025-01-03", "2027-01-03")]),
])
def test_at_risk_within_thirty_days_oldest_first(missing, current, risky):
    assert retention.at_risk(missing, D(current), 730) == [(d, D(lost)) for d, lost in risky]


@pytest.mark.parametrize("datasets,interactions,page_size,requests", [
    (("report_by_period",), 500, 10_000, 1),
    (("history",), 0, 10_000, 1),  # an empty first page ends the walk
    (("history",), 10_000, 10_000, 2),  # a full page, then the empty one
    (("history",), 10_001, 10_000, 3),
    (ALL_API, 120, 10_000, 5 + 2 + 2 + 120),
    (("history_expanded", "messages"), 250, 100, 4 + 250),
])
def test_day_requests(datasets, interactions, page_size, requests):
    assert retention.day_requests(datasets, interactions, page_size) == requests


@pytest.mark.parametrize("day,counts,expected", [
    ("2026-11-02", {"2026-11-01": 100, "2026-11-03": 200}, 150),
    ("2026-11-03", {"2026-11-03": 42, "2026-11-01": 100}, 42),  # its own history is published
    ("2026-11-09", {f"2026-11-0{n}": n for n in range(1, 8)}, 6),  # the 3 nearest before: 5, 6, 7
    ("2026-11-02", {}, None),
])
def test_interactions_near(day, counts, expected):
    assert retention.interactions_near(day, counts) == expected


@pytest.mark.parametrize("attributes,rate,words", [
    ({"rate_limit": 20}, 18, "90% of rate_limit 20"),
    ({"concurrency": 8}, 8, "no rate_limit, so concurrency 8"),
])
def test_throughput_says_its_assumption(attributes, rate, words):
    got, assumption = retention.throughput(AccountSettings(start_date=START, **attributes))
    assert got == pytest.approx(rate) and words in assumption


@pytest.mark.parametrize("seconds,text", [(40, "40 s"), (720, "12 min"), (12_000, "3 h 20 min"), (187_200, "2 d 4 h")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_missing_datasets_are_named_by_group_when_the_whole_group_is_missing():
    settings = AccountSettings(start_date=START)
    assert missing_groups(ALL_API, settings) == "reports, history, messages"
    assert missing_groups(("report_by_tag", "history_expanded"), settings) == "report_by_tag, history_expanded"


def test_retention_days_cannot_remove_what_the_lookback_fetches_again():
    with pytest.raises(SettingsError, match="retention_days '3' would remove days the nightly look-back"):
        named({"name": "acme", "retention_days": 3, "lookback_days": 3})
    assert named({"name": "acme", "retention_days": 4, "lookback_days": 3}).retention_days == 4


# -- the lake's own retention ---------------------------------------------------------------------------

def fill(lake: Lake, day: str) -> None:
    """One day of everything an account keeps by day, as the pipeline writes it."""
    table = pa.table({"protocol_id": ["1"]})
    for dataset in ("history", "messages", "ongoing"):
        lake.write_partition(dataset, day, table)
    lake.add_file("_cache/messages", day, "chunk-1.parquet", table)
    lake.add_file("_quarantine/messages", day, "part-00000.parquet", table)
    lake.put_json(f"_quarantine/{lake.relative('messages', day)}/findings.json", {})
    gaps.record(lake, day, {"1": gaps.Gap("purged", "404")}, "now")
    open_days.mark(lake, day, 1)


@pytest.mark.parametrize("account", [None, "acme"])
def test_expiry_removes_old_days_from_everything_once(lake_uri, account):
    lake = Lake(lake_uri, account)
    old, kept = (TODAY - timedelta(days=11)).isoformat(), (TODAY - timedelta(days=10)).isoformat()
    for day in (old, kept):
        fill(lake, day)
    settings = AccountSettings(start_date=START, name=account, lake_uri=lake_uri, retention_days=10,
                               datasets=["history", "history_expanded", "messages", "ongoing"])
    first, removed = retention.expire(lake, settings)
    assert first == kept
    assert removed == {"history": 1, "messages": 1, "ongoing": 1, "_quarantine/messages": 1, "_cache/messages": 1,
                       "_gaps/messages": 1, "_open": 1}
    for area in ("history", "messages", "ongoing", "_cache/messages", "_quarantine/messages"):
        assert not lake.files(area, old) and lake.files(area, kept), area
    assert gaps.recorded(lake, kept) and not gaps.recorded(lake, old)
    assert open_days.open_days_by_account([lake]) == {account: [kept]}
    assert retention.expire(lake, settings) == (kept, {})  # idempotent


def test_a_run_removes_the_days_past_retention_days_and_says_so(tmp_path):
    lake = str(tmp_path / "lake")
    with SandboxServer(SandboxApp(make_world(), TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=lake)}
        assert dg.materialize(daily_assets(account_defs()), resources=resources, partition_key=DAY).success
        later = (TODAY - timedelta(days=1)).isoformat()
        defs = account_defs(retention_days=10)
        instance = dg.DagsterInstance.ephemeral()
        result = materialize_some(only("history", assets=daily_assets(defs)), resources=resources, partition_key=later,
                                  instance=instance)
    assert result.success
    reader = Lake(lake)
    assert [d for d in retention.API_DATASETS + ("conversations",) if reader.exists(d, DAY)] == []
    assert reader.exists("history", later) and not reader.files("_cache/messages", DAY)
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(m.startswith(f"Retention: removed the days before {(TODAY - timedelta(days=10)).isoformat()} "
                            "(ZCHAT_RETENTION_DAYS 10) of account (unnamed): report_by_period 1 day(s)") for m in logs)


# -- the vendor-retention warning -------------------------------------------------------------------------

NEAR = (TODAY - timedelta(days=725)).isoformat()  # the oldest days pass 730 days within the next 5 to 30 days
AT_RISK = [(TODAY - timedelta(days=725 - n)).isoformat() for n in range(26)]  # lost within 30 days


def run_check(defs: dg.Definitions, job: str) -> tuple[dg.AssetCheckEvaluation, dg.DagsterInstance]:
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def(job).execute_in_process(instance=instance).success
    (key,) = [k for k in defs.get_repository_def().asset_graph.asset_check_keys if k.name == CHECK]
    record = instance.get_latest_asset_check_evaluation_record(key)
    return record.event.dagster_event.event_specific_data, instance


def table_rows(evaluation: dg.AssetCheckEvaluation) -> list[list[str]]:
    lines = evaluation.metadata["at_risk"].value.splitlines()[2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]


@pytest.mark.parametrize("name", [None, "acme"])
def test_missing_days_near_the_vendors_limit_are_a_warning_naming_them(tmp_path, name):
    """One old day is fetched from the sandbox: the others of the first 26 are warned about, each with its
    date of loss; later days are lost in more than 30 days."""
    lake = str(tmp_path / "lake")
    defs = account_defs(name=name, start_date=NEAR, lake_uri=lake)
    api, lake_key = (f"zchat_api_{name}", f"zchat_lake_{name}") if name else ("zchat_api", "zchat_lake")
    with SandboxServer(SandboxApp(make_world(), TOKEN)) as server:
        resources = {api: fast_api(server.url), lake_key: ZchatLake(uri=lake, account=name)}
        fetched = dg.materialize(daily_assets(defs), resources=resources, partition_key=AT_RISK[1])
    assert fetched.success
    evaluation, _ = run_check(defs, f"{name}_vendor_retention_job" if name else "vendor_retention_job")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    rows = table_rows(evaluation)
    assert [r[1] for r in rows] == [AT_RISK[0], *AT_RISK[2:]]
    assert rows[0] == [name or "(unnamed)", AT_RISK[0], ", ".join(retention.API_DATASETS),
                       (TODAY + timedelta(days=5)).isoformat()]
    assert evaluation.metadata["days_at_risk"].value == 25 and evaluation.metadata["accounts_at_risk"].value == 1


def test_a_fleet_has_one_warning_for_all_its_accounts(tmp_path):
    attributes = {"name": "bpo", "lake_uri": str(tmp_path / "lake"), "start_date": START,
                  "accounts": [{"name": "acme", "token_env": "ACME_TOKEN", "start_date": NEAR},
                               {"name": "globex", "token_env": "GLOBEX_TOKEN"}]}
    defs = build_fleet_defs(fleet_from_yaml(attributes, "zchat_assets/defs/fleets/bpo/defs.yaml", Path(".")), {})
    repo = defs.get_repository_def()
    assert [s.name for s in repo.schedule_defs if "retention" in s.name] == ["bpo_vendor_retention_schedule"]
    evaluation, _ = run_check(defs, "bpo_vendor_retention_job")
    assert {r[0] for r in table_rows(evaluation)} == {"acme"}  # globex starts in October 2026
    assert evaluation.metadata["accounts_checked"].value == 2 and evaluation.metadata["days_at_risk"].value == 26


def test_the_check_runs_on_its_schedule_and_not_in_the_daily_runs():
    defs = account_defs()
    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def("vendor_retention_schedule")
    when = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)
    result = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo))
    assert len(result.run_requests) == 1 and schedule.job_name == "vendor_retention_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    checks = {job: {k.name for k in repo.get_job(job).asset_layer.asset_graph.asset_check_keys}
              for job in ("daily_job", "refresh_day_job", "vendor_retention_job")}
    assert CHECK not in checks["daily_job"] | checks["refresh_day_job"] and checks["vendor_retention_job"] == {CHECK}
    assert {"report_matches_history", "messages_complete"} <= checks["daily_job"]


# -- the plan against a real run ---------------------------------------------------------------------------

def test_the_plan_estimates_the_requests_a_run_makes(tmp_path, capsys):
    """Seven days, three of them published; the plan prices the four others from their neighbours, then a run
    fetches them. The account keeps one department of four, so days differ (the sandbox gives every day the
    same number of interactions): the estimate is within 15% of the requests the run counted."""
    world = World(seed=11, scale=120)  # the real clock: the plan's days are the ones before today
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(7, 0, -1)]
    lake = str(tmp_path / "lake")
    settings = {"start_date": days[0], "lake_uri": lake, "filters": {"departments": ["11", "13"]}}
    defs = account_defs(**settings)
    assets = daily_assets(defs)
    instance = dg.DagsterInstance.ephemeral()
    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=lake)}
        for day in days[0], days[3], days[6]:
            assert dg.materialize(assets, resources=resources, partition_key=day, instance=instance).success
        plan = AccountPlan(AccountSettings(**settings))
        assert [d.day for d in plan.days] == [days[1], days[2], days[4], days[5]]
        missing = {days[1], days[2], days[4], days[5]}
        made = 0
        for first, last in (days[1], days[2]), (days[4], days[5]):
            run = dg.materialize(assets, resources=resources, instance=instance, tags={
                "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
            assert run.success
            made += sum(e.materialization.metadata["api_requests"].value
                        for e in run.get_asset_materialization_events()
                        if e.partition in missing and "api_requests" in e.materialization.metadata)
    assert plan.requests == pytest.approx(made, rel=0.15)
    print(f"plan: {plan.requests} requests estimated for 4 days; the run made {made}")
    assert AccountPlan(AccountSettings(**settings)).days == []


def test_plan_prints_a_table_and_a_summary(tmp_path):
    lake = str(tmp_path / "lake")
    with SandboxServer(SandboxApp(make_world(), TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=lake)}
        assert dg.materialize(daily_assets(account_defs(start_date=NEAR)), resources=resources,
                              partition_key=AT_RISK[0]).success
    text = account_report(AccountSettings(start_date=NEAR, lake_uri=lake, rate_limit=20))
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert lines[-1].startswith(f"Summary: {len(retention.account_days(NEAR, TODAY)) - 1} missing day(s), about ")
    assert lines[-1].endswith(f"the first is lost on {(TODAY + timedelta(days=6)).isoformat()}.")
    assert "Requests are an estimate" in text and "90% of rate_limit 20" in text
    assert any(line.split()[:3] == ["messages", str(len(retention.account_days(NEAR, TODAY)) - 1), f"{120 * 724:,}"]
               for line in lines)
    fleet = fleet_report("bpo", [AccountSettings(name=n, start_date=NEAR, lake_uri=lake) for n in ("acme", "globex")])
    assert fleet.splitlines()[0] == "Fleet bpo: 2 of 2 account(s) have missing days the vendor still has."


# -- the command -------------------------------------------------------------------------------------------

def plan_command(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ZCHAT_")}
    return subprocess.run([sys.executable, "-m", "zchat_assets.cli", "plan", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120, env={**environ, **env})


def test_plan_reads_the_unnamed_account_an_account_of_a_fleet_and_a_whole_fleet(tmp_path):
    project = fleet_project(tmp_path / "project", 2, "https://zchat.zenvia.io", tmp_path / "lake", start_date=NEAR,
                            rate_limit="20")
    unnamed = plan_command(project, ZCHAT_LAKE_URI=str(tmp_path / "unnamed"), ZCHAT_START_DATE=NEAR)
    one = plan_command(project, "--account", "a0001")
    fleet = plan_command(project, "--fleet", "bpo")
    assert unnamed.returncode == one.returncode == fleet.returncode == 0, unnamed.stderr + one.stderr + fleet.stderr
    days = len(retention.account_days(NEAR, TODAY))
    assert unnamed.stdout.startswith("Account (unnamed) (") and "no rate_limit, so concurrency 8" in unnamed.stdout
    assert one.stdout.startswith("Account a0001 (") and "90% of rate_limit 20" in one.stdout
    assert fleet.stdout.splitlines()[0] == "Fleet bpo: 2 of 2 account(s) have missing days the vendor still has."
    assert fleet.stdout.splitlines()[-1].startswith(f"Summary: {2 * days} missing day(s) in 2 account(s)")
    for output in unnamed, one:
        assert output.stdout.splitlines()[-1].startswith(f"Summary: {days} missing day(s), at least ")


@pytest.mark.parametrize("args,sentence", [
    (("--account", "nope"), "zchat-assets: no account named 'nope' under zchat_assets/defs/: add it with dg scaffold "
                            "defs zchat_assets.ZchatAccount accounts/nope\n"),
    (("--fleet", "bpo", "--account", "a0001"), "zchat-assets: give --account or --fleet, not both: --account names "
                                               "one account, of a fleet or not\n"),
])
def test_plan_errors_are_one_sentence(tmp_path, args, sentence):
    project = fleet_project(tmp_path / "project", 1, "https://zchat.zenvia.io", tmp_path / "lake")
    done = plan_command(project, *args)
    assert (done.returncode, done.stderr, done.stdout) == (2, sentence, "")


def test_a_bad_retention_setting_names_its_variable(tmp_path):
    done = plan_command(copy_project(tmp_path / "project"), ZCHAT_RETENTION_DAYS="2")
    assert done.returncode == 2 and done.stderr.startswith("zchat-assets: ZCHAT_RETENTION_DAYS '2' would remove days")
