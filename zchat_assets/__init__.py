"""zchat-assets: the Zenvia Chat Data API as Dagster daily-partitioned assets in a Parquet lake."""

from . import allocators

allocators.choose()  # before pyarrow is first imported: see allocators.py

from .component import ZchatAccount, ZchatFleet  # noqa: E402
from . import collector  # noqa: E402

collector.choose()  # once everything above is imported: see collector.py

__version__ = "0.1.0"
__all__ = ["ZchatAccount", "ZchatFleet"]
