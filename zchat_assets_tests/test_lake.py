"""The lake: whole-day replacement, nothing left behind, the old day kept when a write fails."""

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from zchat_assets.lake import Lake, LakeError


def table(n: int) -> pa.Table:
    return pa.table({"protocol_id": [str(i) for i in range(n)]})


def test_replace_is_whole_and_leaves_no_temporary_files(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_partition("history", "2026-11-18", table(5))
    written = lake.write_partition("history", "2026-11-18", table(3))
    assert written.rows == 3 and written.files == 1
    dataset = ds.dataset(str(tmp_path / "history"), format="parquet", partitioning="hive")
    assert dataset.to_table().num_rows == 3
    assert list((tmp_path / "_staging" / "history").iterdir()) == []


def test_a_failed_write_keeps_the_previous_day(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_partition("history", "2026-11-18", table(5))
    with pytest.raises(RuntimeError):
        with lake.replace_partition("history", "2026-11-18", table(0).schema) as writer:
            writer.write(table(2))
            raise RuntimeError("the API died half-way")
    assert lake.read("history", "2026-11-18").num_rows == 5
    assert list((tmp_path / "_staging" / "history").iterdir()) == []


def test_an_empty_day_is_written_with_its_schema(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_partition("history", "2026-11-18", table(0))
    assert lake.read("history", "2026-11-18").schema.names == ["protocol_id"]
    assert lake.days("history") == ["2026-11-18"]


def test_files_are_added_atomically_for_snapshots(tmp_path):
    lake = Lake(str(tmp_path))
    path = lake.add_file("ongoing", "2026-11-18", "poll-1.parquet", table(2))
    assert lake.read_file(path).num_rows == 2


def test_unwritable_lake_is_reported_in_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LakeError, match="Cannot write to the lake"):
        Lake(str(blocker / "lake")).check_writable()


def test_unknown_scheme_is_reported():
    with pytest.raises(LakeError, match="ZCHAT_LAKE_URI"):
        Lake("nosuchproto://bucket/x")
