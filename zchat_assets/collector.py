"""Python's garbage collector in the process, set when the package is first imported.

- **No collections while the package imports.** What importing Dagster, pandas, pyarrow and this package
  makes lives as long as the process (below), all but about 2,200 objects of garbage (0.7 MB), which are
  frozen with the rest rather than collected. Where the package is imported first (its command line, a
  notebook, the tests) the collector walked it all the same, in full collections and hundreds of young
  ones: `import zchat_assets.cli` took 1.7-1.9 s, and takes 1.2-1.45 s (docs/performance.md). A Dagster
  process has made enough objects of its own before it loads the code location that no full collection
  came while it imported the package: there only the package's young collections are spared.
- **What import made is frozen.** By then Dagster, pandas, pyarrow and this package have made some 400,000
  objects the collector tracks, which live as long as the process. Each full collection walked all of them,
  a dozen times in a busy day's run, and the interpreter walked them again on its way out, most of a run's
  last second. Frozen (`gc.freeze`), they are left alone: at import, and once more at exit for what the
  run made.
- **A young collection every 10,000 allocations at least**, not Python's 700 (on 3.11 and 3.12). A busy day
  decodes 20,000 answers into short-lived objects; most are freed by reference counting before a young
  collection would have walked them.

The last two together: a busy day's run takes 12-17 % less CPU for the same peak memory (docs/performance.md).

What this gives up: an object frozen at import that later becomes part of a cycle of garbage stays until
the process ends (import leaves few such objects); and at exit, a cycle of garbage the process made is
not collected, so its objects' `__del__` methods do not run then, as Python never promised they would.
Everything the package writes is closed explicitly, not by a finalizer. A process that turned the
collector off, or collects its young objects less often already, keeps its choice.
"""

import atexit
import gc
from contextlib import contextmanager

YOUNG = 10_000


@contextmanager
def importing():
    """The collector off while the package's imports run, then chosen as above. It is turned back on after the
    freeze, which also restarts its count of allocations: else the first allocation after would start a
    collection of everything import made."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    except BaseException:  # a failed import chooses nothing: the collector as it was
        if was_enabled:
            gc.enable()
        raise
    if was_enabled:
        _choose()
        gc.enable()


def _choose() -> None:
    young, *older = gc.get_threshold()
    if young < YOUNG:
        gc.set_threshold(YOUNG, *older)
    gc.freeze()
    atexit.register(gc.freeze)
