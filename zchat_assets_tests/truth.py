"""What a day should contain, straight from the sandbox's world (the ground truth), as the sandbox
shows it in the dialects it speaks."""

import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from zchat_assets.assets.partitions import day_window
from zchat_assets.sandbox.views import Views
from zchat_assets.schemas import report_table

REPORTS = ("period", "agent", "department", "channel", "tag")


def interactions(world, day: str) -> list:
    return world.between(*world.local_bounds(date.fromisoformat(day)))


def protocols(world, day: str) -> list[str]:
    return [str(ix.protocol) for ix in interactions(world, day)]


def message_ids(world, day: str, dialects=frozenset(), gaps=None) -> list[str | None]:
    """Every message the sandbox serves for the day (none of a conversation it has purged)."""
    views = Views(world, dialects, gaps)
    return [m.get("id") for ix in interactions(world, day) if views.gap(str(ix.protocol)) != "purged"
            for m in views.messages(str(ix.protocol))]


def report_rows(world, day: str, data_type: str, dialects=frozenset()) -> list[dict]:
    window = day_window(day, world.tz_name)
    lines = Views(world, dialects).report({"data_type": data_type, "from": window.start, "to": window.end,
                                           "timezone": window.offset})
    return report_table(lines, f"report_by_{data_type}").to_pylist()


def assert_lake_matches(lake, world, day: str, dialects=frozenset()) -> None:
    history = lake.read("history", day).column("protocol_id").to_pylist()
    expanded = lake.read("history_expanded", day).column("protocol_id").to_pylist()
    conversations = lake.read("conversations", day)
    messages = lake.read("messages", day).column("message_id").to_pylist()
    expected = protocols(world, day)
    assert sorted(history) == sorted(expected) and len(history) == len(set(history))
    assert sorted(expanded) == sorted(expected)
    assert sorted(conversations.column("protocol_id").to_pylist()) == sorted(expected)
    expected_ids = message_ids(world, day, dialects)
    assert sorted(messages, key=str) == sorted(expected_ids, key=str)
    named = [m for m in messages if m is not None]
    assert len(named) == len(set(named))
    assert sum(conversations.column("message_count").to_pylist()) == len(messages)
    for data_type in REPORTS:
        assert lake.read(f"report_by_{data_type}", day).to_pylist() == report_rows(world, day, data_type, dialects)


def searchable(data: bytes, name: str) -> bytes:
    """A file's bytes, and a Parquet file's values too: zstd compresses its pages, so a token in the middle
    of a column is not in the bytes."""
    if name.endswith(".parquet"):
        data += json.dumps(pq.read_table(pa.BufferReader(data)).to_pylist(), default=str, ensure_ascii=False).encode()
    return data
