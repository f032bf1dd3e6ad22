"""Several accounts in one deployment: each gets exactly its own data, its own budget, its own failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pytest

from zchat_assets.assets import build_account_defs
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World
from zchat_assets.settings import SHARED_LAKE, named

from .conftest import DAY, NOW, START, account_defs, daily_assets, fast_api, materialize_some, only
from .projects import copy_project
from .truth import interactions, message_ids, protocols

BIN = Path(sys.executable).parent
TOKENS = {"acme": "acme-token-1b7e-SECRET", "globex": "globex-token-93c1-SECRET"}
FETCHED = ("history", "history_expanded", "messages")


@pytest.fixture
def two_accounts():
    """One sandbox serving two accounts, each a world of its own (seed and protocol numbers)."""
    worlds = {name: World(seed=20 + n, scale=60, now=lambda: NOW, account=n + 1) for n, name in enumerate(TOKENS)}
    app = SandboxApp(worlds["acme"], TOKENS["acme"], retry_after=0.05,
                     more_accounts={TOKENS["globex"]: worlds["globex"]})
    with SandboxServer(app) as server:
        yield server, worlds


def assert_account_matches(lake: Lake, world: World, day: str) -> None:
    history = lake.read("history", day).column("protocol_id").to_pylist()
    messages = lake.read("messages", day).column("message_id").to_pylist()
    assert sorted(history) == sorted(protocols(world, day)) and len(history) == len(set(history))
    assert sorted(messages) == sorted(message_ids(world, day)) and len(messages) == len(set(messages))


def test_two_accounts_share_a_lake_and_each_gets_exactly_its_own_data(two_accounts, tmp_path, monkeypatch):
    server, worlds = two_accounts
    for name, token in TOKENS.items():
        monkeypatch.setenv(f"{name.upper()}_TOKEN", token)
    defs = dg.Definitions.merge(*(build_account_defs(named({
        "name": name, "token_env": f"{name.upper()}_TOKEN", "base_url": server.url, "lake_uri": str(tmp_path),
        "start_date": START, "backoff_seconds": 0.01}), os.environ) for name in TOKENS))
    result = materialize_some([*daily_assets(defs), *defs.asset_checks], resources=defs.resources, partition_key=DAY,
                              instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    for name, world in worlds.items():
        assert_account_matches(Lake(str(tmp_path), account=name), world, DAY)
    # One reader over the shared lake sees both accounts, told apart by the Hive level.
    table = ds.dataset(tmp_path / "history", format="parquet", partitioning="hive").to_table()
    by_account = {a: sorted(p for p, acc in zip(table["protocol_id"].to_pylist(), table["account"].to_pylist())
                            if acc == a) for a in TOKENS}
    assert by_account == {name: sorted(protocols(world, DAY)) for name, world in worlds.items()}
    assert not set(by_account["acme"]) & set(by_account["globex"])
    assert server.app.stats.as_dict()["by_account"].keys() == {"1", "2"}


def project_with_accounts(tmp_path: Path, url: str, lake: Path) -> Path:
    """A copy of this project with two accounts scaffolded next to the unnamed one, as a user adds them."""
    project = copy_project(tmp_path / "project")
    for name in TOKENS:
        succeeded(run([str(BIN / "dg"), "scaffold", "defs", "zchat_assets.ZchatAccount", f"accounts/{name}"], project))
        yaml = project / "zchat_assets" / "defs" / "accounts" / name / "defs.yaml"
        text = yaml.read_text().replace(f"lake_uri: {SHARED_LAKE}", f"lake_uri: {lake}")
        text = text.replace('start_date: "2025-01-01"', f'start_date: "{START}"')
        yaml.write_text(text + f"  base_url: {url}\n")
    return project


def run(command: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZCHAT_")}
    environment.update(PYTHONPATH=str(cwd), DAGSTER_HOME=str(cwd), **env)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_accounts_as_components_through_dg_and_the_dagster_cli(two_accounts, tmp_path):
    server, worlds = two_accounts
    lake = tmp_path / "lake"
    project = project_with_accounts(tmp_path, server.url, lake)
    succeeded(run([str(BIN / "dg"), "check", "defs"], project))
    listed = succeeded(run([str(BIN / "dg"), "list", "defs", "--json"], project))
    assets = json.loads(listed.stdout[listed.stdout.index("{"):])["assets"]
    groups = {a["asset_key"]: a["group_name"] for a in assets}
    for name in TOKENS:
        assert {k for k, g in groups.items() if g == name} == {f"zchat/{name}/{d}" for d in (
            "report_by_period", "report_by_agent", "report_by_department", "report_by_channel", "report_by_tag",
            "history", "history_expanded", "messages", "conversations", "ongoing")}
    assert "zchat/history" in groups  # the unnamed account is still there, unchanged

    # One run over both accounts, with acme's token wrong: acme fails naming its variable, globex is exact.
    select = ",".join(f"zchat/{name}/{d}" for name in TOKENS for d in FETCHED)
    both = run([str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions", "--select", select,
                "--partition", DAY], project, ACME_ZCHAT_TOKEN="revoked", GLOBEX_ZCHAT_TOKEN=TOKENS["globex"])
    assert both.returncode != 0 and "check the variable named by token_env in zchat_assets/defs/accounts/acme/defs.yaml" \
        in both.stderr
    assert_account_matches(Lake(str(lake), account="globex"), worlds["globex"], DAY)
    assert not Lake(str(lake), account="acme").exists("history", DAY)

    fixed = succeeded(run([str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions", "--select",
                           ",".join(f"zchat/acme/{d}" for d in FETCHED), "--partition", DAY], project,
                          ACME_ZCHAT_TOKEN=TOKENS["acme"]))
    assert_account_matches(Lake(str(lake), account="acme"), worlds["acme"], DAY)
    for text in (both.stdout, both.stderr, fixed.stdout, fixed.stderr):
        assert not any(token in text for token in TOKENS.values())


GLOBEX = Path("zchat_assets/defs/accounts/globex/defs.yaml")


def project_with_globex(tmp_path: Path, attributes: str) -> Path:
    """A copy of this project with one more account, globex, whose defs.yaml has these attribute lines."""
    project = copy_project(tmp_path / "project")
    (project / GLOBEX).parent.mkdir(parents=True)
    (project / GLOBEX).write_text(f"type: zchat_assets.ZchatAccount\nattributes:\n  name: globex\n"
                                  f"  start_date: \"{START}\"\n  {attributes}\n")
    return project


@pytest.mark.slow
def test_a_misspelt_attribute_is_our_sentence_first_with_a_suggestion(tmp_path):
    checked = run([str(BIN / "dg"), "check", "defs"], project_with_globex(tmp_path, "time_zone: America/Sao_Paulo"))
    assert checked.returncode != 0
    error = (checked.stdout + checked.stderr).split("Validation failed for code location zchat_assets:")[1]
    assert error.strip().splitlines()[0] == (f"zchat_assets.settings.SettingsError: {GLOBEX.as_posix()}: time_zone is "
                                             "not an attribute an account has: did you mean timezone?")


@pytest.mark.slow
@pytest.mark.parametrize("pasted", ["TOKGLOBEX93C1SECRET", "tok-globex-93c1-SECRET"])
def test_a_token_pasted_into_token_env_leaves_no_trace(tmp_path, pasted):
    """Looking like a variable's name, it loads and the run fails; not looking like one, the load fails.
    Either way in our sentence, and the token is in no output, no file of the instance (event log, run
    storage, compute logs) and no lake."""
    project = project_with_globex(tmp_path, f"token_env: {pasted}\n  lake_uri: {tmp_path / 'lake'}")
    account = project / GLOBEX
    where = GLOBEX.as_posix()
    check = run([str(BIN / "dg"), "check", "defs"], project)
    launched = run([str(BIN / "dagster"), "asset", "materialize", "-m", "zchat_assets.definitions", "--select",
                    "zchat/globex/history", "--partition", DAY], project)
    assert launched.returncode != 0
    if pasted.isupper():
        assert check.returncode == 0, check.stderr[-2000:]
        assert f"The variable named by token_env in {where} is not set: generate the account's token" in launched.stderr
    else:
        refusal = (f"{where}: token_env takes the NAME of the variable that holds the token (for example "
                   "GLOBEX_ZCHAT_TOKEN), not the token.")
        assert check.returncode != 0 and f"SettingsError: {refusal}" in check.stdout + check.stderr
        assert refusal in launched.stderr
    outputs = [check.stdout, check.stderr, launched.stdout, launched.stderr]
    assert [i for i, text in enumerate(outputs) if pasted in text] == []
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != account]
    assert any(p.suffix == ".db" for p in files) or not pasted.isupper()  # the instance did record the run
    assert [str(p) for p in files if pasted.encode() in p.read_bytes()] == []


def test_filters_reach_the_endpoints_that_take_them(sandbox, tmp_path):
    defs = account_defs(filters={"departments": ["11"], "types": ["WHATSAPP", "TEXT"]})
    resources = {"zchat_api": fast_api(sandbox.url), "zchat_lake": ZchatLake(uri=str(tmp_path))}
    assets = only("history", "report_by_channel", assets=daily_assets(defs))
    assert materialize_some(assets, resources=resources, partition_key=DAY).success
    lake = Lake(str(tmp_path))
    history = lake.read("history", DAY).to_pylist()
    wanted = [ix for ix in interactions(sandbox.app.views.world, DAY)
              if ix.department.id == "11" and ix.media in ("WHATSAPP", "TEXT")]
    assert sorted(r["protocol_id"] for r in history) == sorted(str(ix.protocol) for ix in wanted) != []
    lines = {r["title"] for r in lake.read("report_by_channel", DAY).to_pylist()}
    assert lines <= {"WHATSAPP", "TEXT", "Total"}


@pytest.mark.parametrize("datasets,keys,jobs", [
    (["history"], {"zchat/history"}, {"daily_job", "refresh_day_job", "vendor_retention_job"}),
    (["report_by_period"], {"zchat/report_by_period"}, {"daily_job", "vendor_retention_job"}),
    (["ongoing"], {"zchat/ongoing"}, set()),
])
def test_an_account_builds_only_the_datasets_it_names(datasets, keys, jobs):
    repo = account_defs(datasets=datasets).get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} == keys
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == jobs
