"""Provenance: a published file says what wrote it, in its footer and in the day's Dagster metadata."""

import dagster as dg
import pyarrow.parquet as pq

from zchat_assets import provenance
from zchat_assets.lake import Lake
from zchat_assets.schemas import dataset_schema

from .conftest import ALL, DAY


def test_every_published_day_names_its_code_schema_rows_requests_run_and_origin(resources, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(ALL, resources=resources, partition_key=DAY, instance=instance)
    lake = Lake(str(tmp_path / "lake"))
    for dataset, code_version in (("history", "2"), ("messages", "2"), ("conversations", "1"),
                                  ("report_by_agent", "1")):
        path = lake.files(dataset, DAY)[0]
        footer = provenance.read(f"{lake.root}/{path}")
        assert footer["run_id"] == result.run_id
        assert footer["code_version"] == code_version and footer["package"].startswith("zchat-assets ")
        assert footer["schema_hash"] == provenance.schema_hash(dataset_schema(dataset))
        assert footer["rows"] == pq.ParquetFile(f"{lake.root}/{path}").metadata.num_rows
        claimed = lake.read_json("_origins/lake.json")  # the lake origin, as the lake recorded it when first written
        assert footer["lake_origin"] == {k: claimed[k] for k in ("account", "host", "timezone")}
        event = instance.get_latest_materialization_event(dg.AssetKey(["zchat", dataset]))
        metadata = event.asset_materialization.metadata
        assert metadata["schema_hash"].value == footer["schema_hash"]
        if dataset != "conversations":  # built from the lake: no request
            assert footer["api_requests"] == metadata["api_requests"].value > 0
    chunk = lake.files("_cache/messages", DAY)[0]
    assert provenance.read(f"{lake.root}/{chunk}")["run_id"] == result.run_id


def test_schema_hash_ignores_metadata_and_tells_schemas_apart():
    schema = dataset_schema("messages")
    assert provenance.schema_hash(schema) == provenance.schema_hash(schema.with_metadata({b"a": b"b"}))
    assert provenance.schema_hash(schema) != provenance.schema_hash(dataset_schema("history"))
