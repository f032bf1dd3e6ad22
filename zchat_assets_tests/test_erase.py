"""`zchat-assets erase`: one data subject out of every file of the lake, kept out by every later write."""

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import dagster as dg
import pyarrow as pa
import pytest

from zchat_assets.cli import main
from zchat_assets.erasure import canonical
from zchat_assets.lake import Lake
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer, World

from .conftest import ALL, DAY, NOW, TOKEN, fast_api

KEY = "an-erasure-secret-of-32-characters"
DAYS = [str(date.fromisoformat(DAY) - timedelta(days=n)) for n in (2, 1, 0)]
ROW_DATASETS = ("history", "history_expanded", "messages", "conversations")


def world() -> World:
    return World(seed=11, scale=90, now=lambda: NOW, regulars=3, typing=0.4)


def subject_of(w: World) -> dict:
    """The returning customer seen on the most days who typed their phone into a message."""
    best = None
    for customer_id, fields in w.regulars:
        days = [d for d in DAYS if any(ix.customer_id == customer_id for ix in w.day(date.fromisoformat(d)))]
        typed = any(fields["channel_phone"] in (m["text"] or "") for d in DAYS for ix in w.day(date.fromisoformat(d))
                    if ix.customer_id == customer_id for m in w.messages(ix))
        if typed and (best is None or len(days) > len(best["days"])):
            best = {"customer_id": customer_id, "phone": fields["channel_phone"], "email": fields["channel_email"],
                    "document": fields["document"], "days": days}
    assert best and len(best["days"]) >= 2, "the world needs a returning customer who typed their phone"
    return best


def materialize(server, uri: str, mode: str) -> None:
    resources = {"zchat_api": fast_api(server.url),
                 "zchat_lake": ZchatLake(uri=uri, personal_data=mode, personal_data_key=KEY)}
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        result = dg.materialize(ALL, resources=resources, partition_key=day, instance=instance, raise_on_error=False)
        assert result.success


def every_value(lake: Lake) -> list[tuple[str, str]]:
    """(file, text) for every cell of every Parquet file of the lake and every other file's bytes."""
    out = []
    for path in lake.fs.find(lake.root):
        relative = path[len(lake.root) + 1:]
        if path.endswith(".parquet"):
            for row in lake.read_file(relative).to_pylist():
                out.extend((relative, json.dumps(v, default=str, ensure_ascii=False)) for v in row.values())
        else:
            out.append((relative, lake.fs.cat_file(path).decode("utf-8", "replace")))
    return out


def traces(lake: Lake, subject: dict) -> list[str]:
    """Files holding one of the subject's identifiers, in any spelling."""
    needles = [subject["phone"], canonical("phone", subject["phone"]), subject["email"], subject["document"]]
    found = set()
    for path, text in every_value(lake):
        if any(n in text for n in needles) or f'"{subject["customer_id"]}"' in text:
            found.add(path)
    return sorted(found)


def erase_cli(subject: dict, *more: str) -> int:
    return main(["erase", "--phone", subject["phone"], *more])


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the repository is read
    monkeypatch.setenv("ZCHAT_PERSONAL_DATA_KEY", KEY)
    return monkeypatch


def snapshot(lake_uri: str) -> dict:
    lake = Lake(lake_uri)
    return {(d, day): lake.read(d, day) for d in ROW_DATASETS for day in DAYS}


def others_unchanged(before: dict, after: dict, protocols: set[str], deleted: bool) -> None:
    for key, table in before.items():
        mask = pa.array([p not in protocols for p in table.column("protocol_id").to_pylist()])
        kept = table.filter(mask).to_pylist()
        now = after[key]
        now_kept = now.filter(pa.array([p not in protocols for p in now.column("protocol_id").to_pylist()])).to_pylist()
        assert kept == now_kept, key
        if deleted:
            assert not set(now.column("protocol_id").to_pylist()) & protocols, key
        else:
            assert now.num_rows == table.num_rows, key


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["keep", "hash"])
@pytest.mark.parametrize("delete", [False, True], ids=["blank", "delete"])
def test_a_subject_is_erased_from_every_file_and_stays_out(env, lake_uri, mode, delete, capsys):
    w = world()
    subject = subject_of(w)
    env.setenv("ZCHAT_LAKE_URI", lake_uri)
    env.setenv("ZCHAT_PERSONAL_DATA", mode)
    app = SandboxApp(w, TOKEN)
    with SandboxServer(app) as server:
        materialize(server, lake_uri, mode)
        lake = Lake(lake_uri)
        assert traces(lake, subject) if mode == "keep" else True
        theirs = {p for d in DAYS for p, c in zip(*(lake.read("history", d).column(n).to_pylist()
                                                      for n in ("protocol_id", "customer_id")))
                  if c == (subject["customer_id"] if mode == "keep" else _hashed(subject["customer_id"]))}
        assert len(theirs) >= 2
        before = snapshot(lake_uri)

        assert erase_cli(subject, "--dry-run") == 0
        dry = capsys.readouterr().out
        assert "Would change" in dry and "history" in dry and "Nothing was written" in dry
        assert not lake.fs.exists(f"{lake.root}/_erasure")

        assert erase_cli(subject, *(["--delete"] if delete else [])) == 0
        out = capsys.readouterr().out
        assert "Changed" in out and "messages" in out
        assert traces(lake, subject) == []
        others_unchanged(before, snapshot(lake_uri), theirs, delete)
        record = [p for p in lake.fs.find(f"{lake.root}/_erasure")]
        assert len(record) == 1

        asked = dict(app.stats.by_path)
        materialize(server, lake_uri, mode)  # the look-back, a backfill: the API still has them
        assert traces(lake, subject) == []
        if delete:  # their interactions are not written, so their messages are not asked for either
            paths = [f"history/{p}/messages" for p in theirs]
            assert [app.stats.by_path.get(p, 0) for p in paths] == [asked.get(p, 0) for p in paths]
        others_unchanged(before, snapshot(lake_uri), theirs, delete)

        assert erase_cli(subject) == 0  # again: nothing left to change
        assert "nothing: no file of the account holds the subject any more" in capsys.readouterr().out


def _hashed(value: str) -> str:
    from zchat_assets.privacy import Privacy

    return Privacy("hash", KEY).value(value)


KILLER = """
import os, signal, sys
from zchat_assets.lake import Lake
from zchat_assets.cli import main
done = 0
write = Lake.rewrite_file
def rewrite_file(self, path, table):
    global done
    write(self, path, table)
    done += 1
    if done == 2:
        os.kill(os.getpid(), signal.SIGKILL)
Lake.rewrite_file = rewrite_file
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_an_erasure_killed_halfway_is_finished_by_running_it_again(env, lake_uri, capsys):
    w = world()
    subject = subject_of(w)
    env.setenv("ZCHAT_LAKE_URI", lake_uri)
    with SandboxServer(SandboxApp(w, TOKEN)) as server:
        materialize(server, lake_uri, "keep")
    lake = Lake(lake_uri)
    killed = subprocess.run([sys.executable, "-c", KILLER, "erase", "--phone", subject["phone"]], env=dict(os.environ),
                            capture_output=True, text=True)
    assert killed.returncode == -9
    assert traces(lake, subject)  # half done: some files still hold the subject
    record = json.loads(lake.fs.cat_file(lake.fs.find(f"{lake.root}/_erasure")[0]))
    assert record["state"] == "pending" and subject["phone"] not in json.dumps(record)
    assert erase_cli(subject) == 0
    assert "Resuming the erasure" in capsys.readouterr().out
    assert traces(lake, subject) == []
    record = json.loads(lake.fs.cat_file(lake.fs.find(f"{lake.root}/_erasure")[0]))
    assert record["state"] == "done" and record["rows"]["history"] >= 2


def test_erasing_needs_the_personal_data_secret(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZCHAT_PERSONAL_DATA_KEY", raising=False)
    monkeypatch.setenv("ZCHAT_LAKE_URI", str(tmp_path / "lake"))
    assert main(["erase", "--email", "ana@email.example"]) == 2
    err = capsys.readouterr().err
    assert "ZCHAT_PERSONAL_DATA_KEY" in err and "ana@email.example" not in err


@pytest.mark.parametrize("kind, given, expected", [
    ("phone", "+55 11 91234-5678", "11912345678"),
    ("phone", "(11) 91234-5678", "11912345678"),
    ("phone", "5511912345678", "11912345678"),
    ("phone", "11 3456-7890", "1134567890"),
    ("document", "123.456.789-09", "12345678909"),
    ("document", " 12345678909 ", "12345678909"),
    ("email", " Ana.Souza@Email.Example ", "ana.souza@email.example"),
    ("customer_id", " 4746760 ", "4746760"),
    ("protocol", "9484000001", "9484000001"),
])
def test_identifiers_have_one_canonical_spelling(kind, given, expected):
    assert canonical(kind, given) == expected


def test_a_phone_is_looked_up_in_the_spellings_the_api_may_have_sent():
    from zchat_assets.erasure import spellings

    found = spellings("phone", "11912345678")
    assert {"+55 11 91234-5678", "(11) 91234-5678", "5511912345678", "11912345678"} <= found


def test_a_day_being_written_when_an_erasure_is_recorded_is_published_without_the_subject(tmp_path, monkeypatch):
    """The erasure lands between a run's first page and its publish: the run applies it before publishing."""
    from zchat_assets.erase import erase
    from zchat_assets.erasure import Erasures
    from zchat_assets.privacy import Privacy
    from zchat_assets.schemas import dataset_schema, to_table

    privacy = Privacy("keep", KEY)
    records = [{"id": "1", "created_at": "2026-11-18T10:00:00Z", "customer": {"id": "c-1", "fields": {
                "channel_phone": "+55 11 91234-5678", "main_identifier": "Ana Souza"}}},
               {"id": "2", "created_at": "2026-11-18T11:00:00Z", "customer": {"id": "c-2", "fields": {
                "main_identifier": "Bia Lima"}}}]
    writer_lake = Lake(str(tmp_path / "lake"))
    writer_lake.erasures = Erasures(writer_lake, privacy)
    with writer_lake.replace_partition("history", DAY, dataset_schema("history")) as writer:
        writer.write(to_table(records, "history"))
        writer.footer[b"zchat.test"] = b"kept"  # what the writer adds to the footer at the end stays too
        erase(Lake(str(tmp_path / "lake")), privacy, "phone", "(11) 91234-5678", log=lambda _: None)
    published = Lake(str(tmp_path / "lake"))
    assert published.file_metadata(published.files("history", DAY)[0])[b"zchat.test"] == b"kept"
    day = published.read("history", DAY).sort_by("protocol_id").to_pylist()
    assert [r["customer_id"] for r in day] == [None, "c-2"]
    assert day[0]["customer_main_identifier"] is None and day[0]["customer_channel_phone"] == []
    assert day[1]["customer_main_identifier"] == "Bia Lima"


def test_a_run_on_a_lake_with_erasures_and_no_secret_stops_with_a_sentence(tmp_path):
    from zchat_assets.erase import erase
    from zchat_assets.privacy import Privacy
    from zchat_assets.resources import ZchatLake

    erase(Lake(str(tmp_path / "lake")), Privacy("keep", KEY), "email", "ana@email.example", log=lambda _: None)
    with pytest.raises(ValueError, match="ZCHAT_PERSONAL_DATA_KEY holds none"):
        ZchatLake(uri=str(tmp_path / "lake")).open()


@pytest.mark.slow
def test_erase_finds_a_fleets_accounts_by_fleet_and_by_account(tmp_path, monkeypatch):
    from argparse import Namespace

    from zchat_assets.assets import build_fleet_defs
    from zchat_assets.cli import _fleet_worlds
    from zchat_assets.fleets import fleet_from_yaml

    from .conftest import daily_assets
    from .projects import fleet_project
    from .test_accounts import BIN, run, succeeded

    worlds = _fleet_worlds(Namespace(fleet_prefix="tok-", seed=11, scale=60, timezone="America/Sao_Paulo",
                                     regulars=2, typing=0.4))
    lake_path = tmp_path / "lake"
    with SandboxServer(SandboxApp(World(scale=1), "unused", fleet=worlds)) as server:
        project = fleet_project(tmp_path / "project", 2, server.url, lake_path, "2026-10-01")
        folder = project / "zchat_assets" / "defs" / "fleets" / "bpo"
        fleet = fleet_from_yaml(__import__("yaml").safe_load((folder / "defs.yaml").read_text())["attributes"],
                                "zchat_assets/defs/fleets/bpo/defs.yaml", folder)
        for n in range(2):
            monkeypatch.setenv(f"A000{n}_TOKEN", f"tok-{n}")
        defs = build_fleet_defs(fleet, dict(os.environ))
        assets = [a for a in daily_assets(defs) if any(k.path[-1] == "messages" for k in a.keys)]
        for n in range(2):
            assert dg.materialize(assets, partition_key=f"a000{n}|{DAY}", instance=dg.DagsterInstance.ephemeral()).success
        regulars = {n: server.app.more_accounts[f"tok-{n}"].world.regulars for n in range(2)}
    first, second = Lake(str(lake_path), "a0000"), Lake(str(lake_path), "a0001")
    customer_id = next(c for c, _ in regulars[0] if c in first.read("history", DAY).column("customer_id").to_pylist())
    untouched = second.read("history", DAY)
    succeeded(run([str(BIN / "zchat-assets"), "erase", "--fleet", "bpo", "--customer-id", customer_id], project,
                  ZCHAT_PERSONAL_DATA_KEY=KEY))
    assert customer_id not in first.read("history", DAY).column("customer_id").to_pylist()
    assert second.read("history", DAY).equals(untouched)  # another client's customers are not this subject
    assert first.fs.exists(f"{first.root}/_erasure/account=a0000") and first.fs.exists(f"{first.root}/_erasure/account=a0001")
    other = next(c for c, _ in regulars[1] if c in second.read("history", DAY).column("customer_id").to_pylist())
    done = succeeded(run([str(BIN / "zchat-assets"), "erase", "--account", "a0001", "--customer-id", other, "--delete"],
                         project, ZCHAT_PERSONAL_DATA_KEY=KEY))
    assert "for account a0001" in done.stdout
    assert other not in second.read("history", DAY).column("customer_id").to_pylist()
    assert second.read("history", DAY).num_rows < untouched.num_rows


def test_snapshots_and_cache_chunks_added_after_an_erasure_keep_the_subject_out(tmp_path):
    """Files added whole (ongoing snapshots, message-cache chunks) pass through the erasures too."""
    from datetime import datetime, timezone

    from zchat_assets.assets.ongoing import snapshot_table
    from zchat_assets.erase import erase
    from zchat_assets.erasure import Erasures
    from zchat_assets.privacy import Privacy
    from zchat_assets.schemas import messages_table

    privacy = Privacy("hash", KEY)
    lake = Lake(str(tmp_path / "lake"))
    erase(lake, privacy, "customer_id", "c-1", log=lambda _: None)
    lake.erasures = Erasures(lake, privacy)
    polled = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
    ongoing = [{"id": str(n), "created_at": "2026-11-20T14:00:00Z", "current_state": "TALKING",
                "customer": {"id": f"c-{n}", "fields": {"main_identifier": f"Cliente {n}"}}} for n in (1, 2)]
    path = lake.add_file("ongoing", "2026-11-20", "poll.parquet", snapshot_table(ongoing, polled, privacy))
    rows = lake.read_file(path).sort_by("protocol_id").to_pylist()
    assert [r["customer_id"] for r in rows] == [None, privacy.value("c-2")]
    assert rows[0]["customer_main_identifier"] is None and rows[0]["current_state"] == "TALKING"
    messages = [("1", [{"id": "m1", "created_at": "2026-11-20T14:00:00Z", "author": {"type": "CUSTOMER", "id": "c-1",
                                                                                        "name": "Cliente 1"},
                        "text": "Meu CPF é 123.456.789-09"},
                       {"id": "m2", "created_at": "2026-11-20T14:01:00Z", "author": {"type": "AGENT", "id": "a-1",
                                                                                        "name": "Ana"}, "text": "Obrigada!"}])]
    chunk = lake.add_file("_cache/messages", "2026-11-20", "chunk.parquet", messages_table(messages, privacy))
    stored = {r["message_id"]: r for r in lake.read_file(chunk).to_pylist()}
    assert stored["m1"]["text"] is None and stored["m1"]["raw_json"] is None and stored["m1"]["author_id"] is None
    assert stored["m2"]["text"] == "Obrigada!" and stored["m2"]["author_name"] == "Ana"


@pytest.mark.slow
def test_under_drop_the_subject_is_found_by_what_they_typed(env, tmp_path, capsys):
    """`drop` keeps no identifier in the histories: the conversations where the customer typed their phone are
    what can be found, and erased."""
    w = world()
    subject = subject_of(w)
    uri = str(tmp_path / "lake")
    env.setenv("ZCHAT_LAKE_URI", uri)
    env.setenv("ZCHAT_PERSONAL_DATA", "drop")
    with SandboxServer(SandboxApp(w, TOKEN)) as server:
        materialize(server, uri, "drop")
    lake = Lake(uri)
    typed = [p for p, text in every_value(lake) if subject["phone"] in text]
    assert typed
    assert erase_cli(subject) == 0
    assert "messages" in capsys.readouterr().out
    assert [p for p, text in every_value(lake) if subject["phone"] in text] == []
