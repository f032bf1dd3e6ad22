"""What the Dagster UI shows for a materialized day: rows, schema, URI, a preview, API figures."""

from __future__ import annotations

import time
from functools import cache

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableSchema

from ..api import ZchatClient
from .. import provenance
from ..lake import WrittenPartition
from ..schemas import DATASETS

PREVIEW_ROWS = 5
PREVIEW_TEXT = 40


@cache
def table_schema(dataset: str) -> TableSchema:
    return TableSchema(columns=[TableColumn(c.name, str(c.type), description=c.doc) for c in DATASETS[dataset]])


def preview(table: pa.Table, columns: list[str]) -> MetadataValue:
    """A Markdown table of the first rows and a few telling columns (wide rows are unreadable)."""
    rows = table.select(columns).slice(0, PREVIEW_ROWS).to_pylist()
    head = "| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns)
    body = ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return MetadataValue.md("\n".join([head, *body]) if rows else "_no rows_")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= PREVIEW_TEXT else text[: PREVIEW_TEXT - 1] + "…"


class ApiMeter:
    """Request figures of one client, and the process's CPU seconds, between `start()` and `figures()`."""

    def __init__(self, client: ZchatClient):
        self._client = client
        self.start()

    def start(self) -> None:
        self._before = self._client.stats.snapshot()
        self._client.lowest_rate_limit = self._client.rate_limit
        self._cpu0 = time.process_time()

    def requests(self) -> int:
        """Requests since `start()`."""
        return self._client.stats.snapshot()["requests"] - self._before["requests"]

    def figures(self) -> dict:
        now = self._client.stats.snapshot()
        out = {f"api_{k}": now[k] - self._before[k] for k in ("requests", "retries", "pages")}
        if self._client.rate_limit is not None:  # the smallest part of the account's budget the day had
            out["api_rate_limit"] = round(self._client.lowest_rate_limit, 2)
        out["cpu_seconds"] = round(time.process_time() - self._cpu0, 3)  # the whole process, every thread
        return out


def partition_metadata(dataset: str, written: WrittenPartition, sample: pa.Table, preview_columns: list[str]) -> dict:
    return {
        "dagster/row_count": written.rows,
        "dagster/column_schema": table_schema(dataset),
        "dagster/uri": written.uri,
        "files": written.files,
        "bytes": written.bytes,
        "preview": preview(sample, preview_columns),
        **provenance.metadata(written.provenance),
    }
