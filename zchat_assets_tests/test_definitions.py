"""The shipped code location loads, and each bad setting stops it with one sentence naming the variable."""

import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster.components.core.load_defs import PLUGIN_COMPONENT_TYPES_JSON_METADATA_KEY
import pytest
import yaml

from zchat_assets import definitions
from zchat_assets.api.errors import missing_token
from zchat_assets.assets import build_account_defs, build_fleet_defs
from zchat_assets.component import scaffold_yaml
from zchat_assets.fleets import fleet_from_yaml
from zchat_assets.settings import DEFAULT_LAKE, SHARED_LAKE, AccountSettings, SettingsError, from_environment, named

from .conftest import START

ROOT = Path(__file__).parents[1]
DATASETS = ("report_by_period", "report_by_agent", "report_by_department", "report_by_channel", "report_by_tag",
            "history", "history_expanded", "messages", "conversations", "ongoing")


@pytest.fixture
def shipped(monkeypatch) -> dg.Definitions:
    """The project's own definitions, loaded as Dagster loads them, with no ZCHAT_* variable set."""
    for name in [n for n in os.environ if n.startswith("ZCHAT_")]:
        monkeypatch.delenv(name)
    return definitions.defs()


def test_the_shipped_account_keeps_the_single_account_keys_and_names(shipped):
    repo = shipped.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {f"zchat/{n}" for n in DATASETS}
    assert len(repo.asset_graph.asset_check_keys) == 24
    assert {s.name for s in repo.schedule_defs} == {"daily_schedule", "lookback_schedule", "vendor_retention_schedule"}
    assert {s.name for s in repo.sensor_defs} == {"ongoing_sensor", "automation_sensor"}
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {"daily_job", "refresh_day_job",
                                                                                    "vendor_retention_job"}
    assert set(shipped.resources) == {"zchat_api", "zchat_lake"}


def test_loading_keeps_the_component_tree_without_describing_every_installed_component_type(shipped):
    assert shipped.component_tree is not None
    assert PLUGIN_COMPONENT_TYPES_JSON_METADATA_KEY not in (shipped.metadata or {})  # load_from_defs_folder's catalogue


def test_the_token_is_read_from_the_environment_not_stored_in_config(monkeypatch):
    monkeypatch.setenv("ZCHAT_API_TOKEN", "a-secret")
    api = definitions.defs().resources["zchat_api"]
    assert api.token == "ZCHAT_API_TOKEN" and type(api.token).__name__ == "EnvVar"


def test_without_the_token_a_run_fails_in_a_sentence_saying_where_tokens_are_made(shipped, monkeypatch, tmp_path):
    """Not Dagster's config error before the run: ours, naming the variable, from the first API step."""
    monkeypatch.setenv("ZCHAT_LAKE_URI", str(tmp_path))
    result = definitions.defs().resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key="2026-11-18", asset_selection=[dg.AssetKey(["zchat", "history"])], raise_on_error=False)
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert missing_token("ZCHAT_API_TOKEN") in failure.step_failure_data.error.cause.message


@pytest.mark.parametrize("env,sentence", [
    ({"ZCHAT_TIMEZONE": "Mars/Olympus"}, "ZCHAT_TIMEZONE 'Mars/Olympus' is not an IANA time zone"),
    ({"ZCHAT_START_DATE": "01/02/2025"}, "ZCHAT_START_DATE '01/02/2025' is not a date"),
    ({"ZCHAT_START_DATE": (date.today() + timedelta(days=3)).isoformat()}, "is not in the past"),
    ({"ZCHAT_CONCURRENCY": "lots"}, "ZCHAT_CONCURRENCY 'lots' is not valid: use a whole number from 1 to 256"),
    ({"ZCHAT_CONCURRENCY": "0"}, "ZCHAT_CONCURRENCY '0' is not valid"),
    ({"ZCHAT_CONCURRENCY": "100000"}, "ZCHAT_CONCURRENCY '100000' is not valid"),
    ({"ZCHAT_RATE_LIMIT": "-5"}, "ZCHAT_RATE_LIMIT '-5' is not valid: use a number above 0"),
    ({"ZCHAT_LOOKBACK_DAYS": "90"}, "ZCHAT_LOOKBACK_DAYS '90' is not valid: use a whole number from 1 to 60"),
    ({"ZCHAT_BASE_URL": "http://zchat.example.com"}, "would send the token in clear text"),
    ({"ZCHAT_BASE_URL": "zchat.zenvia.io/?token=abc"}, "ZCHAT_BASE_URL 'zchat.zenvia.io/?token=***' is not an http(s) URL"),
    ({"ZCHAT_PERSONAL_DATA": "erase"}, "ZCHAT_PERSONAL_DATA 'erase' is not valid: use keep, hash or drop"),
])
def test_a_bad_variable_is_one_sentence_naming_it(env, sentence):
    with pytest.raises(SettingsError) as caught:
        from_environment(env)
    message = str(caught.value)
    assert sentence in message and message.count("\n") == 0 and message.endswith(".")


def test_hashing_without_a_secret_names_the_variable_that_should_hold_it():
    with pytest.raises(ValueError, match="at least 16 characters in ZCHAT_PERSONAL_DATA_KEY"):
        from_environment({"ZCHAT_PERSONAL_DATA": "hash"}).privacy({})
    with pytest.raises(SettingsError) as caught:
        named({"name": "acme", "personal_data": "hash", "personal_data_key_env": "ACME_KEY"}, YAML).privacy(
            {"ACME_KEY": "x"})
    assert f"in the variable named by personal_data_key_env in {YAML} (keep it" in str(caught.value)
    assert "ACME_KEY" not in str(caught.value)


@pytest.mark.parametrize("attributes,sentence", [
    ({"name": "Acme"}, "Account Acme: name 'Acme' is not valid: use text matching"),
    ({"name": "acme", "datasets": ["messages"]}, "has messages without history_expanded"),
    ({"name": "acme", "datasets": ["chats"]}, "names unknown datasets ['chats']"),
    ({"name": "acme", "filters": {"agent": ["1"]}},
     "Account acme: filters.agent is not an attribute an account has: did you mean agents?"),
    ({"name": "acme", "time_zone": "America/Sao_Paulo"},
     "Account acme: time_zone is not an attribute an account has: did you mean timezone?"),
    ({"name": "acme", "token": "tok-acme-1"},
     "Account acme: token is not an attribute an account has: did you mean token_env?"),
    ({"name": "acme", "colour": "blue"}, "Account acme: colour is not an attribute an account has; the attributes are "),
    ({"name": "acme", "timezone": "Mars/Olympus"}, "Account acme: timezone 'Mars/Olympus' is not an IANA time zone"),
])
def test_a_bad_attribute_of_a_named_account_is_one_sentence_naming_it(attributes, sentence):
    with pytest.raises(SettingsError) as caught:
        named(attributes)
    assert sentence in str(caught.value) and "tok-acme-1" not in str(caught.value)


YAML = "zchat_assets/defs/accounts/globex/defs.yaml"
PASTED = "The variable named by token_env in " + YAML


@pytest.mark.parametrize("attributes,environ,sentence", [
    # A token pasted where its variable's NAME belongs: refused at load, never echoed.
    ({"token_env": "tok-globex-1"}, {}, f"{YAML}: token_env takes the NAME of the variable that holds the token (for "
                                        "example GLOBEX_ZCHAT_TOKEN), not the token."),
    ({"token_env": "ab12.xy"}, {}, "token_env takes the NAME of the variable that holds the token"),
    ({"personal_data_key_env": "s3cr3t-key-value"}, {},
     f"{YAML}: personal_data_key_env takes the NAME of the variable that holds the hashing secret (for example "
     "GLOBEX_PERSONAL_DATA_KEY), not the hashing secret."),
])
def test_a_secret_pasted_into_a_variable_name_is_refused_without_echo(attributes, environ, sentence):
    settings = named({"name": "globex", **attributes}, YAML)
    with pytest.raises(SettingsError) as caught:
        build_account_defs(settings, environ)
    assert str(caught.value).startswith(sentence) or sentence in str(caught.value)
    assert next(iter(attributes.values())) not in str(caught.value)


@pytest.mark.parametrize("token_env,environ", [
    ("globex_token", {"globex_token": "t"}),  # a lower-case name that is set is a variable, not a token
    ("TOKGLOBEX1SECRET", {}),  # looks like a name: loads, and fails at run time without echoing it
])
def test_what_looks_like_or_is_a_variable_name_loads(token_env, environ):
    api = build_account_defs(named({"name": "globex", "token_env": token_env}, YAML), environ).resources["zchat_api_globex"]
    assert token_env not in repr(api.token_variable) and api.token_variable == f"the variable named by token_env in {YAML}"
    if not environ:
        assert api.token is None
        with pytest.raises(ValueError) as caught:
            api.open_client()
        assert str(caught.value) == missing_token(api.token_variable) and token_env not in str(caught.value)
        assert str(caught.value).startswith(f"{PASTED} is not set: generate the account's token in Zenvia Chat")


def test_yaml_attributes_override_the_environment_for_the_unnamed_account():
    settings = from_environment({"ZCHAT_TIMEZONE": "America/Manaus", "ZCHAT_CONCURRENCY": "4"}, concurrency=2)
    assert (settings.timezone, settings.concurrency, settings.lake_uri) == ("America/Manaus", 2, "./data")


def test_the_code_location_shows_the_sentence_not_a_component_tree():
    """One process, as Dagster loads the location: the last line of the error is the project's sentence."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZCHAT_")}
    result = subprocess.run([sys.executable, "-c", "from zchat_assets.definitions import defs; defs()"],
                            env={**environment, "ZCHAT_TIMEZONE": "Mars/Olympus"}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "ZCHAT_TIMEZONE 'Mars/Olympus' is not an IANA time zone: use a name such as America/Sao_Paulo.")


def lake_writers(*defs: dg.Definitions) -> dict:
    return dg.Definitions.merge(*defs).metadata


def test_the_unnamed_account_may_not_share_a_lake_with_a_named_one(tmp_path):
    lake = str(tmp_path)
    unnamed = build_account_defs(from_environment({"ZCHAT_LAKE_URI": lake}), {})
    acme = build_account_defs(named({"name": "acme", "lake_uri": lake}), {})
    globex = build_account_defs(named({"name": "globex", "lake_uri": lake}), {})
    definitions.check_lakes(lake_writers(acme, globex))  # named accounts share a lake fine
    with pytest.raises(SettingsError, match="The unnamed account .* and account acme .* both write to"):
        definitions.check_lakes(lake_writers(unnamed, acme))


def fleet_defs(lake: str, *accounts: str) -> dg.Definitions:
    fleet = fleet_from_yaml({"name": "bpo", "lake_uri": lake, "start_date": START,
                             "accounts": [{"name": a, "token_env": f"{a.upper()}_TOKEN"} for a in accounts]},
                            "defs/bpo/defs.yaml", Path("."))
    return build_fleet_defs(fleet, {})


def test_a_fleet_shares_a_lake_with_named_accounts_but_no_account_is_written_twice(tmp_path):
    lake = str(tmp_path)
    acme = build_account_defs(named({"name": "acme", "lake_uri": lake}), {})
    definitions.check_lakes(lake_writers(acme, fleet_defs(lake, "globex", "initech")))
    definitions.check_lakes(lake_writers(acme, fleet_defs(str(tmp_path / "other"), "acme")))  # another lake
    with pytest.raises(SettingsError, match="Account acme is defined twice, by account acme and fleet bpo"):
        definitions.check_lakes(lake_writers(acme, fleet_defs(lake, "globex", "acme")))
    with pytest.raises(SettingsError, match="The unnamed account .* and account globex \\(fleet bpo\\)"):
        definitions.check_lakes(lake_writers(build_account_defs(from_environment({"ZCHAT_LAKE_URI": lake}), {}),
                                             fleet_defs(lake, "globex")))


def test_no_default_points_two_accounts_at_one_folder():
    unnamed, acme = from_environment({}), named({"name": "acme"})
    assert (unnamed.lake_uri, acme.lake_uri) == (DEFAULT_LAKE, SHARED_LAKE)
    definitions.check_lakes(lake_writers(build_account_defs(unnamed, {}), build_account_defs(acme, {})))
    assert "lake_uri" not in acme.model_fields_set  # still refused, unset, outside a local instance


def test_the_scaffolded_account_is_generated_from_the_settings_model():
    """Every attribute, each with its description; uncommented, a valid account of its own."""
    text = scaffold_yaml("acme")
    for attribute, field in AccountSettings.model_fields.items():
        assert f"  # {field.description}\n" in text and (f"  {attribute}: " in text or f"  # {attribute}: " in text)
    written = yaml.safe_load(text)["attributes"]
    assert written == {"name": "acme", "token_env": "ACME_ZCHAT_TOKEN", "timezone": "America/Sao_Paulo",
                       "start_date": "2025-01-01", "lake_uri": SHARED_LAKE}
    every = yaml.safe_load(re.sub(r"^  # (\w+:)", r"  \1", text, flags=re.MULTILINE))["attributes"]
    assert set(every) == set(AccountSettings.model_fields) and named(every).name == "acme"  # every value valid


def test_the_root_dagster_yaml_keeps_the_instance_in_its_home_wherever_dagster_runs(tmp_path, monkeypatch):
    """Copied into DAGSTER_HOME as the README says, it stores runs there, not under the working folder."""
    from dagster._core.instance.ref import InstanceRef

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home)
    monkeypatch.chdir(elsewhere)

    @dg.asset
    def one() -> int:
        return 1

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert dg.materialize([one], instance=instance).success
    assert list(elsewhere.iterdir()) == [] and any(p.suffix == ".db" for p in home.rglob("*"))


@pytest.mark.parametrize("first,chosen,default,used", [
    ("", None, "system", "system"),
    ("", "mimalloc", "mimalloc", "mimalloc"),
    ("import pandas\n", None, "system", "mimalloc,system"),  # pyarrow loaded first: Python's arrays only
])
def test_arrow_allocates_from_the_system_allocator_unless_the_user_chose_another(tmp_path, first, chosen, default,
                                                                                 used):
    """Arrow's C++ code (Parquet, datasets, sorting) takes the pool the process started with, not the
    one Python sets later: the choice has to be made before pyarrow is first imported."""
    program = (f"{first}import zchat_assets.definitions, pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq\n"
               f"pq.write_table(pa.table({{'a': [str(i) * 20 for i in range(50_000)]}}), {str(tmp_path / 'x.parquet')!r})\n"
               f"ds.dataset({str(tmp_path)!r}).to_table().sort_by('a')\n"
               "pools = {p.backend_name: p.max_memory() for p in (pa.system_memory_pool(), pa.mimalloc_memory_pool())}\n"
               "print(pa.default_memory_pool().backend_name, ','.join(sorted(name for name, peak in pools.items() if peak)))")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [default, used]


ARENAS = """
import ctypes, sys, tempfile, threading
if sys.argv[1] == "import":
    import zchat_assets
barrier = threading.Barrier(8)

def work():  # eight threads allocating at once, as malloc gives each an arena when it can
    held = [bytearray(4096) for _ in range(500)]
    barrier.wait()
    held += [bytearray(4096) for _ in range(500)]
    barrier.wait()

threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r") as out:
    handle = ctypes.c_void_p(libc.fopen(out.name.encode(), b"w"))
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(out.read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas")
@pytest.mark.parametrize("imported,chosen,fewest,most", [("import", None, 1, 1), ("import", "4", 3, 4),
                                                          ("no", None, 3, 9)])  # eight threads and the main one
def test_malloc_keeps_one_arena_unless_the_user_chose_how_many(imported, chosen, fewest, most):
    """Threads side by side each keep what they freed in their own arena: the package allows one."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if chosen:
        env["MALLOC_ARENA_MAX"] = chosen
    out = subprocess.run([sys.executable, "-c", ARENAS, imported], env=env, capture_output=True, text=True, check=True)
    assert fewest <= int(out.stdout) <= most


COLLECTOR = """
import atexit, gc, sys
exec(sys.argv[1])
# Registered before the package's own handler, so it runs after it: what the collector walks at exit.
atexit.register(lambda: print(len(gc.get_objects()), gc.get_freeze_count()))
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "stop" else None)
import zchat_assets  # Dagster, pandas, pyarrow and the package
# Compiling the package's __init__ (when its bytecode is not written) may take a young collection, before it runs.
during_import = "full" if 2 in collections else len(collections)
import zchat_assets.definitions
print(gc.get_threshold()[0], gc.isenabled(), gc.get_freeze_count(), during_import)
made = [[n] for n in range(50_000)]  # what a run makes, alive at exit
"""


FAILED_IMPORT = """
import gc
from zchat_assets import collector
gc.set_threshold(700, 10, 10)
frozen = gc.get_freeze_count()
try:
    with collector.importing():
        raise ImportError("a module the package needs is missing")
except ImportError:
    pass
print(gc.isenabled(), gc.get_threshold()[0], gc.get_freeze_count() == frozen)
"""


def test_a_failed_import_leaves_the_collector_as_it_was():
    out = subprocess.run([sys.executable, "-c", FAILED_IMPORT], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "700", "True"]


@pytest.mark.parametrize("before,young,enabled,frozen", [
    ("", 10_000, True, True),
    ("gc.set_threshold(50_000, 10, 10)", 50_000, True, True),  # less often already: kept
    ("gc.disable()", 700, False, False),
])
def test_the_collector_leaves_what_import_made_alone_unless_the_process_chose_otherwise(before, young, enabled,
                                                                                       frozen):
    """No collection walks what the package's imports make, which is frozen once imported, so that the run's
    full collections do not walk it either, and at exit, so that the exit does not walk what the run made;
    young collections come every 10,000 allocations at least. A process that turned the collector off
    keeps it off."""
    out = subprocess.run([sys.executable, "-c", COLLECTOR, before], capture_output=True, text=True, check=True)
    threshold, on, frozen_at_import, during_import, walked_at_exit, frozen_at_exit = out.stdout.split()
    assert (int(threshold), on == "True") == (young, enabled) and during_import in ("0", "1")
    if frozen:
        assert int(frozen_at_import) > 100_000 and int(walked_at_exit) < 1_000
    else:
        assert int(frozen_at_import) == int(frozen_at_exit) == 0 and int(walked_at_exit) > 150_000
