"""The API's JSON changing under us: a new field is kept, numeric text is coerced, words in a known
field stop the day with one sentence and leave the previous partition whole."""

import json
import shutil

import dagster as dg
import pytest

from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import DAY, TOKEN, fast_api, make_world, materialize_some, only

FETCH = ("history", "history_expanded", "messages")


def fetch(server, lake_path, names=FETCH) -> dg.ExecuteInProcessResult:
    resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(lake_path))}
    assets = only(*names)
    return materialize_some(assets, resources=resources, partition_key=DAY, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)


def root_error(result) -> str:
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    while error.cause:
        error = error.cause
    return error.message


@pytest.fixture
def app():
    app = SandboxApp(make_world(), TOKEN)
    with SandboxServer(app) as server:
        app.url = server.url
        yield app


def test_a_new_field_is_kept_and_nothing_breaks(app, tmp_path):
    app.schema_changes = ("new_field",)
    assert fetch(app, tmp_path).success
    lake = Lake(str(tmp_path))
    for dataset in ("history", "history_expanded"):
        extras = lake.read(dataset, DAY).column("extra_json").to_pylist()
        assert all(json.loads(e)["satisfaction"] == {"score": 5, "comment": "atendimento ótimo"} for e in extras)
    raws = lake.read("messages", DAY).column("raw_json").to_pylist()
    assert raws and all(json.loads(r)["satisfaction"]["score"] == 5 for r in raws)


def test_numbers_sent_as_text_are_coerced_to_the_same_values(app, tmp_path):
    assert fetch(app, tmp_path / "plain").success
    app.schema_changes = ("number_as_text",)
    assert fetch(app, tmp_path / "text").success
    plain, text = Lake(str(tmp_path / "plain")), Lake(str(tmp_path / "text"))
    for dataset in ("history", "history_expanded"):
        assert text.read(dataset, DAY).sort_by("protocol_id").equals(plain.read(dataset, DAY).sort_by("protocol_id"))


@pytest.mark.parametrize("dataset, column", [("history_expanded", "queued_time"), ("messages", "created_at")])
def test_words_in_a_known_field_fail_in_one_sentence_and_keep_the_previous_day(app, tmp_path, dataset, column):
    assert fetch(app, tmp_path).success
    lake = Lake(str(tmp_path))
    before = lake.read(dataset, DAY)
    shutil.rmtree(tmp_path / "_cache")  # messages of ended conversations would come from there, unchanged
    app.schema_changes = ("text_in_number",)
    result = fetch(app, tmp_path, [dataset])
    assert not result.success
    message = root_error(result)
    assert f"{dataset}.{column}" in message and "'n/a'" in message and "was not written" in message
    assert lake.read(dataset, DAY).equals(before)
    assert [p.name for p in (tmp_path / dataset / f"date={DAY}").iterdir() if not p.name.startswith("part-")] == []
