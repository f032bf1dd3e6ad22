"""The allocators of the process, chosen when the package is first imported; each one the user chose is kept.

- **Arrow's pool.** Arrow's default allocator (mimalloc) keeps freed pages for reuse, and a run's tables
  are short-lived batches: with the system's allocator a busy day's run peaks about 20 MB lower for the
  same CPU (docs/performance.md). Chosen before pyarrow is first imported, so that Arrow's own C++ code
  (Parquet, datasets, sorting) uses it too; where pyarrow came first (pandas imports it), at least the
  arrays Python builds do. `ARROW_DEFAULT_MEMORY_POOL` keeps the user's.
- **glibc's arenas.** malloc gives each thread that allocates an arena of its own, up to eight per core, and
  what a thread frees stays in its arena. The interactions step walks both histories and fetches the
  messages in threads side by side, each with its client's event-loop thread decoding JSON: with two
  arenas its peak was about 20 MB lower for the same CPU, and with one, 5 MB lower again at C = 64 (the
  median of six pairs; the same at C = 128), the CPU and the wall within the noise, on two CPUs
  (docs/performance.md): the interpreter's lock lets one thread allocate at a time, and the threads that
  allocate without it (Arrow's, one a core) are few there. Set through `mallopt`, Linux only;
  `MALLOC_ARENA_MAX`, which glibc reads itself, keeps the user's: a host of many cores may want more.

Nothing here imports pyarrow.
"""

import ctypes
import os
import sys

ARENAS = 1
M_ARENA_MAX = -8  # glibc's malloc.h


def choose() -> None:
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        if "pyarrow" in sys.modules:
            import pyarrow

            pyarrow.set_memory_pool(pyarrow.system_memory_pool())
        else:
            os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    if "MALLOC_ARENA_MAX" not in os.environ and sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # a C library without it
            return
        mallopt(M_ARENA_MAX, ARENAS)
