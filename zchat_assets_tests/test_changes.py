"""Comparing two versions of a day: rows added, removed and changed by key, whatever the column types."""

from datetime import datetime, timezone

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zchat_assets.changes import KEYS, Changes, against_published, column_hash, compare
from zchat_assets.schemas import dataset_schema

T1, T2 = datetime(2026, 11, 18, 12, tzinfo=timezone.utc), datetime(2026, 11, 18, 13, tzinfo=timezone.utc)
ITEM = pa.struct([("id", pa.string()), ("name", pa.string())])
SCHEMA = pa.schema([("protocol_id", pa.string()), ("state", pa.string()), ("messages", pa.int64()),
                    ("end", pa.timestamp("us", tz="UTC")), ("score", pa.float64()), ("open", pa.bool_()),
                    ("tags", pa.list_(ITEM))])
BASE = [{"protocol_id": "1", "state": "ENDED", "messages": 3, "end": T1, "score": 1.5, "open": False,
         "tags": [{"id": "t1", "name": "sales"}]},
        {"protocol_id": "2", "state": "TALKING", "messages": 1, "end": None, "score": None, "open": True, "tags": []},
        {"protocol_id": "3", "state": "ENDED", "messages": 0, "end": T1, "score": 0.0, "open": False, "tags": None}]


def edited(**changes) -> list[dict]:
    """BASE with some rows replaced: {protocol: {column: value}}, or None to remove it."""
    rows = []
    for row in BASE:
        change = changes.get(f"p{row['protocol_id']}", {})
        if change is not None:
            rows.append({**row, **change})
    return rows


CASES = {
    "the same rows": (BASE, (0, 0, 0)),
    "the same rows in another order": (BASE[::-1], (0, 0, 0)),
    "a state moves on": (edited(p2={"state": "ENDED"}), (0, 0, 1)),
    "a null becomes a value": (edited(p2={"end": T2, "score": 2.0}), (0, 0, 1)),
    "a timestamp moves": (edited(p1={"end": T2}), (0, 0, 1)),
    "a counter grows": (edited(p1={"messages": 4}), (0, 0, 1)),
    "a flag flips": (edited(p3={"open": True}), (0, 0, 1)),
    "a list item renamed": (edited(p1={"tags": [{"id": "t1", "name": "Sales"}]}), (0, 0, 1)),
    "list items swapped": (edited(p1={"tags": [{"id": "t2", "name": "x"}, {"id": "t1", "name": "sales"}]}), (0, 0, 1)),
    "an empty list is not a null one": (edited(p3={"tags": []}), (0, 0, 1)),
    "a value becomes null": (edited(p1={"state": None}), (0, 0, 1)),
    "a row removed": (edited(p3=None), (0, 1, 0)),
    "a row added": (BASE + [{**BASE[0], "protocol_id": "4"}], (1, 0, 0)),
    "added, removed and changed at once": (edited(p3=None, p1={"messages": 9}) + [{**BASE[1], "protocol_id": "5"}],
                                           (1, 1, 1)),
}


@pytest.mark.parametrize("new, expected", CASES.values(), ids=CASES.keys())
def test_rows_added_removed_and_changed_by_key(new, expected):
    found = compare(pa.Table.from_pylist(BASE, SCHEMA), pa.Table.from_pylist(new, SCHEMA), ("protocol_id",))
    assert (found.added, found.removed, found.changed) == expected


def test_the_changed_keys_are_named():
    found = compare(pa.Table.from_pylist(BASE, SCHEMA),
                    pa.Table.from_pylist(edited(p3=None, p1={"messages": 9}), SCHEMA), ("protocol_id",))
    assert found.examples == {"added": [], "removed": ["3"], "changed": ["1"]}
    assert str(found) == "rows 0 added; 1 removed (3); 1 changed (1)"


MESSAGE = pa.schema([("protocol_id", pa.string()), ("message_id", pa.string()), ("text", pa.string())])
MESSAGE_CASES = {
    "messages without an id, unchanged": ([("1", None, "hi"), ("1", None, "hi"), ("1", "a", "x")],
                                          [("1", "a", "x"), ("1", None, "hi"), ("1", None, "hi")], (0, 0, 0)),
    "a keyless message edited is one removed and one added": ([("1", None, "hi")], [("1", None, "hello")], (1, 1, 0)),
    "a repeated keyless message, one more time": ([("1", None, "hi")], [("1", None, "hi"), ("1", None, "hi")],
                                                  (1, 0, 0)),
    "the same id in another conversation": ([("1", "a", "x")], [("1", "a", "x"), ("2", "a", "x")], (1, 0, 0)),
    "an id seen twice, its second row changed": ([("1", "a", "x"), ("1", "a", "y")], [("1", "a", "x"), ("1", "a", "z")],
                                                 (0, 0, 1)),
    "a text edited": ([("1", "a", "x")], [("1", "a", "y")], (0, 0, 1)),
}


@pytest.mark.parametrize("old, new, expected", MESSAGE_CASES.values(), ids=MESSAGE_CASES.keys())
def test_messages_are_keyed_by_protocol_and_id_or_by_content(old, new, expected):
    table = lambda rows: pa.Table.from_pylist([dict(zip(MESSAGE.names, r)) for r in rows], MESSAGE)
    found = compare(table(old), table(new), KEYS["messages"])
    assert (found.added, found.removed, found.changed) == expected


def test_a_column_added_by_an_upgrade_or_widened_is_no_change():
    old = pa.table({"protocol_id": ["1", "2"], "tma": pa.array([10, 20], pa.int64())})
    new = pa.table({"protocol_id": ["1", "2"], "tma": pa.array([10.0, 21.0]), "extra": ["a", "b"]})
    found = compare(old, new, ("protocol_id",))
    assert (found.added, found.removed, found.changed) == (0, 0, 1) and found.examples["changed"] == ["2"]


@pytest.mark.parametrize("array", [
    pa.array(["a", "b", None, ""]), pa.array([1, None, 3], pa.int32()), pa.array([True, None, False]),
    pa.array([T1, None], pa.timestamp("us", tz="UTC")), pa.array([[1, 2], None, [], [2, 1]]),
    pa.array([{"id": "1", "name": None}, None, {"id": None, "name": "1"}], ITEM), pa.array([0.0, -1.5, None]),
])
def test_every_value_hashes_apart_from_the_others(array):
    hashes = column_hash(array)
    assert len(hashes) == len(array) and len(set(hashes.tolist())) == len(array)
    assert (column_hash(array.slice(1)) == hashes[1:]).all()  # a slice hashes as its values, not its offset


def test_files_are_compared_in_row_groups_and_a_first_version_is_not_compared(tmp_path):
    fs = fsspec.filesystem("file")
    schema = dataset_schema("history")
    rows = [{"protocol_id": str(i), "current_state": "ENDED"} for i in range(10_000)]
    old, new = str(tmp_path / "old.parquet"), str(tmp_path / "new.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema), old, row_group_size=3_000)
    rows[42]["current_state"], rows[7_000]["media"] = "MISSED", "EMAIL"
    pq.write_table(pa.Table.from_pylist(rows[:9_000] + [{"protocol_id": "x"}], schema), new, row_group_size=2_000)
    found = against_published(fs, [old], new, "history")
    assert (found.added, found.removed, found.changed, found.error) == (1, 1_000, 2, None)
    assert found.examples["changed"] == ["42", "7000"] and found.examples["added"] == ["x"]
    assert against_published(fs, [], new, "history") is None
    assert against_published(fs, [old], new, "ongoing") is None


def test_a_comparison_that_fails_says_why_and_raises_nothing(tmp_path):
    fs = fsspec.filesystem("file")
    new = str(tmp_path / "new.parquet")
    pq.write_table(pa.table({"protocol_id": ["1"]}), new)
    found = against_published(fs, [str(tmp_path / "gone.parquet")], new, "history")
    assert isinstance(found, Changes) and "FileNotFoundError" in found.error and str(found).startswith("not compared")
