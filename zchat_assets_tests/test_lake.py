"""The lake, on a local folder and on a real S3 server: a day replaced whole, one file a day, nothing
left behind, the old day kept when a write fails, housekeeping by age."""

import os
import subprocess
import time

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from zchat_assets import provenance
from zchat_assets.lake import PART, STAGING, Lake, LakeError
from zchat_assets.message_cache import MessageCache
from zchat_assets.privacy import Privacy
from zchat_assets.resources import ZchatLake
from zchat_assets.schemas import messages_table

DAY = "2026-11-18"


def table(n: int) -> pa.Table:
    return pa.table({"protocol_id": [str(i) for i in range(n)]})


def everything(lake: Lake) -> list[str]:
    """Every file under the lake's root, relative to it."""
    return sorted(p[len(lake.root) + 1:] for p in lake.fs.find(lake.root))


def test_replace_is_whole_one_file_and_leaves_nothing_behind(lake_uri):
    lake = Lake(lake_uri)
    lake.write_partition("history", DAY, table(5))
    written = lake.write_partition("history", DAY, table(3))
    assert written.rows == 3 and written.files == 1 and written.uri.endswith(f"history/date={DAY}")
    assert everything(lake) == [f"history/date={DAY}/{PART}"]  # never nested, no staging left
    dataset = ds.dataset(f"{lake.root}/history", filesystem=lake.fs, format="parquet", partitioning="hive")
    assert dataset.to_table().num_rows == 3


def test_a_failed_write_keeps_the_previous_day_and_removes_its_staging(lake_uri):
    lake = Lake(lake_uri)
    lake.write_partition("history", DAY, table(5))
    with pytest.raises(RuntimeError):
        with lake.replace_partition("history", DAY, table(0).schema) as writer:
            writer.write(table(2))
            raise RuntimeError("the API died half-way")
    assert lake.read("history", DAY).num_rows == 5
    assert everything(lake) == [f"history/date={DAY}/{PART}"]


def test_an_empty_day_is_written_with_its_schema(lake_uri):
    lake = Lake(lake_uri)
    lake.write_partition("history", DAY, table(0))
    assert lake.read("history", DAY).schema.names == ["protocol_id"]
    assert lake.days("history") == [DAY] and lake.exists("history", DAY)


def test_a_day_written_as_several_parts_before_is_replaced_by_one(lake_uri):
    lake = Lake(lake_uri)
    lake.write_partition("history", DAY, table(2))
    legacy = f"{lake.folder('history', DAY)}/part-00001.parquet"
    with lake.fs.open(legacy, "wb") as handle:
        import pyarrow.parquet as pq

        pq.write_table(table(4), handle)
    assert lake.read("history", DAY).num_rows == 6
    lake.write_partition("history", DAY, table(3))
    assert lake.read("history", DAY).num_rows == 3 and lake.files("history", DAY) == [f"history/date={DAY}/{PART}"]


def test_accounts_have_a_level_of_their_own(lake_uri):
    Lake(lake_uri, account="acme").write_partition("history", DAY, table(2))
    Lake(lake_uri, account="globex").write_partition("history", DAY, table(3))
    lake = Lake(lake_uri)
    assert everything(lake) == [f"history/account=acme/date={DAY}/{PART}", f"history/account=globex/date={DAY}/{PART}"]
    dataset = ds.dataset(f"{lake.root}/history", filesystem=lake.fs, format="parquet", partitioning="hive")
    assert sorted(dataset.to_table().column("account").to_pylist()) == ["acme"] * 2 + ["globex"] * 3


def test_files_are_added_atomically_for_snapshots(lake_uri):
    lake = Lake(lake_uri)
    path = lake.add_file("ongoing", DAY, "poll-1.parquet", table(2))
    assert lake.read_file(path).num_rows == 2
    assert everything(lake) == [f"ongoing/date={DAY}/poll-1.parquet"]


def test_a_file_is_added_from_tables_as_they_come_or_not_at_all(lake_uri):
    """Tables written one by one make one file, with its provenance; a source that fails halfway leaves
    nothing behind, not even staging."""
    lake = Lake(lake_uri)
    lake.provenance = lambda schema, rows: {"rows": rows}
    written = []

    def tables(fail: bool):
        for n in (2, 3):
            written.append(n)
            yield table(n)
        if fail:
            raise OSError("the source broke")

    path = lake.add_tables("ongoing", DAY, "poll-1.parquet", table(1).schema, tables(fail=False))
    assert lake.read_file(path).num_rows == 5 and written == [2, 3]
    with lake.fs.open(f"{lake.root}/{path}", "rb") as handle:
        assert provenance.read(handle)["rows"] == 5
    with pytest.raises(OSError, match="the source broke"):
        lake.add_tables("ongoing", DAY, "poll-2.parquet", table(1).schema, tables(fail=True))
    assert everything(lake) == [f"ongoing/date={DAY}/poll-1.parquet"]


def test_a_file_is_read_a_row_group_at_a_time(lake_uri):
    """What the message cache reads a merged day with; a file of no rows still gives its columns, and a
    missing file is said at once, before anything is read."""
    lake = Lake(lake_uri)
    lake.provenance = lambda schema, rows: {}
    path = lake.add_tables("ongoing", DAY, "poll-1.parquet", table(1).schema, iter([table(2), table(3)]))
    assert [g.num_rows for g in lake.row_groups(path)] == [2, 3]
    empty = lake.add_tables("ongoing", DAY, "poll-2.parquet", table(1).schema, iter([]))  # no row group at all
    (group,) = lake.row_groups(empty)
    assert group.num_rows == 0 and group.schema.names == ["protocol_id"]
    with pytest.raises(FileNotFoundError):
        lake.row_groups(f"ongoing/date={DAY}/poll-3.parquet")


def test_the_message_cache_works_on_the_lake(lake_uri):
    lake = Lake(lake_uri)
    cache = MessageCache(lake, DAY, Privacy())
    ended = "2026-11-18T13:00:00+00:00"
    cache.add(messages_table([("1", [{"id": "a", "created_at": "2026-11-18T12:00:00Z"}])]), {"1": [ended, 1]})
    again = MessageCache(lake, DAY, Privacy())
    assert again.usable({"1": ended}) == {"1": lake.files("_cache/messages", DAY)[0]}
    assert cache.prune({"1": None}) == 1 and lake.files("_cache/messages", DAY) == []
    assert again.read(next(iter(again.usable({"1": ended}).values())), {"1"}) is None  # pruned by "another run"


def test_housekeeping_deletes_by_age_only(lake_uri):
    lake = Lake(lake_uri)
    lake.add_file("ongoing", DAY, "poll.parquet", table(1))
    lake.fs.makedirs(f"{lake.root}/{STAGING}/history", exist_ok=True)
    with lake.fs.open(f"{lake.root}/{STAGING}/history/date={DAY}.dead.parquet", "wb") as handle:
        handle.write(b"left by a killed run")
    assert lake.sweep(STAGING, older_than=3600) == 0  # too young: a write may still be under way
    time.sleep(1.1)
    assert lake.sweep(STAGING, older_than=1) == 1
    assert lake.expire("ongoing", "2026-11-19") == 1 and not lake.exists("ongoing", DAY)
    assert lake.expire("ongoing", "2026-11-19") == 0


def test_unwritable_lake_is_reported_in_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LakeError, match="Cannot write to the lake"):
        Lake(str(blocker / "lake")).check_writable()


def test_unknown_scheme_is_reported():
    with pytest.raises(LakeError, match="ZCHAT_LAKE_URI"):
        Lake("nosuchproto://bucket/x")


def test_a_named_accounts_lake_errors_name_its_attribute_and_file(tmp_path):
    """Not ZCHAT_LAKE_URI, which a named account does not read."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    setting = "lake_uri in zchat_assets/defs/accounts/acme/defs.yaml"
    with pytest.raises(LakeError) as caught:
        ZchatLake(uri=str(blocker / "lake"), account="acme", uri_setting=setting).open()
    assert str(caught.value).endswith(f"check {setting} and its permissions.")
    with pytest.raises(LakeError, match=f"^{setting} 'nosuchproto://bucket/x' cannot be opened"):
        Lake("nosuchproto://bucket/x", "acme", setting)


REAL, DEMO = ("zchat.zenvia.io", "America/Sao_Paulo"), ("127.0.0.1", "America/Sao_Paulo")


@pytest.mark.parametrize("first,then,refused", [
    # (account, host, time zone) of the first writer and of the next one
    ((None, *REAL), (None, *REAL), None),  # the same account may always write
    ((None, *REAL), (None, *DEMO), "holds data of the unnamed account from zchat.zenvia.io in America/Sao_Paulo, "
                                   "and this writer is the unnamed account from 127.0.0.1 in America/Sao_Paulo"),
    ((None, *REAL), (None, "zchat.zenvia.io", "America/New_York"), "this writer is the unnamed account from "
                                                                   "zchat.zenvia.io in America/New_York"),
    (("acme", *REAL), ("globex", *REAL), None),  # named accounts share a lake, each in its account= level
    (("acme", *REAL), ("acme", *DEMO), "holds data of account acme from zchat.zenvia.io"),
    (("acme", *REAL), (None, *REAL), "holds data of account acme from zchat.zenvia.io in America/Sao_Paulo, and "
                                     "this writer is the unnamed account"),
    ((None, *REAL), ("acme", *REAL), "holds data of the unnamed account from zchat.zenvia.io"),
])
def test_a_lake_refuses_a_writer_of_another_origin_and_writes_nothing(lake_uri, first, then, refused):
    def resource(account, host, zone):
        return ZchatLake(uri=lake_uri, account=account, host=host, timezone=zone)

    resource(*first).open().write_partition("history", DAY, table(2))
    lake = Lake(lake_uri)
    before = sorted(lake.fs.find(lake.root))
    if refused is None:
        resource(*then).open()
        return
    with pytest.raises(LakeError) as caught:
        resource(*then).open()
    assert refused in str(caught.value) and str(caught.value).count("\n") == 0
    assert "nothing was written; point ZCHAT_LAKE_URI at another lake" in str(caught.value)
    assert sorted(lake.fs.find(lake.root)) == before


def test_an_unset_lake_is_refused_outside_a_local_instance(tmp_path):
    implicit = ZchatLake(uri=str(tmp_path), uri_is_default=True)
    assert implicit.open(local_instance=True).root == str(tmp_path)
    with pytest.raises(LakeError, match="ZCHAT_LAKE_URI is not set: in a deployment runs would write to"):
        implicit.open(local_instance=False)
    ZchatLake(uri=str(tmp_path)).open(local_instance=False)  # a chosen folder is fine anywhere


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB file system of its own (tmpfs), so that a write really meets a full disk."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"the full-disk tests mount a tmpfs and need root: {done.stderr.decode()}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_sentence_and_leaves_the_previous_day_and_no_staging(tiny_disk):
    lake = Lake(str(tiny_disk / "lake"))
    lake.write_partition("messages", DAY, table(100))
    before = (tiny_disk / "lake" / "messages" / f"date={DAY}" / PART).read_bytes()
    noise = pa.table({"text": [os.urandom(64).hex() for _ in range(60_000)]})  # about 8 MB, incompressible
    with pytest.raises(LakeError) as caught:
        lake.write_partition("messages", DAY, noise)
    message = str(caught.value)
    assert message.startswith(f"Writing messages {DAY} to the lake at file://{tiny_disk}/lake failed "
                              "(No space left on device (ENOSPC))") and "\n" not in message
    assert (tiny_disk / "lake" / "messages" / f"date={DAY}" / PART).read_bytes() == before
    assert everything(lake) == [f"messages/date={DAY}/{PART}"]
