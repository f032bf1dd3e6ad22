"""What wrote a file, so that a reader of the file alone can tell: in every Parquet footer the lake writes
(`zchat.provenance`, a JSON object) and in the day's Dagster metadata.

It names the package version and the asset's code version, a hash of the dataset's schema, the rows,
the API requests the day took, the Dagster run, and the lake origin (account, API host, time zone).
It is the file's own key-value metadata (not the Arrow schema's): `pyarrow.parquet.read_metadata(path)
.metadata[b"zchat.provenance"]`, or DuckDB's `parquet_kv_metadata(path)`, read it from the footer only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import pyarrow as pa
import pyarrow.parquet as pq

KEY = b"zchat.provenance"


@cache
def package_version() -> str:
    try:
        return version("zchat-assets")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def schema_hash(schema: pa.Schema) -> str:
    """Names the columns and their types (not the metadata): equal hashes read alike."""
    return hashlib.sha256(schema.remove_metadata().to_string().encode()).hexdigest()[:16]


def stamp(run_id: str | None, code_version: str | None, origin, requests: Callable[[], int] | None = None):
    """The provenance of what a step writes, as a function of the moment a file is finished (its requests so far)."""
    def provenance(schema: pa.Schema, rows: int) -> dict:
        out = {"package": f"zchat-assets {package_version()}", "code_version": code_version,
               "schema_hash": schema_hash(schema), "rows": rows, "run_id": run_id,
               "lake_origin": asdict(origin) if origin is not None else None}
        if requests is not None:
            out["api_requests"] = requests()
        return out

    return provenance


def read(source) -> dict | None:
    """The provenance in a Parquet file's footer (a path or an open file), or None."""
    found = (pq.read_metadata(source).metadata or {}).get(KEY)
    return json.loads(found) if found else None


def encoded(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def metadata(record: dict | None) -> dict:
    """The Dagster metadata of a day's provenance (rows and requests are there already, under their own names)."""
    if not record:
        return {}
    origin = record.get("lake_origin") or {}
    return {"code": f"{record['package']} (asset code version {record['code_version']})",
            "schema_hash": record["schema_hash"],
            "lake_origin": ", ".join(f"{k}={v}" for k, v in origin.items() if v is not None)}
