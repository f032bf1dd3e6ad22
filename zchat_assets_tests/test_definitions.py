"""The code location loads, and each bad setting stops it with one sentence naming the variable."""

import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from zchat_assets.definitions import defs


def test_definitions_load_with_every_asset_check_job_schedule_and_sensor():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {f"zchat/{n}" for n in ("report_by_period", "report_by_agent", "report_by_department",
                                           "report_by_channel", "report_by_tag", "history", "history_expanded",
                                           "messages", "conversations", "ongoing")}
    assert len(repo.asset_graph.asset_check_keys) == 11
    assert {s.name for s in repo.schedule_defs} == {"daily_schedule", "lookback_schedule"}
    assert {s.name for s in repo.sensor_defs} == {"ongoing_sensor"}


def test_the_token_is_read_from_the_environment_not_stored_in_config():
    api = defs.resources["zchat_api"]
    assert api.token == "ZCHAT_API_TOKEN" and type(api.token).__name__ == "EnvVar"


def load_with(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZCHAT_")}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", "import zchat_assets.definitions"], env=environment,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env,sentence", [
    ({"ZCHAT_TIMEZONE": "Mars/Olympus"}, "ZCHAT_TIMEZONE 'Mars/Olympus' is not an IANA time zone"),
    ({"ZCHAT_START_DATE": "01/02/2025"}, "ZCHAT_START_DATE '01/02/2025' is not a date"),
    ({"ZCHAT_START_DATE": (date.today() + timedelta(days=3)).isoformat()}, "is not in the past"),
    ({"ZCHAT_CONCURRENCY": "lots"}, "ZCHAT_CONCURRENCY 'lots' is not valid"),
    ({"ZCHAT_CONCURRENCY": "0"}, "ZCHAT_CONCURRENCY '0' is not valid"),
    ({"ZCHAT_RATE_LIMIT": "-5"}, "ZCHAT_RATE_LIMIT '-5' is not valid"),
    ({"ZCHAT_CONCURRENCY": "100000"}, "ZCHAT_CONCURRENCY '100000' is not valid"),
    ({"ZCHAT_BASE_URL": "http://zchat.example.com"}, "would send the token in clear text"),
    ({"ZCHAT_PERSONAL_DATA": "erase"}, "ZCHAT_PERSONAL_DATA 'erase' is not valid: use keep, hash or drop"),
    ({"ZCHAT_PERSONAL_DATA": "hash"}, "needs a secret of at least 16 characters in ZCHAT_PERSONAL_DATA_KEY"),
])
def test_bad_settings_stop_the_load_with_one_sentence(env, sentence):
    result = load_with(**env)
    assert result.returncode != 0
    assert sentence in result.stderr.strip().splitlines()[-1]
