"""zchat-assets: the Zenvia Chat Data API as Dagster daily-partitioned assets in a Parquet lake."""

import os
import sys

# Arrow's default allocator (mimalloc) keeps freed pages for reuse, and a run's tables are short-lived
# batches: with the system's allocator a busy day's run peaks about 20 MB lower for the same CPU
# (docs/performance.md). Chosen before pyarrow is first imported, so that Arrow's own C++ code (Parquet,
# datasets, sorting) uses it too; where pyarrow came first (pandas imports it), at least the arrays Python
# builds do. A pool the user chose is kept.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    if "pyarrow" in sys.modules:
        import pyarrow

        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    else:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"

from .component import ZchatAccount, ZchatFleet  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ZchatAccount", "ZchatFleet"]
