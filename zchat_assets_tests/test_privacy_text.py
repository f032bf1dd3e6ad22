"""Identifiers customers type into messages, masked under `personal_data_text: mask`: in every dataset and
the message cache, for the unnamed account, a named one and an account of a fleet; other text unchanged."""

import json
import re
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from zchat_assets import schemas
from zchat_assets.assets import build_account_defs, build_fleet_defs
from zchat_assets.assets.account import lake_resource
from zchat_assets.assets.fleet import FleetMember
from zchat_assets.fleets import fleet_from_yaml
from zchat_assets.lake import Lake
from zchat_assets.masking import mask
from zchat_assets.message_cache import DATASET as CACHE, PRIVACY_KEY
from zchat_assets.privacy import Privacy, PrivacyError
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World
from zchat_assets.settings import SettingsError, from_environment, from_yaml, named

from .conftest import DAY, NOW, START, TOKEN, daily_assets, fast_api, materialize_some, only
from .truth import interactions

KEY = "a-secret-of-at-least-16-chars"
FETCH = only("history_expanded", "messages")
IDENTIFIERS = ("channel_phone", "document", "channel_email")


def typing_world() -> World:
    return World(seed=11, scale=120, now=lambda: NOW, typing=0.2)


def typed_values(world: World) -> set[str]:
    """The phones, CPFs and e-mail addresses the day's customers typed into their messages, as typed."""
    typed = set()
    for ix in interactions(world, DAY):
        values = [v for name in IDENTIFIERS for v in _values(ix.customer_fields.get(name))]
        texts = [m["text"] for m in world.messages(ix) if m["author"]["type"] == "CUSTOMER"]
        typed.update(v for v in values if any(v in text for text in texts))
    return typed


def _values(value) -> list[str]:
    return [v for v in (value if isinstance(value, list) else [value]) if v]


def spellings(values: set[str]) -> set[str]:
    """The values as typed and as bare digits (a phone's or a CPF's)."""
    return values | {re.sub(r"\D", "", v) for v in values if "@" not in v}


def every_value(root: Path) -> str:
    """Every value of every Parquet file under `root` (datasets, message cache, anything else), as one text."""
    return "\n".join(json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
                     for path in sorted(root.rglob("*.parquet")))


def run(defs_or_assets, resources=None, partition=DAY) -> None:
    assets = daily_assets(defs_or_assets) if isinstance(defs_or_assets, dg.Definitions) else defs_or_assets
    result = materialize_some(assets, resources=resources if resources is not None else defs_or_assets.resources,
                              partition_key=partition, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    """One world in which customers type their identifiers into a fifth of their text messages, written as
    it is (keep) and masked by the unnamed account (from ZCHAT_* variables, with personal_data hash), a named
    account (its defs.yaml, personal data kept) and an account of a fleet (with personal_data drop)."""
    world, root = typing_world(), tmp_path_factory.mktemp("privacy_text")
    with SandboxServer(SandboxApp(world, TOKEN)) as server, pytest.MonkeyPatch.context() as env:
        env.setenv("ZCHAT_API_TOKEN", TOKEN)
        env.setenv("ZCHAT_PERSONAL_DATA_KEY", KEY)
        env.setenv("ACME_TOKEN", TOKEN)
        environ = {"ZCHAT_API_TOKEN": TOKEN, "ZCHAT_PERSONAL_DATA_KEY": KEY, "ACME_TOKEN": TOKEN}

        keep = build_account_defs(from_environment({**environ, "ZCHAT_BASE_URL": server.url, "ZCHAT_START_DATE": START,
                                                    "ZCHAT_LAKE_URI": str(root / "keep")}), environ)
        run(keep)

        unnamed = from_environment({**environ, "ZCHAT_BASE_URL": server.url, "ZCHAT_START_DATE": START,
                                    "ZCHAT_LAKE_URI": str(root / "unnamed"), "ZCHAT_PERSONAL_DATA": "hash",
                                    "ZCHAT_PERSONAL_DATA_TEXT": "mask"})
        run(build_account_defs(unnamed, environ))

        folder = root / "defs" / "accounts" / "acme"
        folder.mkdir(parents=True)
        (folder / "defs.yaml").write_text(
            "type: zchat_assets.ZchatAccount\nattributes:\n  name: acme\n  token_env: ACME_TOKEN\n"
            f"  base_url: {server.url}\n  start_date: \"{START}\"\n  lake_uri: {root / 'named'}\n"
            "  personal_data_text: mask\n")
        attributes = yaml.safe_load((folder / "defs.yaml").read_text())["attributes"]
        run(build_account_defs(from_yaml(attributes, environ, "zchat_assets/defs/accounts/acme/defs.yaml"), environ))

        fleet = fleet_from_yaml({"name": "bpo", "base_url": server.url, "start_date": START,
                                 "lake_uri": str(root / "fleet"), "personal_data": "drop",
                                 "accounts": [{"name": "acme", "token_env": "ACME_TOKEN",
                                               "personal_data_text": "mask"}]},
                                "zchat_assets/defs/fleets/bpo/defs.yaml", root)
        run(build_fleet_defs(fleet, environ), partition=f"acme|{DAY}")
    return world, {name: root / name for name in ("keep", "unnamed", "named", "fleet")}


def test_the_world_has_customers_typing_their_identifiers(lakes):
    world, roots = lakes
    typed = typed_values(world)
    assert len(typed) >= 5
    kept = Lake(str(roots["keep"])).read("messages", DAY).column("text").to_pylist()
    assert all(any(value in (text or "") for text in kept) for value in typed)


@pytest.mark.parametrize("name", ["unnamed", "fleet"])
def test_no_typed_identifier_is_left_in_any_file_of_the_lake(lakes, name):
    """With personal data hashed or dropped too, none of them anywhere: every column of every dataset,
    raw_json, conversations' nested messages and the message cache."""
    world, roots = lakes
    assert list(roots[name].rglob("_cache/messages/**/*.parquet"))  # the cache was written, and is searched
    text = every_value(roots[name])
    assert [v for v in spellings(typed_values(world)) if v in text] == []
    assert "[cpf]" in text and "[phone]" in text and "[email]" in text


def test_masking_is_independent_of_the_personal_data_setting(lakes):
    """A named account that keeps personal data masks the free text and keeps its customers' columns."""
    world, roots = lakes
    lake = Lake(str(roots["named"]), account="acme")
    typed = spellings(typed_values(world))
    messages = json.dumps(lake.read("messages", DAY).select(["text", "raw_json"]).to_pylist(), ensure_ascii=False)
    conversations = json.dumps(lake.read("conversations", DAY).select(["message_list", "notes"]).to_pylist(),
                               default=str, ensure_ascii=False)
    assert [v for v in typed if v in messages or v in conversations] == []
    documents = set(lake.read("history", DAY).column("customer_document").to_pylist())
    assert {v for v in typed_values(world) if v in documents}  # the CPF column itself is kept


def test_other_text_is_unchanged(lakes):
    """Every message as kept but its identifiers: the text and the original JSON's strings masked, nothing else."""
    world, roots = lakes
    kept = {r["message_id"]: r for r in Lake(str(roots["keep"])).read("messages", DAY).to_pylist()}
    masked = {r["message_id"]: r for r in Lake(str(roots["named"]), account="acme").read("messages", DAY).to_pylist()}
    assert kept.keys() == masked.keys()
    changed = 0
    for message_id, before in kept.items():
        after = masked[message_id]
        assert after["text"] == mask(before["text"])
        assert {k: v for k, v in after.items() if k not in ("text", "raw_json")} == \
               {k: v for k, v in before.items() if k not in ("text", "raw_json")}
        original, stored = json.loads(before["raw_json"]), json.loads(after["raw_json"])
        assert stored == {**original, "text": mask(original["text"])}
        changed += after["text"] != before["text"]
    typed = typed_values(world)
    assert changed == sum(any(v in (r["text"] or "") for v in typed) for r in kept.values()) > 0
    expanded = [Lake(str(root), account=account).read("history_expanded", DAY).sort_by("protocol_id")
                for root, account in ((roots["keep"], None), (roots["named"], "acme"))]
    assert expanded[0].equals(expanded[1])  # the sandbox's notes hold no identifier: kept as written


def message_requests(app) -> int:
    return app.stats.by_endpoint.get("messages", 0)


def test_switching_the_setting_does_not_reuse_the_message_cache(tmp_path):
    app = SandboxApp(typing_world(), TOKEN)
    requests = []
    with SandboxServer(app) as server:
        for text in ("keep", "mask", "mask", "keep"):
            before = message_requests(app)
            run(FETCH, {"zchat_api": fast_api(server.url),
                        "zchat_lake": ZchatLake(uri=str(tmp_path), personal_data_text=text)})
            requests.append(message_requests(app) - before)
            stored = Lake(str(tmp_path)).read("messages", DAY).column("text").to_pylist()
            assert (stored == [mask(t) for t in stored]) or text == "keep"
    everything = len(interactions(app.views.world, DAY))
    unfinished = requests[2]
    assert requests == [everything, everything, unfinished, everything] and unfinished < everything / 10
    lake = Lake(str(tmp_path))
    settings = {lake.file_metadata(chunk)[PRIVACY_KEY].decode() for chunk in lake.files(CACHE, DAY)}
    assert settings == {Privacy().fingerprint}  # chunks of the other setting were pruned


def test_the_setting_reaches_the_lake_of_every_kind_of_account():
    environ = {"ZCHAT_PERSONAL_DATA_TEXT": "mask", "ACME_TOKEN": TOKEN}
    unnamed = from_environment(environ)
    acme = named({"name": "acme", "token_env": "ACME_TOKEN", "personal_data_text": "mask"})
    fleet = fleet_from_yaml({"name": "bpo", "personal_data_text": "mask",
                             "accounts": [{"name": "acme", "token_env": "ACME_TOKEN"}]}, "defs.yaml", Path("."))
    member = FleetMember(fleet.accounts[0], environ)
    for privacy in (unnamed.privacy(environ), lake_resource(acme, environ).privacy(), member.privacy(None)):
        assert privacy.text == "mask"
    assert from_environment({}).privacy({}).text == "keep"


def test_a_bad_text_setting_is_one_sentence_naming_where_it_was_written():
    with pytest.raises(SettingsError, match="ZCHAT_PERSONAL_DATA_TEXT 'hash' is not valid: use keep or mask"):
        from_environment({"ZCHAT_PERSONAL_DATA_TEXT": "hash"})
    with pytest.raises(PrivacyError, match="use keep or mask"):
        Privacy(text="redact")


def test_the_fingerprint_names_the_text_setting_and_keep_stays_as_it_was():
    """`keep` everywhere is the fingerprint the cache has always had: chunks written before stay usable."""
    assert Privacy().fingerprint == "keep"
    fingerprints = {Privacy(mode, KEY if mode == "hash" else None, text=text).fingerprint
                    for mode in ("keep", "hash", "drop") for text in ("keep", "mask")}
    assert len(fingerprints) == 6


def test_every_authors_text_is_masked_and_the_original_json_beside_the_columns_values():
    """An agent copying the customer's CPF is masked too; the fields with columns of their own are not."""
    message = {"id": "1-2", "created_at": "2026-11-18T10:01:00Z", "type": "TEXT",
               "author": {"type": "AGENT", "id": "11912345678", "name": "Zé"},
               "text": "Anotei o CPF 529.982.247-25", "caption": "tel (11) 91234-5678",
               "attachment": {"url": "https://media.example/11912345678/a.pdf", "name": "cpf 529.982.247-25.pdf"}}
    row = schemas.messages_table([("1", [message])], Privacy(text="mask")).to_pylist()[0]
    assert row["text"] == "Anotei o CPF [cpf]"
    assert json.loads(row["raw_json"]) == {**message, "text": "Anotei o CPF [cpf]", "caption": "tel [phone]",
                                           "attachment": {**message["attachment"], "name": "cpf [cpf].pdf"}}


def test_a_key_the_api_wrote_twice_hides_no_identifier():
    """raw_json is the API's own text: parsing keeps one of two values of a key, so the text is written again."""
    raw = '{"id": "1-2", "text": "meu cpf 529.982.247-25", "text": "ok"}'
    masked = Privacy(text="mask").apply(pa.table({"raw_json": [raw, '{"text":  "ok"}']})).column("raw_json").to_pylist()
    assert masked == ['{"id": "1-2", "text": "ok"}', '{"text":  "ok"}']


def test_unknown_fields_and_notes_are_masked_and_unchanged_json_is_kept_byte_for_byte():
    extra = '{"comment":"ligar no +55 21 3456-7890","tries":[2,"ana@x.com.br"]}'
    table = pa.table({"notes": ["CPF 529.982.247-25", None], "extra_json": [extra, '{"a":  "sem dados"}']})
    masked = Privacy(text="mask").apply(table).to_pydict()
    assert masked["notes"] == ["CPF [cpf]", None]
    assert json.loads(masked["extra_json"][0]) == {"comment": "ligar no [phone]", "tries": [2, "[email]"]}
    assert masked["extra_json"][1] == '{"a":  "sem dados"}'
    assert Privacy().apply(table) is table  # keep costs nothing
