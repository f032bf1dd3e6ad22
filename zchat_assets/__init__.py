"""zchat-assets: the Zenvia Chat Data API as Dagster daily-partitioned assets in a Parquet lake."""

__version__ = "0.1.0"
