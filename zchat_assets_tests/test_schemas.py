"""JSON to Arrow: coercions, flattening, unknown fields kept, type changes refused, the dictionary."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from zchat_assets import schemas
from zchat_assets.api.client import Messages
from zchat_assets.schemas import SchemaError, to_table

RECORD = {
    "id": 981800001, "active": "true", "created_at": "2026-11-18T03:06:57.000Z",
    "agent": {"id": 7, "name": "Conceição", "phone_extension": "2001", "status": "ONLINE"},
    "customer": {"id": "55", "fields": {"channel_email": ["a@x", "b@x"], "channel_phone": "+55 11",
                                        "main_identifier": "João", "document": "", "new_field": 1}},
    "department": {"id": "11", "name": "Vendas"}, "media": "WHATSAPP", "sla_overdue": False,
    "brand_new": {"x": 1},
}


def test_flattening_and_coercion():
    row = to_table([RECORD], "history").to_pylist()[0]
    assert row["protocol_id"] == "981800001" and row["active"] is True
    assert row["agent_id"] == "7" and row["customer_main_identifier"] == "João"
    assert row["customer_channel_email"] == ["a@x", "b@x"] and row["customer_channel_phone"] == ["+55 11"]
    assert row["customer_channel_telegram"] == [] and row["customer_document"] is None
    assert row["created_at"] == datetime(2026, 11, 18, 3, 6, 57, tzinfo=timezone.utc)


def test_unknown_fields_are_kept_in_extra_json():
    import json

    extra = json.loads(to_table([RECORD], "history").to_pylist()[0]["extra_json"])
    assert extra == {"agent": {"status": "ONLINE"}, "customer": {"fields": {"new_field": 1}}, "brand_new": {"x": 1}}
    assert to_table([{"id": 1}], "history").to_pylist()[0]["extra_json"] is None


def test_extra_json_keeps_the_order_the_record_sent():
    import json

    record = {"zeta": 1, **RECORD, "alpha": 2}
    text = to_table([record, RECORD], "history").column("extra_json")[0].as_py()
    assert list(json.loads(text)) == ["zeta", "agent", "customer", "brand_new", "alpha"]
    inside_only = {"customer": RECORD["customer"], "id": 2, "agent": RECORD["agent"]}  # every top-level key named
    text = to_table([inside_only], "history").column("extra_json")[0].as_py()
    assert json.loads(text) == {"customer": {"fields": {"new_field": 1}}, "agent": {"status": "ONLINE"}}
    assert list(json.loads(text)) == ["customer", "agent"]


@pytest.mark.parametrize("agent", [None, "7", 7, {}], ids=["null", "text", "number", "empty object"])
def test_an_object_sent_as_something_else_has_none_of_its_fields(agent):
    """The object's fields are read for every record at once, and the one that is no object reads as None."""
    table = to_table([RECORD, {**RECORD, "agent": agent}, RECORD], "history")
    assert table.column("agent_id").to_pylist() == ["7", None, "7"]
    assert table.column("customer_main_identifier").to_pylist() == ["João"] * 3


def test_numeric_text_is_coerced_and_other_text_refused():
    assert to_table([{"id": 1, "queued_time": "12"}], "history_expanded").column("queued_time").to_pylist() == [12]
    with pytest.raises(SchemaError, match=r"history_expanded.queued_time .*not written"):
        to_table([{"id": 1, "queued_time": "twelve"}], "history_expanded")


@pytest.mark.parametrize("sent", [
    ["+55 11", None, "", "+55 21"], [None, None], ["a"], [["a@x", "", None], "b@x"], [["a@x"], None], [55, "56"], [],
])
def test_a_customer_field_is_the_same_list_whether_arrow_or_python_converts_it(sent):
    """Plain text goes through Arrow, anything else through `to_str_list`: the lake cannot tell which."""
    records = [{"id": i, "customer": {"fields": {"channel_phone": value}}} for i, value in enumerate(sent)]
    column = to_table(records, "history").column("customer_channel_phone")
    assert column.type == schemas.STR_LIST and column.to_pylist() == [schemas.to_str_list(v) for v in sent]
    text_only = all(v is None or isinstance(v, str) for v in sent)
    assert (schemas._arrow_native(sent, schemas.STR_LIST) is not None) == text_only


@pytest.mark.parametrize("value,expected", [
    ("2026-11-18T03:06:57Z", datetime(2026, 11, 18, 3, 6, 57, tzinfo=timezone.utc)),
    ("2026-11-18 00:06:57-03:00", datetime(2026, 11, 18, 3, 6, 57, tzinfo=timezone.utc)),
    (1763435217, datetime(2025, 11, 18, 3, 6, 57, tzinfo=timezone.utc)),
    (None, None), ("", None),
])
def test_timestamps(value, expected):
    assert schemas.to_ts(value) == expected


def test_every_dataset_has_snake_case_columns_and_a_description():
    for name, columns in schemas.DATASETS.items():
        for c in columns:
            assert c.name == c.name.lower() and " " not in c.name, (name, c.name)
            assert c.doc, (name, c.name)


def test_the_data_dictionary_page_is_generated_from_the_schemas():
    page = (Path(__file__).parents[1] / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert schemas.markdown_dictionary().strip() in page, "regenerate docs/data-dictionary.md: zchat-assets docs"


def test_the_data_dictionary_marks_the_personal_columns_and_no_other():
    rows = [line for line in schemas.markdown_dictionary().splitlines() if line.startswith("| `")]
    marked = {row.split("`")[1] for row in rows if "| **Personal data.** " in row}
    assert marked == {c.name for columns in schemas.DATASETS.values() for c in columns if c.personal}


@pytest.mark.parametrize("coerce,value,expected", [
    (schemas.to_str, "", None), (schemas.to_str, True, "true"), (schemas.to_str, 12.0, "12"),
    (schemas.to_str, ["a", "", None, "b"], "a, b"), (schemas.to_str, {"k": "é"}, '{"k": "é"}'),
    (schemas.to_int, "12", 12), (schemas.to_int, " 12.0 ", 12), (schemas.to_int, 12.4, 12), (schemas.to_int, True, 1),
    (schemas.to_int, "", None), (schemas.to_float, "1.5", 1.5), (schemas.to_float, 2, 2.0),
    (schemas.to_bool, "TRUE", True), (schemas.to_bool, 0, False), (schemas.to_bool, "", None),
    (schemas.to_str_list, "x", ["x"]), (schemas.to_str_list, ["x", ""], ["x"]), (schemas.to_str_list, "", []),
    (schemas.to_str_list, ["x", [], None], ["x"]),
    (schemas.to_tags, [{"id": 1, "name": "VIP"}, "loose"], [{"id": "1", "name": "VIP"}, {"id": None, "name": "loose"}]),
])
def test_coercers(coerce, value, expected):
    assert coerce(value) == expected


@pytest.mark.parametrize("coerce,value", [
    (schemas.to_int, "twelve"), (schemas.to_int, [1]), (schemas.to_float, "n/a"), (schemas.to_bool, "yes"),
    (schemas.to_bool, 2), (schemas.to_ts, "tomorrow"), (schemas.to_ts, [1]), (schemas.to_tags, "VIP"),
])
def test_coercers_refuse_what_they_would_have_to_guess(coerce, value):
    with pytest.raises(SchemaError):
        coerce(value)


def test_the_report_counters_are_the_vendors_additive_ones():
    from zchat_assets.api.vendor import REPORT_ADDITIVE

    assert tuple(schemas.REPORT_COUNTERS) == REPORT_ADDITIVE


@pytest.mark.parametrize("sent, kept", [
    ("customer", "CUSTOMER"), (" Client ", "CUSTOMER"), ("OPERATOR", "AGENT"), ("chatbot", "BOT"),
    ("system", "SYSTEM"), ("supervisor", "SUPERVISOR"), (7, "7"), ("", None), (None, None),
])
def test_an_author_type_is_kept_in_one_spelling_whatever_the_api_sent(sent, kept):
    assert schemas.author_type(sent) == kept
    assert schemas.author_type(sent) == kept  # the second time, from the cache of spellings


def test_raw_json_is_the_text_the_api_sent_else_written_from_the_message():
    """A client answer carries each message as sent (`Messages.sent`); where it could not be cut (a body only
    the standard library reads, a list built in a test) raw_json is written from the decoded message."""
    message = {"id": "1-1", "text": "olá", "author": {"type": "AGENT"}}
    sent = Messages([message])
    sent.sent = ['{"id":"1-1","text":"ol\\u00e1","author":{"type":"AGENT"}}']
    unsent = Messages([message])
    unsent.sent = None
    raws = schemas.messages_table([("1", sent), ("2", unsent), ("3", [message])]).column("raw_json").to_pylist()
    assert raws == [sent.sent[0], '{"id": "1-1", "text": "olá", "author": {"type": "AGENT"}}',
                    '{"id": "1-1", "text": "olá", "author": {"type": "AGENT"}}']
