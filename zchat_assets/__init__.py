"""zchat-assets: the Zenvia Chat Data API as Dagster daily-partitioned assets in a Parquet lake."""

from . import collector

with collector.importing():  # see collector.py
    from . import allocators

    allocators.choose()  # before pyarrow is first imported: see allocators.py
    from .component import ZchatAccount, ZchatFleet

__version__ = "0.1.0"
__all__ = ["ZchatAccount", "ZchatFleet"]
