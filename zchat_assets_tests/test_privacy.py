"""Personal data (LGPD): keep, hash or drop, in every dataset, raw JSON included."""

import json

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets import schemas
from zchat_assets.lake import Lake
from zchat_assets.privacy import Privacy, PrivacyError
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer

from .conftest import ALL, DAY, TOKEN, fast_api, make_world
from .truth import interactions

KEY = "a-secret-of-at-least-16-chars"


def materialize(server, lake_path, mode, key=None):
    resources = {"zchat_api": fast_api(server.url),
                 "zchat_lake": ZchatLake(uri=str(lake_path), personal_data=mode, personal_data_key=key)}
    result = dg.materialize(ALL, resources=resources, partition_key=DAY,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    return Lake(str(lake_path))


def personal_values(world) -> set[str]:
    """Every customer name, CPF, e-mail, phone and IP address the sandbox gave out for the day (less names that
    agents happen to share: agents' names are not customers' data)."""
    values, agents = set(), set()
    for ix in interactions(world, DAY):
        for name in ("main_identifier", "document", "channel_email", "channel_phone"):
            value = ix.customer_fields.get(name)
            values.update(v for v in (value if isinstance(value, list) else [value]) if v)
        values.update([ix.web["ip"]] if ix.web else [])
        agents.update(a.name for a in [ix.agent] if a)
    return {v for v in values if len(v) >= 6} - agents


def lake_text(lake: Lake) -> str:
    """Every value of every Parquet file of the lake, as one text to search."""
    parts = []
    for dataset in ("history", "history_expanded", "messages", "conversations"):
        parts.append(json.dumps(lake.read(dataset, DAY).to_pylist(), default=str, ensure_ascii=False))
    for chunk in lake.files("_cache/messages", DAY):
        parts.append(json.dumps(lake.read_file(chunk).to_pylist(), default=str, ensure_ascii=False))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    world = make_world()
    root = tmp_path_factory.mktemp("privacy")
    with SandboxServer(SandboxApp(world, TOKEN)) as server:
        return world, {"keep": materialize(server, root / "keep", "keep"),
                       "hash": materialize(server, root / "hash", "hash", KEY),
                       "hash again": materialize(server, root / "hash2", "hash", KEY),
                       "drop": materialize(server, root / "drop", "drop")}


def test_keep_is_the_default_and_stores_what_the_api_sent(lakes):
    world, lake = lakes
    text = lake_text(lake["keep"])
    assert all(value in text for value in personal_values(world))


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_no_personal_value_is_left_anywhere_in_the_lake(lakes, mode):
    world, lake = lakes
    text = lake_text(lake[mode])
    assert [v for v in personal_values(world) if v in text] == []


def test_hashes_are_stable_across_runs_so_joins_still_work(lakes):
    _, lake = lakes
    first = lake["hash"].read("history", DAY).sort_by("protocol_id").column("customer_document")
    again = lake["hash again"].read("history", DAY).sort_by("protocol_id").column("customer_document")
    kept = lake["keep"].read("history", DAY).sort_by("protocol_id").column("customer_document")
    assert first.equals(again) and not first.equals(kept)
    assert len(set(first.to_pylist())) == len(set(kept.to_pylist()))  # distinct customers stay distinct
    expanded = lake["hash"].read("history_expanded", DAY).column("customer_document").to_pylist()
    assert set(expanded) <= set(first.to_pylist())  # the same customer has the same hash in every dataset


def test_customer_author_names_are_protected_and_agents_are_not(lakes):
    _, lake = lakes
    kept = lake["keep"].read("messages", DAY).sort_by("message_id")
    dropped = lake["drop"].read("messages", DAY).sort_by("message_id")
    for before, after in zip(kept.to_pylist(), dropped.to_pylist()):
        if before["author_type"] == "CUSTOMER":
            assert after["author_name"] is None and json.loads(after["raw_json"])["author"]["name"] is None
        else:
            assert after["author_name"] == before["author_name"] and after["raw_json"] == before["raw_json"]


def test_unknown_customer_fields_in_extra_json_are_protected_too():
    extra = '{"customer": {"fields": {"cnpj": "12.345.678/0001-90", "codes": [123, "x"]}}, "other": 1}'
    table = pa.table({"extra_json": [extra, None]})
    dropped = Privacy("drop").apply(table).column("extra_json").to_pylist()
    assert json.loads(dropped[0]) == {"customer": {"fields": {"cnpj": None, "codes": []}}, "other": 1}
    assert dropped[1] is None
    hashed = json.loads(Privacy("hash", KEY).apply(table).column("extra_json")[0].as_py())["customer"]["fields"]
    assert hashed["codes"] == [Privacy("hash", KEY).value("123"), Privacy("hash", KEY).value("x")]


def test_customer_variables_sent_flat_are_protected_wherever_they_land():
    """A flat record's customer variables the schema does not name yet go to extra_json: hashed there too."""
    extra = '{"channel_whatsapp": "+55 11 91234-5678", "document_type": "CPF", "browser_lang": "pt-BR"}'
    hashed = json.loads(Privacy("hash", KEY).apply(pa.table({"extra_json": [extra]})).column("extra_json")[0].as_py())
    assert hashed == {"channel_whatsapp": Privacy("hash", KEY).value("+55 11 91234-5678"), "document_type": "CPF",
                      "browser_lang": "pt-BR"}


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_no_personal_value_is_left_when_the_api_sends_customer_fields_flat(tmp_path, mode):
    world = make_world()
    with SandboxServer(SandboxApp(world, TOKEN, dialects=frozenset({"flat_expanded"}))) as server:
        lake = materialize(server, tmp_path, mode, KEY if mode == "hash" else None)
    text = lake_text(lake)
    assert [v for v in personal_values(world) if v in text] == []


# Figures derived about a customer (counts), not a customer's value: the only unflagged customer_ columns.
CUSTOMER_FIGURES = {"customer_message_count"}


@pytest.mark.parametrize("dataset, column", [
    pytest.param(dataset, c, id=f"{dataset}.{c.name}")
    for dataset, columns in schemas.DATASETS.items() for c in columns if c.name.startswith("customer_")
])
def test_every_customer_column_is_flagged_personal(dataset, column):
    """So a customer field the schema names later (a new channel) is never written in clear under `hash`."""
    if column.name in CUSTOMER_FIGURES:
        assert column.path is None and column.type == pa.int64()  # a count the pipeline derives
    else:
        assert column.personal, f"{dataset}.{column.name} holds a customer's value: flag it personal=True"


def record_with_every_personal_value(dataset: str, flat: bool) -> dict:
    """An API record with a value in every flagged column, nested where the document puts it or, for the
    columns a flat record may carry, at its top level."""
    record = {"id": 7}
    for c in schemas.DATASETS[dataset]:
        if c.personal:
            *parents, leaf = (c.flat,) if flat and c.flat else c.path
            node = record
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = [f"{c.name} 1", f"{c.name} 2"] if c.type == schemas.STR_LIST else f"{c.name} value"
    return record


@pytest.mark.parametrize("flat", [False, True], ids=["nested", "flat"])
@pytest.mark.parametrize("dataset", ["history", "history_expanded", "ongoing"])
@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_every_flagged_column_is_protected_and_no_other_changes(mode, dataset, flat):
    privacy = Privacy(mode, KEY if mode == "hash" else None)
    records = [record_with_every_personal_value(dataset, flat)]
    kept = schemas.to_table(records, dataset).to_pylist()[0]
    stored = schemas.to_table(records, dataset, privacy=privacy).to_pylist()[0]
    flagged = [c.name for c in schemas.DATASETS[dataset] if c.personal]
    assert all(kept[name] for name in flagged)  # the record did carry every one
    if mode == "hash":
        expected = {name: [privacy.value(v) for v in kept[name]] if isinstance(kept[name], list)
                    else privacy.value(kept[name]) for name in flagged}
    else:
        expected = {name: [] if isinstance(kept[name], list) else None for name in flagged}
    assert {name: stored[name] for name in flagged} == expected
    assert {k: v for k, v in stored.items() if k not in flagged} == {k: v for k, v in kept.items() if k not in flagged}


@pytest.mark.parametrize("mode, key, words", [
    ("erase", None, "keep, hash or drop"),
    ("hash", None, "ZCHAT_PERSONAL_DATA_KEY"),
    ("hash", "short", "at least 16"),
])
def test_a_bad_setting_is_one_clear_sentence(mode, key, words):
    with pytest.raises(PrivacyError, match=words):
        Privacy(mode, key)


def test_the_key_never_shows_in_the_setting_or_its_fingerprint():
    privacy = Privacy("hash", KEY)
    assert KEY not in repr(privacy) and KEY not in privacy.fingerprint
    assert privacy.fingerprint != Privacy("hash", KEY + "x").fingerprint


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_the_customers_id_is_protected_wherever_it_appears(lakes, mode):
    """customer_id in the histories, and the customer's id as a message's author, raw JSON included."""
    world, lake = lakes
    ids = {ix.customer_id for ix in interactions(world, DAY)}
    kept = lake["keep"].read("messages", DAY).to_pylist()
    assert {r["author_id"] for r in kept if r["author_type"] == "CUSTOMER"} & ids  # the sandbox does send them
    rows = [r for r in lake[mode].read("messages", DAY).to_pylist() if r["author_type"] == "CUSTOMER"]
    assert rows and not {r["author_id"] for r in rows} & ids
    assert not {(json.loads(r["raw_json"]).get("author") or {}).get("id") for r in rows} & ids
    for dataset in ("history", "history_expanded", "conversations"):
        assert not set(lake[mode].read(dataset, DAY).column("customer_id").to_pylist()) & ids
