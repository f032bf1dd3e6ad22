"""The data-quality rules, as tables: what passes, what fails, and what the failure says."""

import pyarrow as pa
import pytest

from zchat_assets.quality import messages_complete, report_total, unique_ids
from zchat_assets.schemas import report_table


@pytest.mark.parametrize("ids,passed,detail", [
    (["1", "2", "3"], True, "0 null and 0 duplicate protocol_id"),
    (["1", "2", "2"], False, "0 null and 1 duplicate protocol_id"),
    (["1", None, None], False, "2 null and 0 duplicate protocol_id"),
    ([], True, "0 null and 0 duplicate protocol_id"),
])
def test_unique_ids(ids, passed, detail):
    check = unique_ids(pa.array(ids, pa.string()), "protocol_id")
    assert (check.passed, check.detail) == (passed, detail)


def lines(*received: int, total: int) -> pa.Table:
    rows = [{"title": f"line {i}", "received": r} for i, r in enumerate(received)]
    return report_table([*rows, {"title": "Total", "received": total}], "report_by_agent")


@pytest.mark.parametrize("table,multi_label,passed", [
    (lines(2, 3, total=5), False, True),
    (lines(2, 3, total=6), False, False),
    (lines(2, 3, total=4), True, True),   # by tag an interaction counts once per tag
    (lines(2, 5, total=4), True, False),  # but no line can exceed the total
    (report_table([{"title": "x", "received": 1}], "report_by_agent"), False, False),  # no Total line
])
def test_report_total(table, multi_label, passed):
    assert report_total(table, multi_label).passed is passed


@pytest.mark.parametrize("expected,fetched,passed", [
    ({"1": 3, "2": None}, {"1": 3, "2": 5}, True),   # an unfinished conversation may have any number
    ({"1": 3}, {"1": 2}, False),
    ({"1": 3, "2": 1}, {"1": 3}, False),             # a protocol not fetched
])
def test_messages_complete(expected, fetched, passed):
    assert messages_complete(expected, fetched).passed is passed
